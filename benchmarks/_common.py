"""Shared by the benchmarks: the bundle to measure, a mixed-length corpus, the machine line, timing helpers."""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgert import stats

WORDS = (
    "the model runs on a small device and answers quickly while the battery lasts long enough for a full day "
    "of work edge inference needs careful engineering of memory threads and latency budgets so that users "
    "never notice any delay when they search their notes photos or messages offline"
).split()

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."  # 16 tokens with [CLS]/[SEP]


def mixed_corpus(n: int = 300, seed: int = 0) -> list[str]:
    """Texts from 2 words to ~400 words (past the 256-token max length), log-uniform, in random order."""
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(2), np.log(400), size=n)).astype(int)
    return [" ".join(rng.choice(WORDS, size=k)) for k in lengths]


def default_bundle() -> Path:
    """The default bundle, built through edgert's own export path if it is missing."""
    from edgert.catalog import resolve_bundle

    return resolve_bundle(None)


def machine_line() -> str:
    import onnxruntime as ort

    from edgert import KERNELS, __version__
    from edgert.device import cpu_features, cpu_model

    feats = ",".join(f for f in cpu_features() if f in ("avx2", "avx512_vnni", "amx", "neon", "dotprod"))
    return (
        f"{cpu_model()} ({os.cpu_count()} cpus, {feats}), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, onnxruntime {ort.__version__}, edgert {__version__} "
        f"(kernels: {KERNELS}), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def time_calls(fn, n: int) -> list[float]:
    """Seconds per call, n calls."""
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e9)
    return out


def pct(samples: list[float], q: float) -> float:
    return stats.percentiles(samples, [q])[0]


median = stats.median
