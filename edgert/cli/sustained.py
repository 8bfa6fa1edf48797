"""`edgert bench --sustained`: a bundle under load for minutes; the four series, the start against the end, the
first throttle, a budget on the last window (p95@sustained<=30ms) and bench's exit codes."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import safepath
from ..bench.budget import Limit, evaluate
from ..bench.config import BenchConfig
from ..errors import EdgertError
from ..sustained.options import SustainedOptions


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
    if args.json:
        records.save(result, args.json)
    if args.markdown == "-":
        print(report.markdown(result))
    else:
        report.print_rich(result)
        if args.markdown:
            text = report.markdown(result)
            safepath.write_output(Path(args.markdown), text, error=EdgertError, what="--markdown")
    if args.plot and result.seconds:
        report.plot(result, Path(args.plot))
    if not result.complete:
        saved = f"; the {len(result.seconds)} seconds so far saved to {args.json}" if args.json else ""
        print(f"edgert: interrupted after {result.elapsed:.0f} s of the sustained run{saved}", file=sys.stderr)
        return 130
    if limits and not all(b.passed for b in result.budget):
        for status in ("violated", "not measured"):
            rows = [b.budget for b in result.budget if b.status == status]
            if rows:
                print(f"edgert: budget {status}: {', '.join(rows)}", file=sys.stderr)
        return 1
    return 0
