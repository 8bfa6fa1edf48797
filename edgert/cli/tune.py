"""`edgert tune`: options to TuneOptions, the trials to a table, the choice and its exit code."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

from ..errors import require


def _f(v: float | None, unit: str, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f} {unit}"


def run_tune(args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    require("psutil", "bench")
    require("rich", "bench")
    from ..bench.report import print_tables
    from ..history import recorder
    from ..tune.options import TuneOptions
    from ..tune.runner import tune
    from .options import from_args

    store = recorder.url_for(args.store) if recorder.wanted(args.record) else None  # a bad URL: before measuring
    options = from_args(TuneOptions, args)
    if options.budget:  # a bad budget is a usage error before any work
        from ..bench import budget

        budget.parse(options.budget)
    bundle = resolve_bundle(args.bundle)
    result = tune(bundle, options, lambda line: print(line, file=sys.stderr, flush=True))
    held = any(t.p95_sustained is not None for t in result.trials)
    head = ["configuration", "pass", "p50", "p95", "throughput", "peak RSS", *(["p95 at the end"] if held else []),
            "budget", "chosen"]  # fmt: skip
    rows = []
    for t in result.trials:
        verdict = "-" if t.passed is None else ("pass" if t.passed else "FAIL " + ", ".join(t.failed))
        end = [_f(t.p95_sustained, "ms")] if held else []
        rows.append([
            t.label, ("held" if t.p95_sustained is not None else "full") if t.full else "quick (pruned)",
            _f(t.p50, "ms"), _f(t.p95, "ms"), _f(t.throughput, "items/s", 1), _f(t.rss, "MiB", 0), *end, verdict,
            "*" if t is result.chosen else "",
        ])  # fmt: skip
    print_tables([(f"edgert tune {Path(result.bundle).name} (objective: {result.objective})", head, rows)])
    print(f"chosen: {result.chosen.label if result.chosen else 'none'}: {result.why}")
    if result.saved:
        print(f"remembered in {result.saved}: edgert.load() applies it here (load(..., tuned=False) does not)")
    elif result.chosen is not None and options.save:
        print("edgert: warning: not remembered: no private, writable EDGERT_HOME to sign it in", file=sys.stderr)
    if store is not None:
        from ..history.records import from_tune

        recorder.record(from_tune(result), store, lambda line: print(line, file=sys.stderr))
    return 0 if result.chosen is not None else 1
