"""Steps in a metric over a sequence of runs, and the gate that judges the latest run against the ones before it.

A series is one metric of one model variant on one device with one hardware fingerprint, in the order the runs
were made. Change points come from ``ruptures`` (PELT, a least-squares cost on the log of each run's value, at
least three runs per segment, so one or two odd runs cannot be a level of their own). Its penalty is set by the
noise: the larger of what the rounds inside each run say (the variance of a run's median) and what the runs say of each
other (a robust estimate from successive differences, which a single step barely moves), so that on a shared
machine the drift between whole runs is not called a step. A change point is kept as a step only when the levels
on its two sides differ by a Welch test at ALPHA and by more than the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import stats
from .records import Measure, Run

ALPHA = 0.01
#: the penalty per change point, in units of the noise variance (2 log n is BIC's; more is more conservative)
PENALTY = 3.0
#: runs the gate needs before it judges
MIN_BASELINE = 3


@dataclass(frozen=True)
class Step:
    index: int  # the first run of the new level, 0-based in the series
    uid: str
    before: float  # the levels' medians
    after: float
    ratio: float  # after / before
    p_value: float
    worse: bool


@dataclass(frozen=True)
class Series:
    device: str
    fingerprint: str
    model: str
    variant: str
    metric: str
    runs: tuple[Run, ...]
    unit: str
    higher_is_better: bool

    @property
    def values(self) -> list[float]:
        return [self._measure(r).value for r in self.runs]

    def rounds(self) -> list[tuple[float, ...]]:
        return [self._measure(r).rounds for r in self.runs]

    def _measure(self, run: Run) -> Measure:
        m = run.measure(self.metric)
        assert m is not None  # series() keeps only runs that have the metric
        return m

    @property
    def label(self) -> str:
        return f"{self.model}:{self.variant} {self.metric} on {self.device} ({self.fingerprint[:8]})"


def series(runs: Sequence[Run], metric: str) -> list[Series]:
    """RUNS (oldest first) that have METRIC, one series per device, fingerprint, model and variant."""
    groups: dict[tuple[str, str, str, str], list[Run]] = {}
    for r in runs:
        if r.measure(metric) is not None and r.measure(metric).value > 0:  # type: ignore[union-attr]
            groups.setdefault((r.device, r.fingerprint, r.model, r.variant), []).append(r)
    out = []
    for (device, fp, model, variant), members in groups.items():
        first = members[0].measure(metric)
        assert first is not None
        out.append(Series(device, fp, model, variant, metric, tuple(members), first.unit, first.higher_is_better))
    return out


def series_of(runs: Sequence[Run], metric: str) -> list[Series]:
    """``series``, or EdgertError when no run has METRIC: what every command on a metric starts from."""
    from ..errors import EdgertError

    found = series(runs, metric)
    if not found:
        raise EdgertError(f"no run in the store has {metric!r} (edgert history show RUN lists a run's metrics)")
    return found


def noise(values: Sequence[float], rounds: Sequence[tuple[float, ...]]) -> float:
    """The standard deviation of one run's log value: the larger of the rounds' and the runs' own estimate."""
    y = np.log(np.asarray(values, dtype=np.float64))
    between = 0.0
    if len(y) >= 3:
        between = 1.4826 * float(np.median(np.abs(np.diff(y)))) / math.sqrt(2)
    within = [np.var(np.log(r), ddof=1) / len(r) for r in rounds if len(r) >= 2 and min(r) > 0]
    inside = math.sqrt(float(np.median(within))) if within else 0.0
    return max(between, inside, 1e-6)


def steps(s: Series, threshold: float) -> list[Step]:
    """The steps of series S: change points that are significant and larger than THRESHOLD (a share, 0.05)."""
    import ruptures  # type: ignore[import-untyped]

    values = s.values
    n = len(values)
    if n < 4:
        return []
    y = np.log(np.asarray(values, dtype=np.float64))
    sigma = noise(values, s.rounds())
    ends = (
        ruptures.Pelt(model="l2", min_size=3, jump=1)
        .fit(y.reshape(-1, 1))
        .predict(pen=PENALTY * sigma**2 * math.log(n))
    )
    bounds = [0, *ends]
    found = []
    for k in range(1, len(bounds) - 1):
        left, cut, right = bounds[k - 1], bounds[k], bounds[k + 1]
        before, after = values[left:cut], values[cut:right]
        test = stats.ratio_test(before, after)
        if test is None:
            continue
        b, a = stats.median(before), stats.median(after)
        ratio = a / b
        worse = ratio < 1 if s.higher_is_better else ratio > 1
        if test.p_value < ALPHA and abs(math.log(ratio)) > math.log1p(threshold):
            found.append(Step(cut, s.runs[cut].uid, b, a, ratio, test.p_value, worse))
    return found


@dataclass(frozen=True)
class Verdict:
    series: str
    latest: float
    baseline: float  # the median of the runs before
    ratio: float
    p_value: float | None
    regression: bool
    why: str


def gate(s: Series, last: int, threshold: float) -> Verdict:
    """The series' latest run against the LAST runs before it: a regression when it is worse by more than
    THRESHOLD and outside what those runs vary by (a one-sided t prediction test on the logs, the latest run's
    own rounds' noise added, at ALPHA)."""
    from scipy import stats as sstats

    values, rounds = s.values, s.rounds()
    latest = values[-1]
    base = values[-1 - last : -1] if last else values[:-1]
    if len(base) < MIN_BASELINE:
        why = f"{len(base)} earlier run(s) on this device and fingerprint; the gate needs {MIN_BASELINE}"
        return Verdict(s.label, latest, math.nan, math.nan, None, False, why)
    y = np.log(np.asarray(base, dtype=np.float64))
    spread = float(np.std(y, ddof=1))
    own = rounds[-1]
    inside = float(np.var(np.log(own), ddof=1) / len(own)) if len(own) >= 2 and min(own) > 0 else 0.0
    scale = math.sqrt(spread**2 * (1 + 1 / len(y)) + inside) or 1e-9
    shift = math.log(latest) - float(y.mean())
    worse_shift = -shift if s.higher_is_better else shift
    p = float(sstats.t.sf(worse_shift / scale, df=len(y) - 1))
    median = stats.median(base)
    ratio = latest / median
    worse_by = (1 / ratio - 1) if s.higher_is_better else ratio - 1
    regression = p < ALPHA and worse_by > threshold
    if regression:
        why = f"worse by {worse_by:.1%} than the median of {len(base)} runs (p={p:.2g})"
    elif worse_by > threshold:
        why = f"worse by {worse_by:.1%}, but within what {len(base)} runs vary by (p={p:.2g})"
    else:
        why = f"{'worse' if worse_by > 0 else 'better'} by {abs(worse_by):.1%}: within {threshold:.0%} (p={p:.2g})"
    return Verdict(s.label, latest, median, ratio, p, regression, why)
