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

from dataclasses import dataclass

from .. import stats
from .records import BenchResult, TargetInfo

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
        if self.p_value is None or not self.significant or self.low is None or self.high is None:
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


def _rounds(result: BenchResult) -> dict[str, tuple[tuple[float, ...], bool, str]]:
    """metric -> (one summary per independent round, higher is better, unit). Records hold only finite
    positive times and rates (checked when a file is read), so every ratio here is defined."""
    out: dict[str, tuple[tuple[float, ...], bool, str]] = {}
    for c in result.configs:
        t = c.threads or "auto"
        if c.latency is not None and c.latency.rounds_p50_ms:
            out[f"latency p50 (threads {t})"] = (c.latency.rounds_p50_ms, False, "ms")
        for x in c.throughput:
            out[f"throughput batch {x.batch} (threads {t})"] = (x.rounds_items_per_s, True, "items/s")
    if result.cold_start is not None and result.cold_start.runs_ms:
        # each cold start is its own fresh process: independent by construction
        out["cold start"] = (result.cold_start.runs_ms, False, "ms")
    return out


def differences(a: BenchResult, b: BenchResult) -> list[str]:
    """What makes two runs measure different things: the model, its input, the settings, the CPU."""
    ta, tb = a.target, b.target
    sa, sb = a.settings, b.settings
    checks: list[tuple[str, object, object]] = [
        ("model", _model(ta), _model(tb)),
        ("variant", ta and ta.variant, tb and tb.variant),
        ("input", ta and ta.description, tb and tb.description),
        ("threads", [c.threads for c in a.configs], [c.threads for c in b.configs]),
        ("cpu", a.machine.cpu, b.machine.cpu),
    ]
    for key in ("seq_len", "shapes", "values", "input_file", "batch_sizes"):
        checks.append((key, getattr(sa, key), getattr(sb, key)))
    out = []
    for name, va, vb in checks:
        if va != vb:
            if name == "model":
                va, vb = _short(va), _short(vb)
            out.append(f"{name}: {_shown(va)} vs {_shown(vb)}")
    return out


def _model(t: TargetInfo | None) -> dict[str, str] | str | None:
    return None if t is None else (t.model_sha256 or t.path)


def _shown(v: object) -> str:
    if isinstance(v, tuple):
        return str(list(v))
    return str(v)


def _short(v: object) -> str:
    if isinstance(v, dict):
        return ",".join(f"{k}@{str(h)[:12]}" for k, h in sorted(v.items()))
    return str(v)


def noisy(result: BenchResult) -> list[str]:
    """Why a run was measured on a busy machine (empty when it was not, or when it did not record it)."""
    return list(result.noise.reasons) if result.noise is not None and result.noise.noisy else []


def compare(a: BenchResult, b: BenchResult) -> list[Change]:
    ra, rb = _rounds(a), _rounds(b)
    changes = []
    for metric in [m for m in ra if m in rb]:
        xa, hib, unit = ra[metric]
        xb = rb[metric][0]
        test = stats.ratio_test(xa, xb, CONFIDENCE)
        if test is None:
            ma, mb = stats.median(xa), stats.median(xb)
            changes.append(Change(metric, ma, mb, mb / ma, None, hib, unit, rounds=(len(xa), len(xb))))
        else:
            changes.append(
                Change(
                    metric, test.a, test.b, test.ratio, test.p_value, hib, unit, test.low, test.high, (len(xa), len(xb))
                )
            )
    sa, sb = a.summary(), b.summary()
    for metric, unit in (("rss", "MiB"), ("energy", "mJ")):
        va, vb = sa.get(metric), sb.get(metric)
        if va and vb:
            changes.append(Change(metric, va, vb, vb / va, None, False, unit))
    return changes


def decide(
    a: BenchResult, b: BenchResult, changes: list[Change], fail_on: float | None, strict: bool
) -> tuple[int, list[str]]:
    """compare's exit code (1: a regression beyond fail_on that counts) and its notes. A run measured on a busy
    machine has its regressions reported, not failed, unless strict."""
    notes = []
    busy = [(label, why) for label, r in (("A", a), ("B", b)) if (why := noisy(r))]
    for label, why in busy:
        notes.append(f"note: {label} was measured on a busy machine: {'; '.join(why)}")
    for label, r in (("A", a), ("B", b)):
        if not r.complete:
            notes.append(f"note: {label} is an incomplete run (interrupted during {r.interrupted_in})")
    regressed = fail_on is not None and any(ch.regression(fail_on) for ch in changes)
    if regressed and busy and not strict:
        notes.append("note: too noisy to judge: the regression is reported, not failed (--strict fails it)")
        return 0, notes
    return (1 if regressed else 0), notes
