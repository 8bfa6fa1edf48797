"""`edgert compare A.json B.json`: B relative to A for each metric, judged on independent round summaries.

Latency samples from one process are autocorrelated, so a test on them is far too confident: reruns of one build
were called regressions with p-values near 1e-15. Each bench run is made of rounds in fresh worker processes;
compare tests the rounds' medians (Welch's t on their logs), gives the ratio of their geometric means with a
confidence interval, and flags a change only when it is significant and the whole interval lies beyond the
threshold. A run measured on a busy machine is shown but does not fail CI unless --strict. Runs of different
models, inputs or settings are refused unless --force, which says what differs. A single value (one energy
reading, one rss figure) is never judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .. import stats

ALPHA = 0.01
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Change:
    metric: str
    a: float
    b: float
    ratio: float  # b / a: of the rounds' geometric means when tested, else of the medians
    p_value: float | None
    higher_is_better: bool
    unit: str
    low: float | None = None  # confidence interval of the ratio
    high: float | None = None
    rounds: tuple[int, int] = (1, 1)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def worse_by(self) -> float:
        """How much worse B is than A, as a fraction (negative when better)."""
        return (1 / self.ratio - 1) if self.higher_is_better else (self.ratio - 1)

    def regression(self, threshold: float) -> bool:
        """Significant, and worse than the threshold with confidence: the whole interval lies beyond it, not only
        the point estimate. On a shared machine whole runs drift by up to 10% (fresh processes fall into faster
        and slower states, in different proportions minutes apart), so a point estimate just past 10% is not
        evidence of a 10% regression. Fewer than three rounds on either side (one energy reading, one rss
        figure) cannot tell noise from change: shown, never called a regression."""
        if self.p_value is None or not self.significant:
            return False
        bound = self.low if not self.higher_is_better else self.high  # the end of the interval nearest "no change"
        return (1 / bound - 1 if self.higher_is_better else bound - 1) > threshold

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
            verdict = (
                "too few rounds to test: not judged" if max(self.rounds) > 1 else "single value, no test: not judged"
            )
        elif not self.significant:
            verdict = "not significant"
        elif not self.regression(threshold) and self.worse_by() > 0:
            verdict = f"significant, not surely beyond {threshold:.0%}"
        elif self.worse_by() <= 0 and abs(self.worse_by()) <= threshold:
            verdict = f"significant, within {threshold:.0%}"
        else:
            verdict = "significant"
        detail = ""
        if self.p_value is not None:
            detail = (
                f", p={self.p_value:.2g}, ratio {self.ratio:.3f} [{self.low:.3f}, {self.high:.3f}] "
                f"{CONFIDENCE:.0%} CI, {self.rounds[0]} vs {self.rounds[1]} rounds"
            )
        return f"{self.metric} {factor:.2f}x {word} ({verdict}{detail}): {self.a:.4g} -> {self.b:.4g} {self.unit}"


def _measured(values: Any, what: str) -> list[float]:
    """Samples that can be compared: a list of finite numbers > 0 (a NaN would print as "nanx faster")."""
    if not isinstance(values, list) or not values:
        raise ValueError(f"{what}: expected a list of numbers, got {values!r:.60}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{what}: {v!r} is not a finite number > 0")
    return [float(v) for v in values]


def _rounds(result: dict[str, Any]) -> dict[str, tuple[list[float], bool, str]]:
    """metric -> (one summary per independent round, higher is better, unit)."""
    out = {}
    for c in result.get("configs", []):
        t = c["threads"] or "auto"
        lat = c.get("latency") or {}
        per_round = lat.get("rounds_p50_ms")
        name = f"latency p50 (threads {t})"
        if per_round:
            out[name] = (_measured(per_round, name), False, "ms")
        elif lat.get("samples"):  # a result without rounds: its one median, never tested
            out[name] = ([stats.median(_measured(lat["samples"], name)) / 1e6], False, "ms")
        for x in c.get("throughput", []):
            name = f"throughput batch {x['batch']} (threads {t})"
            rates = x.get("rounds_items_per_s") or [x["items_per_s"]]
            out[name] = (_measured(rates, name), True, "items/s")
    cold = (result.get("cold_start") or {}).get("runs") or []
    if cold:  # each cold start is its own fresh process: independent by construction
        out["cold start"] = (_measured(cold, "cold start"), False, "ms")
    return out


def check(result: dict[str, Any]) -> None:
    """Raises ValueError, TypeError, KeyError or AttributeError where a result is not one compare can read:
    wrong types, missing keys, or samples that are not finite positive numbers."""
    _rounds(result)
    noisy(result)
    differences(result, result)
    for metric in ("rss", "energy"):
        value = (result.get("summary") or {}).get(metric)
        if value is not None:
            _measured([value], metric)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What makes two runs measure different things: the model, its input, the settings, the CPU."""
    ta, tb = a.get("target") or {}, b.get("target") or {}
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    ma, mb = a.get("machine") or {}, b.get("machine") or {}
    checks = [
        ("model", ta.get("model_sha256") or ta.get("path"), tb.get("model_sha256") or tb.get("path")),
        ("variant", ta.get("variant"), tb.get("variant")),
        ("input", ta.get("description"), tb.get("description")),
        ("threads", [c.get("threads") for c in a.get("configs", [])], [c.get("threads") for c in b.get("configs", [])]),
        ("cpu", ma.get("cpu"), mb.get("cpu")),
    ]
    for key in ("seq_len", "shapes", "values", "input_file", "batch_sizes"):
        checks.append((key, sa.get(key), sb.get(key)))
    out = []
    for name, va, vb in checks:
        if va != vb:
            if name == "model":
                va, vb = _short(va), _short(vb)
            out.append(f"{name}: {va} vs {vb}")
    return out


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return ",".join(f"{k}@{str(h)[:12]}" for k, h in sorted(v.items()))
    return str(v)


