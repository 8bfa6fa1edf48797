"""The model-swap decision: which variants are on the quality/latency Pareto front, and which is the cheapest that
meets a budget of quality floors (judged on the interval's lower bound) and cost limits (bench's metrics)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BudgetError
from .records import LOWER_IS_BETTER, Check, Decision, Evaluated

if TYPE_CHECKING:
    from ..bench.budget import Limit

_QUALITY = re.compile(r"^\s*([a-z_][a-z_0-9]*(?:@[0-9]+)?)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Quality:
    metric: str
    op: str
    value: float
    text: str

    def check(self, evaluated: Evaluated) -> tuple[float | None, bool]:
        """The bound of the metric's interval that must meet the limit, and whether it does: a floor is met only
        when the whole interval is above it, a ceiling when the whole interval is below it."""
        m = evaluated.metric(self.metric)
        if m is None:
            return None, False
        bound = m.low if self.op in (">=", ">") else m.high
        ok = {"<=": bound <= self.value, "<": bound < self.value, ">=": bound >= self.value, ">": bound > self.value}
        return bound, ok[self.op]


def split(spec: str) -> tuple[list[Quality], list[Limit]]:
    """Quality limits (``ndcg@10>=0.80``) and cost limits in bench's syntax (``p95<=20ms``); a token that is
    neither is refused here, before any work. Quality names are checked against the set's metrics in ``decide``."""
    from ..bench import budget

    quality: list[Quality] = []
    cost: list[Limit] = []
    tokens = [t for t in spec.split(",") if t.strip()]
    if not tokens:
        raise BudgetError("budget: empty; expected e.g. 'ndcg@10>=0.80,p95<=20ms'")
    for token in tokens:
        name = re.split(r"[<>=]", token.strip(), maxsplit=1)[0].strip()
        if name in budget.METRICS:
            cost.append(budget.parse_token(token))
            continue
        m = _QUALITY.match(token)
        if not m:
            raise BudgetError(f"budget: cannot parse {token.strip()!r}; expected e.g. ndcg@10>=0.80 or p95<=20ms")
        quality.append(Quality(m.group(1), m.group(2), float(m.group(3)), token.strip()))
    return quality, cost


def check_names(spec: str, names: Sequence[str]) -> None:
    """BudgetError unless every quality limit of SPEC names one of NAMES."""
    unknown = [q.text for q in split(spec)[0] if q.metric not in names]
    if unknown:
        raise BudgetError(f"budget: {', '.join(unknown)}: this set's metrics are {', '.join(names)}")


def front(results: Sequence[Evaluated], headline: str) -> tuple[str, ...]:
    """Variants no other beats on both the headline metric (higher) and p50 (lower); () without cost figures."""
    points = []
    for r in results:
        m = r.metric(headline)
        if m is None or r.cost is None or r.cost.p50 is None:
            return ()
        sign = -1.0 if headline in LOWER_IS_BETTER else 1.0
        points.append((r.label, sign * m.value, r.cost.p50))
    return tuple(
        label for label, q, t in points if not any((q2 >= q and t2 <= t) and (q2 > q or t2 < t) for _, q2, t2 in points)
    )


def decide(spec: str, results: Sequence[Evaluated]) -> Decision:
    """Every limit against every variant; the chosen one is the lowest p50 among those passing all (the smallest
    peak RSS when p50 was not measured; the first given when neither was)."""
    from ..bench import budget
    from ..bench.records import Summary

    check_names(spec, sorted({m.name for r in results for m in r.metrics}))
    quality, cost = split(spec)
    checks: list[Check] = []
    passing: list[Evaluated] = []
    for r in results:
        ok_all = True
        for q in quality:
            bound, ok = q.check(r)
            checks.append(Check(r.label, q.text, bound, ok))
            ok_all &= ok
        c = r.cost
        summary = Summary(
            p50=c.p50, p95=c.p95, rss=c.rss, energy=c.energy, throughput=c.throughput
        ) if c is not None else Summary()  # fmt: skip
        for row in budget.evaluate(cost, {r.label: summary}):
            checks.append(Check(r.label, row.budget, row.measured, row.passed))
            ok_all &= row.passed
        if ok_all:
            passing.append(r)

    def price(r: Evaluated) -> tuple[float, float]:
        c = r.cost
        return (
            c.p50 if c is not None and c.p50 is not None else float("inf"),
            c.rss if c is not None and c.rss is not None else float("inf"),
        )

    chosen = min(passing, key=price).label if passing else None
    return Decision(spec, chosen, tuple(checks))
