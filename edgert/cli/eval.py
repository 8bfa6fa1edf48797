"""`edgert eval` on the command line: options to EvalOptions, the result to a table, JSON and an exit code."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

from .. import safepath
from ..errors import EdgertError, require
from ..eval.options import EvalOptions
from ..eval.records import EvalResult, Evaluated


def _echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _interval(r: Evaluated, name: str) -> str:
    m = r.metric(name)
    return "-" if m is None else f"{m.value:.3f} [{m.low:.3f}, {m.high:.3f}]"


def _num(value: float | None, unit: str, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f} {unit}"


def quality_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Per variant, the headline metric first, then the others, each with its interval."""
    names = [result.headline] + sorted({m.name for r in result.results for m in r.metrics} - {result.headline})
    return ["variant", *names], [[r.label, *(_interval(r, n) for n in names)] for r in result.results]


def cost_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Per variant, the worst slice of the headline metric, bench's cost, and a mark on the Pareto front."""
    head = ["variant", f"worst slice ({result.headline})", "p50", "energy/item", "peak RSS", "front"]
    body = []
    for r in result.results:
        worst, c = r.worst_slice(), r.cost
        body.append(
            [
                r.label,
                f"{worst.key} ({worst.items}): {worst.metric.value:.3f}" if worst else "-",
                _num(c.p50 if c else None, "ms"),
                _num(c.energy if c else None, "mJ", 3),
                _num(c.rss if c else None, "MiB", 0),
                "*" if r.label in result.front else "",
            ]
        )
    return head, body


def print_report(result: EvalResult) -> None:
    from rich.console import Console

    from ..bench.report import print_tables

    d = result.dataset
    console = Console()
    console.print(
        f"{d.kind} set {d.name}: {d.items:,} scored items, {d.skipped} rows skipped; "
        f"{result.level:.0%} bootstrap intervals ({result.draws} draws, seed {result.seed})",
        markup=False,
    )
    print_tables([("Quality", *quality_rows(result)), ("Cost on this device", *cost_rows(result))], console)
    meters = sorted({r.cost.energy_meter for r in result.results if r.cost and r.cost.energy_meter})
    if meters:
        if meters == ["estimate"]:
            console.print("energy per item: ESTIMATED from CPU time (no energy meter here; edgert device says why)")
        else:
            console.print(f"energy per item: measured ({', '.join(meters)})")
    if result.front:
        console.print(f"* on the Pareto front of {result.headline} against p50: no other variant is better at both")
    for p in d.problems[:5]:
        console.print(f"skipped: {p}", style="yellow", markup=False)
    if d.skipped > 5:
        console.print(f"... {d.skipped - 5} more skipped rows (--json lists the first 20)", style="yellow")
    if result.decision is not None:
        dec = result.decision
        for c in dec.checks:
            shown = "not measured" if c.measured is None else f"{c.measured:.4g}"
            console.print(f"budget {c.limit} on {c.variant}: {shown} {'pass' if c.passed else 'FAIL'}", markup=False)
        verdict = f"chosen: {dec.chosen} (the lowest p50 of those that pass)" if dec.chosen else "no variant meets it"
        console.print(f"budget {dec.budget}: {verdict}", markup=False)


def run_eval(args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    require("rich", "bench")
    from ..eval import evaluate
    from .options import from_args

    options = from_args(EvalOptions, args)
    if options.cost:
        require("psutil", "bench")
    if args.budget:  # a bad budget is a usage error before any work
        from ..eval.decide import split

        if split(args.budget)[1] and not options.cost:
            raise EdgertError("--budget: its cost limits need the cost runs, which --no-cost turns off")
    if args.json:
        safepath.check_output(Path(args.json), error=EdgertError, what="--json")
    bundles = [resolve_bundle(b) for b in args.bundles]
    result = evaluate(bundles, options, budget=args.budget, echo=_echo)
    if args.json:
        result.save(Path(args.json))
    print_report(result)
    if result.decision is not None and result.decision.chosen is None:
        return 1
    return 0
