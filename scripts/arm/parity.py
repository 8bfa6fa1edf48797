"""Embeds a fixed set of varied texts with each bundle and saves the vectors, or compares two such saves.

    python parity.py embed OUT.npz fp32=BUNDLE int8=BUNDLE ...   (run on each architecture)
    python parity.py compare HOST.npz ARM.npz [ARM2.npz ...]    (prints agreement; exits 1 if fp32 drifts)

Runtime-only (numpy + edgert), so it runs inside the emulated root as well as on the host.
"""

from __future__ import annotations

import json
import sys

import numpy as np

#: Varied on purpose: prose, a query, code, numbers, several scripts, emoji, empty, and past the max length.
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "how do I reset my router",
    "def add(a, b):\n    return a + b",
    "3.14159 2.71828 -42 1e-9 2026-11-25",
    "東京は日本の首都です。",
    "我喜欢在周末去公园散步。",
    "오늘 저녁에 영화를 보러 갈 거예요.",
    "اليوم الطقس مشمس ودافئ.",
    "आज बाज़ार में सब्ज़ियाँ बहुत महँगी थीं।",
    "Сегодня вечером мы пойдём в театр.",
    "Das Wetter in München ist heute schön, aber kalt.",
    "I love this! 😍🔥 Best day ever 🎉",
    "",
    "   ",
    "a",
    "Edge devices run small models. " * 80,
    "SELECT name FROM users WHERE active = true;",
    "Refunds are issued within ten working days of receiving the returned item.",
    "The mitochondria is the powerhouse of the cell.",
    "tabs\tand\nnewlines\r\n and \x07 bells",
]
FP32_MIN_COSINE = 0.99999


def embed(out: str, specs: list[str]) -> None:
    import edgert

    arrays = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        model = edgert.load(path, variant=name)
        arrays[name] = model.embed(TEXTS, batch_size=1)  # alone: no batch effects in a cross-machine comparison
    np.savez(out, **arrays)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def compare(host: str, others: list[str]) -> int:
    ref = np.load(host)
    report, ok = {}, True
    for path in others:
        got = np.load(path)
        for name in ref.files:
            cos = _cos(ref[name], got[name])
            entry = {
                "min_cosine": float(cos.min()),
                "max_abs_diff": float(np.abs(ref[name] - got[name]).max()),
                "bitwise_equal": bool(np.array_equal(ref[name], got[name])),
            }
            if "fp32" in ref.files and name != "fp32":
                entry["vs_fp32_min_cosine_here"] = float(_cos(got["fp32"], got[name]).min())
            report[f"{path}:{name}"] = entry
            if name == "fp32" and cos.min() < FP32_MIN_COSINE:
                ok = False
    print(json.dumps({"texts": len(TEXTS), "fp32_tolerance": FP32_MIN_COSINE, "results": report}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "embed":
        embed(rest[0], rest[1:])
    elif cmd == "compare":
        sys.exit(compare(rest[0], rest[1:]))
    else:
        sys.exit(f"usage: {sys.argv[0]} embed OUT.npz NAME=BUNDLE ... | compare HOST.npz ARM.npz ...")
