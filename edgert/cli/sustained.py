"""`edgert bench --sustained`: a bundle under load for minutes; the four series, the start against the end, the
first throttle, a budget on the last window (p95@sustained<=30ms) and bench's exit codes."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from ..bench.budget import Limit, evaluate
from ..bench.config import BenchConfig
from ..sustained.options import SustainedOptions
from .outputs import budget_exit, write_outputs


def run_sustained(
    args: Namespace, config: BenchConfig, options: SustainedOptions, limits: list[Limit] | None,
    progress: Callable[[], Any],
) -> int:  # fmt: skip
    from ..sustained import records, report
    from ..sustained.run import run

    with progress() as p:
        result = run(config, options, p)
    if limits:
        result = result.with_budget(evaluate(limits, {result.label: result.summary()}))
    write_outputs(args, result, records.save, report, plot=bool(result.seconds))
    if not result.complete:
        n = len(result.seconds)
        saved = f"; the {n} second{'s' if n != 1 else ''} so far saved to {args.json}" if args.json else ""
        print(f"edgert: interrupted after {result.elapsed:.0f} s of the sustained run{saved}", file=sys.stderr)
        return 130
    return budget_exit(result.budget, lambda b: b.budget) if limits else 0