def noisy(result: dict[str, Any]) -> list[str]:
    """Why a run was measured on a busy machine (empty when it was not, or when it did not record it)."""
    noise = result.get("noise") or {}
    return list(noise.get("reasons") or []) if noise.get("noisy") else []


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    ra, rb = _rounds(a), _rounds(b)
    changes = []
    for metric in [m for m in ra if m in rb]:
        xa, hib, unit = ra[metric]
        xb = rb[metric][0]
        test = stats.ratio_test(xa, xb, CONFIDENCE)
        if test is None:
            ma, mb = stats.median(xa), stats.median(xb)
            ratio = mb / ma if ma else float("inf")
            changes.append(Change(metric, ma, mb, ratio, None, hib, unit, rounds=(len(xa), len(xb))))
        else:
            changes.append(
                Change(
                    metric, test.a, test.b, test.ratio, test.p_value, hib, unit, test.low, test.high, (len(xa), len(xb))
                )
            )
    for metric, unit in (("rss", "MiB"), ("energy", "mJ")):
        va, vb = (a.get("summary") or {}).get(metric), (b.get("summary") or {}).get(metric)
        if va and vb:
            changes.append(Change(metric, va, vb, vb / va, None, False, unit))
    return changes


def decide(
    a: dict[str, Any], b: dict[str, Any], changes: list[Change], fail_on: float | None, strict: bool
) -> tuple[int, list[str]]:
    """compare's exit code (1: a regression beyond fail_on that counts) and its notes. A run measured on a busy
    machine has its regressions reported, not failed, unless strict."""
    notes = []
    busy = [(label, why) for label, r in (("A", a), ("B", b)) if (why := noisy(r))]
    for label, why in busy:
        notes.append(f"note: {label} was measured on a busy machine: {'; '.join(why)}")
    for label, r in (("A", a), ("B", b)):
        if not r.get("complete", True):
            notes.append(f"note: {label} is an incomplete run (interrupted during {r.get('interrupted_in')})")
    regressed = fail_on is not None and any(ch.regression(fail_on) for ch in changes)
    if regressed and busy and not strict:
        notes.append("note: too noisy to judge: the regression is reported, not failed (--strict fails it)")
        return 0, notes
    return (1 if regressed else 0), notes
