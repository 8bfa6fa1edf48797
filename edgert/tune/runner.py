"""``edgert tune``: the configuration of a bundle that meets a budget best on this device, measured here by bench.

Every variant the bundle carries is measured at every thread count asked for, with bench's own machinery (rounds
in fresh processes, the same summaries and budget syntax), in two passes: a quick one over every configuration,
then a full one over those no other configuration dominates (better on the objective and no larger in memory).
The chosen configuration is the best on the objective among those that meet the budget; it is remembered for
this bundle on this device (``edgert.tuned``), and ``edgert.load`` applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import stats
from ..errors import EdgertError

#: what each objective minimises: (Summary field, sign); throughput is maximised
OBJECTIVES = {
    "latency": ("p50", 1.0),
    "throughput": ("throughput", -1.0),
    "memory": ("rss", 1.0),
    "energy": ("energy", 1.0),
}
#: the quick pass: short rounds, enough to tell a configuration that cannot win
QUICK_PASS = {"min_time": 0.6, "min_count": 30, "throughput_time": 0.3, "cold_runs": 1, "energy_time": 0.5, "warmup": 5,
              "rounds": 3}  # fmt: skip
#: the full pass, over the configurations left
FULL_PASS = {"min_time": 2.0, "min_count": 100, "throughput_time": 1.0, "cold_runs": 1, "energy_time": 1.0,
             "warmup": 10, "rounds": 5}  # fmt: skip


@dataclass(frozen=True)
class Trial:
    variant: str
    threads: int
    p50: float | None
    p95: float | None
    throughput: float | None
    rss: float | None
    energy: float | None
    rounds_p50_ms: tuple[float, ...] = ()
    full: bool = False  # measured in the full pass (else pruned after the quick one)
    memory: str = "default"  # the session's memory mode (edgert.modes)
    p95_sustained: float | None = None  # at the end of a sustained run (tune --sustained)
    throughput_sustained: float | None = None
    passed: bool | None = None  # the budget's verdict (None: no budget)
    failed: tuple[str, ...] = ()  # the limits it misses

    @property
    def label(self) -> str:
        mode = "" if self.memory == "default" else f", memory={self.memory}"
        return f"{self.variant}, threads={self.threads or 'auto'}{mode}"

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.variant, self.threads, self.memory)

    def value(self, objective: str) -> float:
        field, sign = OBJECTIVES[objective]
        v = getattr(self, field)
        return float("inf") if v is None else sign * float(v)


@dataclass(frozen=True)
class TuneResult:
    bundle: str
    objective: str
    budget: str | None
    trials: tuple[Trial, ...]
    chosen: Trial | None
    why: str
    saved: str | None = None


def _measure(
    bundle: Path, variant: str, memory: str, threads: tuple[int, ...], settings: dict[str, Any], options: Any
) -> list[Trial]:
    from ..bench import runner
    from ..bench.config import BenchConfig

    given: dict[str, Any] = {"input_file": Path(options.input_file)} if options.input_file else {}
    batches = options.batch_sizes if options.objective == "throughput" else (1,)
    config = BenchConfig(
        target=bundle, variant=variant, threads=threads, batch_sizes=batches, seq_len=options.seq_len, memory=memory,
        **given, **settings,
    )  # fmt: skip
    result = runner.run(config)
    if not result.complete:
        raise KeyboardInterrupt
    out = []
    for c, s in zip(result.configs, result.summaries().values()):
        rounds = tuple(c.latency.rounds_p50_ms) if c.latency is not None else ()
        out.append(Trial(variant, c.threads_requested, s.p50, s.p95, s.throughput, s.rss, s.energy, rounds,
                         memory=memory))  # fmt: skip
    return out


#: off the latency objective, a configuration is beaten when another is better by this share on the quick pass
MARGIN = 0.10


def beaten(o: Trial, t: Trial, objective: str) -> bool:
    """O is surely better than T on the objective: for latency, the rounds' ratio test says T is slower (its
    interval above 1); for the others, by more than MARGIN."""
    if objective == "latency":
        test = stats.ratio_test(o.rounds_p50_ms, t.rounds_p50_ms)
        return test is not None and test.low > 1.0
    a, b = o.value(objective), t.value(objective)
    return a < b and abs(a - b) > MARGIN * abs(b)


def dominated(t: Trial, others: list[Trial], objective: str) -> bool:
    """Another trial is surely better on the objective and no larger in memory: T cannot win, whatever the
    budget, so it is not measured in full. A quick pass is noisy, so being slower by a little is not enough."""
    for o in others:
        if o is t:
            continue
        if (o.rss or float("inf")) <= (t.rss or float("inf")) and beaten(o, t, objective):
            return True
    return False


def tune(bundle: Path, options: Any, echo: Callable[[str], None]) -> TuneResult:
    from .. import tuned
    from ..bench import budget as budgets
    from ..bundle import Bundle

    b = Bundle.open(bundle, verify=True)
    variants = options.variants or tuple(b.models)
    missing = [v for v in variants if v not in b.models]
    if missing:
        raise EdgertError(f"{bundle}: has no variant {missing[0]!r} (has {', '.join(b.models)})")
    if len(b.models) == 1:
        echo(f"tune: {bundle} has one variant ({next(iter(b.models))}): tuning its threads and memory modes only; "
             "export with --keep-candidates N so that the device can choose among recipes too")  # fmt: skip
    every = budgets.parse(options.budget) if options.budget else []
    held = [lim for lim in every if lim.metric in budgets.SUSTAINED]
    limits = [lim for lim in every if lim.metric not in budgets.SUSTAINED]
    cannot = budgets.unmeasurable(limits, int(QUICK_PASS["cold_runs"]), "auto")
    if held and options.sustained is None:
        cannot += [f"{lim.text} (measured by holding the load: give --sustained DURATION)" for lim in held]
    if cannot:
        raise EdgertError(f"budget cannot be measured by tune: {'; '.join(cannot)}")
    sensors = None
    if options.sustained is not None:
        from ..device.sensors import Sensors

        sensors = Sensors()
        sensors.probe()  # a sensor that is there but unreadable fails now, not after the passes
    threads = options.threads
    trials: list[Trial] = []
    modes = options.memory
    total = len(variants) * len(modes) * len(threads)
    shown = f" x memory {', '.join(modes)}" if modes != ("default",) else ""
    echo(f"tune: quick pass over {total} configurations ({', '.join(variants)} x threads {threads}{shown})")
    try:
        for v in variants:
            for m in modes:
                trials += _measure(bundle, v, m, threads, QUICK_PASS, options)
                for t in trials[-len(threads) :]:
                    echo(f"  quick  {t.label}: p50 {_ms(t.p50)}, rss {_mib(t.rss)}")
        left = [t for t in trials if not dominated(t, trials, options.objective)]
        echo(f"tune: full pass over {len(left)} of them (the others are beaten on {options.objective} and memory)")
        full: list[Trial] = []
        for v, m in dict.fromkeys((t.variant, t.memory) for t in left):
            mine = tuple(t.threads for t in left if (t.variant, t.memory) == (v, m))
            for t in _measure(bundle, v, m, mine, FULL_PASS, options):
                full.append(replace(t, full=True))
                echo(f"  full   {t.label}: p50 {_ms(t.p50)}, p95 {_ms(t.p95)}, rss {_mib(t.rss)}")
    except KeyboardInterrupt:
        done = [t for t in trials]
        best = min(done, key=lambda t: t.value(options.objective), default=None)
        shown = f"; best so far: {best.label} (quick pass)" if best else ""
        raise EdgertError(f"tune interrupted after {len(done)} configurations{shown}") from None
    judged = []
    for t in full:
        if limits:
            from ..bench.records import Summary

            rows = budgets.evaluate(limits, {t.label: Summary(p50=t.p50, p95=t.p95, rss=t.rss, energy=t.energy,
                                                            throughput=t.throughput)})  # fmt: skip
            t = replace(t, passed=all(r.passed for r in rows), failed=tuple(r.budget for r in rows if not r.passed))
        judged.append(t)
    pruned = [t for t in trials if t.key not in {j.key for j in judged}]
    passing = [t for t in judged if t.passed is not False]
    chosen = min(passing, key=lambda t: t.value(options.objective), default=None)
    field = OBJECTIVES[options.objective][0]
    if chosen is not None and options.sustained is not None:
        from .hold import hold, sustained_run

        ranked = sorted(passing, key=lambda t: t.value(options.objective))
        echo(f"tune: holding the {len(ranked)} that pass under load for {options.sustained:g} s each, best first, "
             "until one keeps the budget")  # fmt: skip
        try:
            done, chosen = hold(ranked, held, sustained_run(bundle, options, sensors), echo)
        except KeyboardInterrupt:
            raise EdgertError(
                f"tune interrupted while holding the load; best in the passes: {ranked[0].label}"
            ) from None
        by_key = {t.key: t for t in done}
        judged = [by_key.get(t.key, t) for t in judged]
        if chosen is None:
            closest = min(done, key=lambda t: len(t.failed))
            why = (f"no configuration keeps {options.budget} under {options.sustained:g} s of load; closest: "
                   f"{closest.label} (misses {', '.join(closest.failed)})")  # fmt: skip
        else:
            meets = f"meets {options.budget}" if options.budget else "was measured in full"
            why = f"the best {field} that {meets} and keeps it after {options.sustained:g} s of load"
    elif chosen is None:
        closest = min(judged, key=lambda t: len(t.failed))
        why = f"no configuration meets {options.budget}; closest: {closest.label} (misses {', '.join(closest.failed)})"
    else:
        why = f"the best {field} of the {len(passing)} configuration(s) that " + (
            f"meet {options.budget}" if limits else "were measured in full"
        )
    saved = None
    if chosen is not None and options.save:
        decision = tuned.Decision(
            bundle=tuned.bundle_key({n: e.sha256 for n, e in b.files.items()}), fingerprint=tuned.fingerprint(),
            variant=chosen.variant, threads=chosen.threads, memory=chosen.memory, objective=options.objective,
            budget=options.budget,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            figures={"p50": chosen.p50, "p95": chosen.p95, "throughput": chosen.throughput, "rss": chosen.rss,
                     **({"p95@sustained": chosen.p95_sustained} if chosen.p95_sustained is not None else {})},
        )  # fmt: skip
        path = tuned.save(decision)
        saved = str(path) if path else None
    return TuneResult(str(bundle), options.objective, options.budget, (*judged, *pruned), chosen, why, saved)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} ms"


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} MiB"
