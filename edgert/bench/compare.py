"""`edgert compare A.json B.json`: the ratio of B to A for each metric, with a Mann-Whitney U test on the raw
samples. A change is flagged only when it is both significant and larger than the threshold, so that reruns of
the same build on a noisy machine are not called regressions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.01


@dataclass(frozen=True)
class Change:
    metric: str
    a: float
    b: float
    ratio: float  # b / a of the medians
    p_value: float | None
    higher_is_better: bool
    unit: str

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def worse_by(self) -> float:
        """How much worse B is than A, as a fraction (negative when better)."""
        return (1 / self.ratio - 1) if self.higher_is_better else (self.ratio - 1)

    def regression(self, threshold: float) -> bool:
        """Significant and beyond the threshold. A single value (one energy reading, one cold-start median) has no
        samples to test, so it is shown but never called a regression: one reading cannot tell noise from change."""
        if self.p_value is None:
            return False
        return self.significant and self.worse_by() > threshold

    def describe(self, threshold: float) -> str:
        if self.a == self.b or self.ratio == 1.0:
            return f"{self.metric}: same ({self.a:.4g} {self.unit})"
        slower = self.worse_by() > 0
        if self.higher_is_better:
            word, factor = ("lower", self.a / self.b) if slower else ("higher", self.b / self.a)
        else:
            word, factor = ("slower", self.ratio) if slower else ("faster", 1 / self.ratio)
            if self.unit in ("MiB", "mJ"):
                word = "higher" if slower else "lower"
        if self.p_value is None:
            verdict = "single value, no test: not judged"
        elif not self.significant:
            verdict = "not significant"
        elif abs(self.worse_by()) <= threshold:
            verdict = f"significant, within {threshold:.0%}"
        else:
            verdict = "significant"
        p = f", p={self.p_value:.2g}" if self.p_value is not None else ""
        return f"{self.metric} {factor:.2f}x {word} ({verdict}{p}): {self.a:.4g} -> {self.b:.4g} {self.unit}"


def _test(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or len(b) < 3:
        return None
    from scipy.stats import mannwhitneyu

    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _samples(result: dict[str, Any]) -> dict[str, tuple[list[float], bool, str]]:
    """metric -> (samples, higher is better, unit). Keys pair up configurations by thread count and batch."""
    out = {}
    for c in result.get("configs", []):
        t = c["threads"] or "auto"
        lat = (c.get("latency") or {}).get("samples") or []
        if lat:
            ms = [x / 1e6 for x in lat]
            out[f"latency p50 (threads {t})"] = (ms, False, "ms")
        for x in c.get("throughput", []):
            per = [x["batch"] * 1e9 / s for s in x["run"]["samples"]]
            out[f"throughput batch {x['batch']} (threads {t})"] = (per, True, "items/s")
    cold = (result.get("cold_start") or {}).get("runs") or []
    if cold:
        out["cold start"] = (list(cold), False, "ms")
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    sa, sb = _samples(a), _samples(b)
    changes = []
    for metric in [m for m in sa if m in sb]:
        xa, hib, unit = sa[metric]
        xb = sb[metric][0]
        ma, mb = float(np.median(xa)), float(np.median(xb))
        changes.append(Change(metric, ma, mb, mb / ma if ma else float("inf"), _test(xa, xb), hib, unit))
    for metric, unit in (("rss", "MiB"), ("energy", "mJ")):
        va, vb = (a.get("summary") or {}).get(metric), (b.get("summary") or {}).get(metric)
        if va and vb:
            changes.append(Change(metric, va, vb, vb / va, None, False, unit))
    return changes
