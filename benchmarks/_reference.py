"""The side-by-side table of the reference runs (benchmarks/olive_reference.py, inc_reference.py): other tools'
models beside fp32 and edgert's choice, measured the same way on benchmarks/quantization.py's held-out corpus."""

from __future__ import annotations

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
