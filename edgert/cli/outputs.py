"""What a measuring command writes, in one order for bench and its sustained runs: the JSON, then Markdown or the
terminal's tables, then the plot; and the budget's verdict as one stderr line per status and the exit code."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import safepath
from ..errors import EdgertError


def write_outputs(args: Namespace, result: Any, save: Callable[[Any, str], object], report: Any, plot: bool) -> None:
    """--json through SAVE; --markdown (``-``: instead of the tables) or REPORT's tables; --plot when PLOT."""
    if args.json:
        save(result, args.json)
    if args.markdown == "-":
        print(report.markdown(result))
    else:
        report.print_rich(result)
        if args.markdown:
            safepath.write_output(Path(args.markdown), report.markdown(result), error=EdgertError, what="--markdown")
    if args.plot and plot:
        report.plot(result, Path(args.plot))


def budget_exit(rows: Sequence[Any], name: Callable[[Any], str]) -> int:
    """1 with a line for each status that is not a pass (violated, not measured), naming each row by NAME; else 0."""
    if all(b.passed for b in rows):
        return 0
    for status in ("violated", "not measured"):
        named = [name(b) for b in rows if b.status == status]
        if named:
            print(f"edgert: budget {status}: {', '.join(named)}", file=sys.stderr)
    return 1
