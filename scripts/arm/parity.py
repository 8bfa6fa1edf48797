"""Embeds a fixed set of varied texts with each bundle and saves the vectors, or compares two such saves.

    python parity.py embed OUT.npz fp32=BUNDLE int8=BUNDLE ...   (run on each architecture)
    python parity.py compare HOST.npz ARM.npz [ARM2.npz ...] [--fp32 HOST_FP32.npz ARM_FP32.npz ...]
        [--int8-min 0.999] [--vs-fp32-min 0.99]
        (prints agreement; exits 1 if fp32 drifts, or an int8 model falls under a minimum given)

--fp32 names, file by file, saves holding the fp32 vectors of the same texts on the same machine (from a bundle
with the same fp32 graph), for int8 saves that hold no fp32 of their own: "vs fp32 there" is then measured
against those.

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


def compare(
    host: str, others: list[str], fp32: list[str] | None = None, int8_min: float = 0.0, vs_fp32_min: float = 0.0
) -> int:
    ref = np.load(host)
    if fp32 is not None and len(fp32) != len(others) + 1:
        raise SystemExit(f"--fp32 wants {len(others) + 1} files (the host's, then one per other save), got {len(fp32)}")
    report, ok = {}, True
    for i, path in enumerate([host, *others]):
        got = np.load(path)
        base = got if "fp32" in got.files else (np.load(fp32[i]) if fp32 is not None else None)
        for name in ref.files:
            entry: dict[str, float | bool] = {}
            if path != host:
                cos = _cos(ref[name], got[name])
                entry = {
                    "min_cosine": float(cos.min()),
                    "max_abs_diff": float(np.abs(ref[name] - got[name]).max()),
                    "bitwise_equal": bool(np.array_equal(ref[name], got[name])),
                }
                if name == "fp32" and cos.min() < FP32_MIN_COSINE:
                    ok = False
                if name != "fp32" and cos.min() < int8_min:
                    ok = False
            if base is not None and name != "fp32":
                entry["vs_fp32_min_cosine_here"] = float(_cos(base["fp32"], got[name]).min())
                if entry["vs_fp32_min_cosine_here"] < vs_fp32_min:
                    ok = False
            if entry:
                report[f"{path}:{name}"] = entry
    limits = {"fp32_tolerance": FP32_MIN_COSINE, "int8_min": int8_min, "vs_fp32_min": vs_fp32_min}
    print(json.dumps({"texts": len(TEXTS), **limits, "results": report}, indent=2))
    return 0 if ok else 1


def _compare_args(rest: list[str]) -> int:
    files, fp32, limits, i = [], None, {"--int8-min": 0.0, "--vs-fp32-min": 0.0}, 0
    while i < len(rest):
        if rest[i] in limits:
            limits[rest[i]] = float(rest[i + 1])
            i += 2
        elif rest[i] == "--fp32":
            fp32, i = [], i + 1
            while i < len(rest) and not rest[i].startswith("--"):
                fp32.append(rest[i])
                i += 1
        else:
            files.append(rest[i])
            i += 1
    return compare(files[0], files[1:], fp32, limits["--int8-min"], limits["--vs-fp32-min"])


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "embed":
        embed(rest[0], rest[1:])
    elif cmd == "compare":
        sys.exit(_compare_args(rest))
    else:
        sys.exit(f"usage: {sys.argv[0]} embed OUT.npz NAME=BUNDLE ... | compare HOST.npz ARM.npz ...")
