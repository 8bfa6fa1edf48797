"""``edgert compare A.json B.json`` on two evaluations: B's quality against A's, variant by variant.

Two results of the same set (the same sha256) hold the headline metric per item in the same order, so the change
is tested item by item: a paired bootstrap of the mean difference, whose interval must exclude 0 for the change to
count, and lie wholly beyond the threshold (relative to A) for it to be a regression. Metrics that are not means
over items (Spearman, macro-F1) have only their own intervals: apart, they are reported as a change; overlapping,
not judged. Cost figures are single values and are shown, never judged (bench's compare judges cost on rounds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import BOOTSTRAP_DRAWS, LEVEL
from .records import LOWER_IS_BETTER, EvalResult, Evaluated


@dataclass(frozen=True)
class QualityChange:
    variant: str
    metric: str
    a: float
    b: float
    #: the interval of B - A: paired over items, or None where the metric has no per-item values
    low: float | None
    high: float | None
    #: "paired" (item by item), "intervals" (each result's own interval), or "single" (a cost figure)
    method: str
    #: the two results' own intervals do not overlap (the "intervals" method's only evidence)
    apart: bool = False

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER or self.method == "single"

    def worse_by(self) -> float:
        """How much worse B is than A, relative to A (negative: better)."""
        if self.a == 0:  # an error of 0 (fp32 against itself) that grows is worse by any share
            worse = self.b > 0 if self.lower_is_better else self.b < 0
            return 0.0 if self.b == 0 else (float("inf") if worse else float("-inf"))
        d = (self.b - self.a) / abs(self.a)
        return d if self.lower_is_better else -d

    @property
    def significant(self) -> bool:
        if self.method == "paired":
            return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)
        return self.method == "intervals" and self.apart

    def regression(self, threshold: float) -> bool:
        """Surely worse, by more than THRESHOLD of A: for a paired test, the whole interval of the difference
        lies beyond it; for apart intervals, the point change does."""
        if not self.significant or self.worse_by() <= 0:
            return False
        if self.method != "paired" or self.low is None or self.high is None:
            return self.worse_by() > threshold
        nearest = self.low if self.lower_is_better else -self.high  # the end of the interval nearest "no change"
        return nearest / abs(self.a) > threshold if self.a else True

    def describe(self, threshold: float) -> str:
        arrow = f"{self.a:.4g} -> {self.b:.4g}"
        name = f"{self.variant} {self.metric}"
        if self.method == "single":
            return f"{name}: {arrow} (a single value, no test: not judged)"
        if self.a == self.b:
            return f"{name}: same ({self.a:.4g})"
        word = "worse" if self.worse_by() > 0 else "better"
        if self.method == "paired":
            detail = f"B-A {self.b - self.a:+.4f} [{self.low:+.4f}, {self.high:+.4f}] {LEVEL:.0%} paired bootstrap"
            if not self.significant:
                return f"{name} {word} by {abs(self.b - self.a):.4f} (not significant, {detail}): {arrow}"
        else:
            detail = "the two results' own intervals " + ("are apart" if self.apart else "overlap")
            if not self.apart:
                return f"{name}: {arrow} (not judged: {detail})"
        surely = "" if self.regression(threshold) or self.worse_by() <= 0 else f", not surely beyond {threshold:.0%}"
        return f"{name} {word} by {abs(self.worse_by()):.1%} (significant{surely}, {detail}): {arrow}"


def differences(a: EvalResult, b: EvalResult) -> list[str]:
    """What makes A and B evaluations of different things."""
    out = []
    if a.dataset.sha256 != b.dataset.sha256:
        out.append(f"data set {a.dataset.name} ({a.dataset.sha256[:12]}) vs {b.dataset.name} ({b.dataset.sha256[:12]})")
    if a.headline != b.headline:
        out.append(f"headline metric {a.headline} vs {b.headline}")
    if not {r.label for r in a.results} & {r.label for r in b.results}:
        out.append("no variant in common (variants are matched by bundle folder name and variant)")
    return out


def paired(a: np.ndarray, b: np.ndarray, seed: int, draws: int = BOOTSTRAP_DRAWS) -> tuple[float, float]:
    """The percentile interval of mean(B - A) over resamples of the items."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (draws, len(d)))].mean(1)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def _pair(ra: Evaluated, rb: Evaluated, headline: str, same_items: bool, seed: int) -> list[QualityChange]:
    out = []
    for ma in ra.metrics:
        mb = rb.metric(ma.name)
        if mb is None:
            continue
        if ma.name == headline and same_items and ra.per_item and len(ra.per_item) == len(rb.per_item):
            low, high = paired(np.asarray(ra.per_item), np.asarray(rb.per_item), seed)
            out.append(QualityChange(ra.label, ma.name, ma.value, mb.value, low, high, "paired"))
        else:
            apart = ma.high < mb.low or mb.high < ma.low
            out.append(QualityChange(ra.label, ma.name, ma.value, mb.value, None, None, "intervals", apart))
    for name in ("p50", "p95", "rss", "energy"):
        va = getattr(ra.cost, name, None) if ra.cost else None
        vb = getattr(rb.cost, name, None) if rb.cost else None
        if va is not None and vb is not None:
            out.append(QualityChange(ra.label, name, va, vb, None, None, "single"))
    return out


def compare(a: EvalResult, b: EvalResult) -> list[QualityChange]:
    """Every metric of every variant both results have, in A's order."""
    same_items = a.dataset.sha256 == b.dataset.sha256 and a.dataset.items == b.dataset.items
    by_label = {r.label: r for r in b.results}
    out: list[QualityChange] = []
    for ra in a.results:
        rb = by_label.get(ra.label)
        if rb is not None:
            out += _pair(ra, rb, a.headline, same_items, a.seed)
    return out
