"""Every median, percentile and interval that edgert prints goes through here: bench, compare, the export's
search and the scripts in benchmarks/.

NumPy computes the order statistics (linear interpolation: an even count's median is the mean of the two middle
values) and SciPy the test, so there is one definition of each figure and no hand-written statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def median(values: Sequence[float]) -> float:
    if len(values) == 0:
        raise ValueError("median of no values")
    return float(np.median(np.asarray(values, dtype=np.float64)))


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    if len(values) == 0:
        raise ValueError("percentiles of no values")
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), qs)]


def spread(values: Sequence[float]) -> float | None:
    """How far apart independent round summaries are: (max - min) / median. None for fewer than two."""
    if len(values) < 2:
        return None
    v = np.asarray(values, dtype=np.float64)
    mid = float(np.median(v))
    return float((v.max() - v.min()) / mid) if mid else None


@dataclass(frozen=True)
class RatioTest:
    """B relative to A, from independent round summaries: the ratio of their geometric means, its confidence
    interval (Welch's t on the logs), the test's p-value, and the two geometric means."""

    ratio: float
    low: float
    high: float
    p_value: float
    confidence: float
    a: float
    b: float


def ratio_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> RatioTest | None:
    """None when either side has fewer than three rounds: too few to tell noise from change."""
    if len(a) < 3 or len(b) < 3:
        return None
    from scipy.stats import ttest_ind

    la, lb = np.log(np.asarray(a, dtype=np.float64)), np.log(np.asarray(b, dtype=np.float64))
    ga, gb = float(np.exp(la.mean())), float(np.exp(lb.mean()))
    ratio = gb / ga
    if np.ptp(la) == 0 and np.ptp(lb) == 0:  # no variance at all: t is undefined; the ratio is exact
        return RatioTest(ratio, ratio, ratio, 1.0 if la[0] == lb[0] else 0.0, confidence, ga, gb)
    result = ttest_ind(lb, la, equal_var=False)
    ci = result.confidence_interval(confidence)
    return RatioTest(ratio, float(np.exp(ci.low)), float(np.exp(ci.high)), float(result.pvalue), confidence, ga, gb)
