"""`edgert eval` on the command line: options to EvalOptions, the result to a table, JSON and an exit code."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

from .. import safepath
from ..errors import EdgertError, require
from ..eval.options import EvalOptions
from ..eval.records import LOWER_IS_BETTER, EvalResult, Evaluated


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


def segment_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    """Speech sets: per variant, the reference segments, those a detection overlaps, and the detections."""
    head = ["variant", "reference segments", "found (overlapped)", "detected segments"]
    body = []
    for r in result.results:
        s = r.segments
        if s is not None:
            found = f"{s.matched} ({s.matched / s.reference:.0%})" if s.reference else "0"
            body.append([r.label, str(s.reference), found, str(s.detected)])
    return head, body


def notes(result: EvalResult) -> list[str]:
    """What the tables need said beside them: where energy came from, the front, skipped rows, the budget."""
    out = []
    meters = sorted({r.cost.energy_meter for r in result.results if r.cost and r.cost.energy_meter})
    if meters:
        if meters == ["estimate"]:
            out.append("energy per item: ESTIMATED from CPU time (no energy meter here; edgert device says why)")
        else:
            out.append(f"energy per item: measured ({', '.join(meters)})")
    if result.front:
        better = "lower" if result.headline in LOWER_IS_BETTER else "higher"
        out.append(
            f"* on the Pareto front of {result.headline} ({better} is better) against p50: "
            "no other variant is better at both"
        )
    d = result.dataset
    out += [f"skipped: {p}" for p in d.problems[:5]]
    if d.skipped > 5:
        out.append(f"... {d.skipped - 5} more skipped rows (--json lists the first 20)")
    if result.decision is not None:
        dec = result.decision
        for c in dec.checks:
            shown = "not measured" if c.measured is None else f"{c.measured:.4g}"
            out.append(f"budget {c.limit} on {c.variant}: {shown} {'pass' if c.passed else 'FAIL'}")
        verdict = f"chosen: {dec.chosen} (the lowest p50 of those that pass)" if dec.chosen else "no variant meets it"
        out.append(f"budget {dec.budget}: {verdict}")
    return out


def heading(result: EvalResult) -> str:
    d = result.dataset
    return (
        f"{d.kind} set {d.name}: {d.items:,} scored items, {d.skipped} rows skipped; "
        f"{result.level:.0%} bootstrap intervals ({result.draws} draws, seed {result.seed})"
    )


def tables(result: EvalResult) -> list[tuple[str, list[str], list[list[str]]]]:
    found = [("Quality", *quality_rows(result)), ("Cost on this device", *cost_rows(result))]
    head, body = segment_rows(result)
    if body:
        found.append(("Speech segments", head, body))
    return found


def print_report(result: EvalResult) -> None:
    from rich.console import Console

    from ..bench.report import print_tables

    console = Console()
    console.print(heading(result), markup=False)
    print_tables(tables(result), console)
    for line in notes(result):
        style = "yellow" if line.startswith(("skipped", "...")) else None
        console.print(line, style=style, markup=False)


def markdown(result: EvalResult) -> str:
    from ..bench.report import markdown_tables

    return markdown_tables("edgert eval: " + heading(result), tables(result), notes(result))


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
    for flag, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if path and path != "-":  # an output that cannot be written is refused before any work
            safepath.check_output(Path(path), error=EdgertError, what=flag)
    if args.plot:
        if Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
            raise EdgertError(f"--plot {args.plot}: give a .png, .svg, .pdf or .jpg file name")
        require("matplotlib", "plot")
        if not options.cost:
            raise EdgertError("--plot draws quality against cost, which --no-cost turns off")
    from ..history import recorder

    store = recorder.url_for(args.store) if recorder.wanted(args.record) else None  # a bad URL: before any work
    bundles = [resolve_bundle(b) for b in args.bundles]
    result = evaluate(bundles, options, budget=args.budget, echo=_echo)
    if args.json:
        result.save(Path(args.json))
    if args.markdown == "-":
        print(markdown(result))
    else:
        print_report(result)
        if args.markdown:
            safepath.write_output(Path(args.markdown), markdown(result), error=EdgertError, what="--markdown")
    if args.plot:
        from ..eval.plot import plot

        _echo(f"eval: plot in {plot(result, Path(args.plot))}")
    if store is not None:
        recorder.record(result, store, _echo)
    if result.decision is not None and result.decision.chosen is None:
        return 1
    return 0


def run_compare_eval(args: Namespace, threshold: float, fail_on: float | None) -> int:
    """`edgert compare` on two eval results: quality per variant, tested item by item where it can be."""
    from ..eval.compare import compare, differences
    from ..eval.records import load

    a, b = load(args.a), load(args.b)
    differ = differences(a, b)
    if differ and not args.force:
        raise EdgertError(
            f"{args.a} and {args.b} evaluate different things ({'; '.join(differ)}); pass --force to compare anyway"
        )
    changes = compare(a, b)
    if not changes:
        raise EdgertError(f"{args.a} and {args.b} share no variant and metric to compare")
    if differ:
        print(f"note: --force: comparing different evaluations ({'; '.join(differ)}); nothing is tested item by item")
    regressed = False
    for ch in changes:
        line = ch.describe(threshold)
        if ch.regression(threshold):
            line = "REGRESSION  " + line
            regressed |= fail_on is not None and ch.regression(fail_on)
        print(line)
    return 1 if regressed else 0
