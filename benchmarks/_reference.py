"""The side-by-side table of the reference runs (benchmarks/olive_reference.py, inc_reference.py): other tools'
models beside fp32 and edgert's choice, measured the same way on benchmarks/quantization.py's held-out corpus."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from quantization import _cos, interleaved, invariance

HEAD = (
    "| model | worst cos | mean cos | batch invariance | batch-1 ms (x fp32) | 128 tokens ms (x fp32) | size MB "
    "| search s |\n|---|---|---|---|---|---|---|---|"
)


def side_by_side(
    models: dict[str, Any],
    labels: dict[str, str],
    sizes: dict[str, int],
    search_seconds: dict[str, str],
    texts: list[str],
    long128: str,
    rounds: int,
) -> str:
    """MODELS (name -> loaded edgert model; "fp32" first, the reference) on TEXTS: worst and mean cosine of each
    text alone to fp32 alone, batch invariance, and batch-1 and 128-token (LONG128) latency on one thread over
    ROUNDS interleaved rounds (every model sees the same machine state), medians and their ratio to fp32's.
    Returns the markdown table, one row per model in MODELS' order."""
    short = texts[:: max(1, len(texts) // 32)][:32]
    alone = {n: np.stack([m.embed([t])[0] for t in texts]) for n, m in models.items()}
    t1, t128, _ = interleaved(models, short, long128, rounds)
    f1, f128 = float(np.median(t1["fp32"])), float(np.median(t128["fp32"]))
    rows = []
    for n, m in models.items():
        cos, inv = _cos(alone["fp32"], alone[n]), invariance(m, texts, alone[n])
        a1, a128 = float(np.median(t1[n])), float(np.median(t128[n]))
        rows.append(
            f"| {labels[n]} | {cos.min():.4f} | {cos.mean():.4f} | {inv:.6f} | {a1:.2f} ({f1 / a1:.2f}x) "
            f"| {a128:.2f} ({f128 / a128:.2f}x) | {sizes[n] / 1e6:.1f} | {search_seconds.get(n, '-')} |"
        )
    return "\n".join([HEAD, *rows])


def files_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def working_copy(src: Path, prefix: str) -> Path:
    """A copy of bundle SRC in a new temporary folder, which will also hold the other tool's models as variants."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    for name in os.listdir(src):
        shutil.copyfile(src / name, work / name)
    return work


def as_variant(work: Path, model_path: str, variant: str, config: Any) -> Any:
    """MODEL_PATH (an ONNX file the other tool wrote) saved as VARIANT of the working copy WORK (replacing an
    earlier one of that name), loaded by edgert with the bundle's own tokenizer and pooling, with CONFIG."""
    import onnx

    import edgert
    from edgert.bundle import MANIFEST, write_manifest

    m = onnx.load(model_path)
    for stale in work.glob(f"model.{variant}.*"):
        stale.unlink()
    onnx.save(m, str(work / f"model.{variant}.onnx"), save_as_external_data=True, location=f"model.{variant}.data")
    manifest = json.loads((work / MANIFEST).read_text())
    manifest["models"][variant] = f"model.{variant}.onnx"
    write_manifest(work, manifest)
    return edgert.load(work, variant=variant, config=config)


def padded_feeds(ref: Any, texts: list[str], length: int = 128) -> list[dict[str, np.ndarray]]:
    """TEXTS tokenized by REF's tokenizer, one text per feed of shape (1, LENGTH): zeros after the text (its
    attention mask too) and longer texts cut there. The other tools' calibrators stack every item's activations
    (INC's SmoothQuant, Olive's Entropy and Percentile), so their items must have one length."""
    out = []
    for _, feeds in ref.encoder.batches(ref.encoder.encode(list(texts)), 1):
        padded = {}
        for k, v in feeds.items():
            row = np.zeros((1, length), dtype=v.dtype)
            row[0, : min(length, v.shape[1])] = v[0, :length]
            padded[k] = row
        out.append(padded)
    return out


def worst_cosine(model: Any, texts: list[str], expected: np.ndarray) -> float:
    """The worst cosine between MODEL's vector of each text, embedded alone, and the row of EXPECTED for it."""
    got = np.stack([model.embed([t])[0] for t in texts])
    return float(_cos(expected, got).min())
