"""``edgert monitor report``: a recent window of a model's observations against a baseline window.

Each statistic the monitor records (input size, embedding length and distance to the centroid, top-1 confidence,
share of speech, and the top-1 label) is compared by its population stability index over the baseline's deciles
(labels: over the labels) and by a two-sample test from scipy (Kolmogorov-Smirnov; chi-square for labels). A
statistic has drifted when both say so: a PSI of at least PSI_DRIFT (the usual "significant shift") and a p-value
under ALPHA, so that neither a large but noisy PSI on few items nor a tiny but significant shift on many is
flagged. Latency is reported beside them, its p50 and p95 with bootstrap intervals per window, and not counted as
drift: a longer input is slower by right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PSI_DRIFT = 0.2
ALPHA = 0.001
#: observations a window needs at least
MIN_WINDOW = 30
BINS = 10
STATS = ("input_size", "norm", "distance", "confidence", "speech")


@dataclass(frozen=True)
class Shift:
    stat: str
    baseline: int  # items in each window with a value
    recent: int
    psi: float
    p_value: float
    before: float | str  # the baseline's median (labels: its most common label)
    after: float | str

    @property
    def drift(self) -> bool:
        return self.psi >= PSI_DRIFT and self.p_value < ALPHA


@dataclass(frozen=True)
class Percentiles:
    calls: int
    p50: tuple[float, float, float]  # value, low, high
    p95: tuple[float, float, float]


@dataclass(frozen=True)
class Report:
    series: str
    baseline: tuple[str, str, int]  # first and last date, rows
    recent: tuple[str, str, int]
    shifts: tuple[Shift, ...]
    latency: tuple[Percentiles, Percentiles]

    @property
    def drift(self) -> bool:
        return any(s.drift for s in self.shifts)


def psi(baseline: np.ndarray, recent: np.ndarray) -> float:
    """Population stability index of RECENT against BASELINE over the baseline's decile bins."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, BINS + 1)[1:-1]))
    b = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=len(edges) + 1) / len(baseline)
    r = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=len(edges) + 1) / len(recent)
    return _psi(b, r)


def _psi(b: np.ndarray, r: np.ndarray) -> float:
    eps = 1e-4  # an empty bin on one side: a large but finite term
    b, r = np.maximum(b, eps), np.maximum(r, eps)
    return float(np.sum((r - b) * np.log(r / b)))


def label_shift(baseline: Sequence[str], recent: Sequence[str]) -> tuple[float, float]:
    """(PSI over the labels, the chi-square test's p-value of the two windows' label counts)."""
    from scipy.stats import chi2_contingency

    labels = sorted(set(baseline) | set(recent))
    b = np.array([sum(1 for x in baseline if x == label) for label in labels], dtype=np.float64)
    r = np.array([sum(1 for x in recent if x == label) for label in labels], dtype=np.float64)
    if len(labels) < 2:
        return 0.0, 1.0
    p = float(chi2_contingency(np.vstack([b, r]) + 0.5).pvalue)  # +0.5: no zero cells
    return _psi(b / b.sum(), r / r.sum()), p


def _percentiles(latencies: np.ndarray, seed: int = 0) -> Percentiles:
    rng = np.random.default_rng(seed)
    draws = latencies[rng.integers(0, len(latencies), (1000, len(latencies)))]
    out = []
    for q in (50, 95):
        values = np.percentile(draws, q, axis=1)
        low, high = np.quantile(values, [0.025, 0.975])
        out.append((float(np.percentile(latencies, q)), float(low), float(high)))
    return Percentiles(len(latencies), out[0], out[1])


def _calls(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """One latency per call (the rows of one call share it)."""
    seen = {(r["created"], r["call"], r["latency_ms"]) for r in rows}
    return np.array([ms for _, _, ms in seen], dtype=np.float64)


def windows(rows: Sequence[dict[str, Any]], size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first SIZE rows and the last SIZE rows; halves when there are fewer than 2 x SIZE."""
    if len(rows) < 2 * MIN_WINDOW:
        raise ValueError(f"{len(rows)} observations; a report needs {2 * MIN_WINDOW} (two windows of {MIN_WINDOW})")
    n = min(size, len(rows) // 2)
    return list(rows[:n]), list(rows[-n:])


def report(rows: Sequence[dict[str, Any]], size: int = 500) -> Report:
    """ROWS (one series, oldest first) as a baseline window against a recent one."""
    from scipy.stats import ks_2samp

    base, recent = windows(rows, size)
    shifts = []
    for stat in STATS:
        b = np.array([r[stat] for r in base if r[stat] is not None], dtype=np.float64)
        r = np.array([x[stat] for x in recent if x[stat] is not None], dtype=np.float64)
        if len(b) < MIN_WINDOW or len(r) < MIN_WINDOW:
            continue
        p = float(ks_2samp(b, r).pvalue)
        shifts.append(Shift(stat, len(b), len(r), psi(b, r), p, float(np.median(b)), float(np.median(r))))
    bl = [r["label"] for r in base if r["label"] is not None]
    rl = [r["label"] for r in recent if r["label"] is not None]
    if len(bl) >= MIN_WINDOW and len(rl) >= MIN_WINDOW:
        value, p = label_shift(bl, rl)
        shifts.append(Shift("label", len(bl), len(rl), value, p, _mode(bl), _mode(rl)))
    first = rows[0]
    series = f"{first['model']}:{first['variant']} on {first['device']}"
    return Report(
        series,
        (base[0]["created"], base[-1]["created"], len(base)),
        (recent[0]["created"], recent[-1]["created"], len(recent)),
        tuple(shifts),
        (_percentiles(_calls(base)), _percentiles(_calls(recent))),
    )


def _mode(labels: list[str]) -> str:
    return max(set(labels), key=labels.count)


def describe(s: Shift) -> str:
    def shown(v: float | str) -> str:
        return v if isinstance(v, str) else f"{v:.4g}"

    verdict = "DRIFT" if s.drift else "stable"
    p = f"p={s.p_value:.2g}" if s.p_value >= 1e-300 else "p<1e-300"
    return (
        f"{verdict:6}  {s.stat}: {shown(s.before)} -> {shown(s.after)} (PSI {s.psi:.3f}, {p}; "
        f"{s.baseline} vs {s.recent} items)"
    )


def interval(t: tuple[float, float, float]) -> str:
    value, low, high = t
    return f"{value:.3g} ms [{low:.3g}, {high:.3g}]" if math.isfinite(value) else "-"
