"""`edgert bench` and `edgert compare` on the command line: options to a BenchConfig, results to reports."""

from __future__ import annotations

import os
import sys
import tempfile
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import safepath
from ..bench.config import BenchConfig
from ..errors import EdgertError, require
from ..sustained.options import SustainedOptions
from .outputs import budget_exit, write_outputs

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ..bench.budget import Limit


def _percent(text: str, what: str) -> float:
    t = text.strip().rstrip("%")
    try:
        v = float(t)
    except ValueError:
        raise EdgertError(f"{what}: {text!r} is not a percentage such as 5%") from None
    if not 0 <= v < 1000:
        raise EdgertError(f"{what}: {text!r} must be a percentage from 0% (a negative change is no threshold)")
    return v / 100


def _limits(spec: str | None) -> list[Limit] | None:
    from ..bench import budget

    if spec is None:
        return None
    if spec.endswith(".toml") or Path(spec).is_file():
        return budget.load_file(spec)
    return budget.parse(spec)


class _RichProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _RichProgress:
        self.p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.p.__exit__(None, None, None)

    def phase(self, name: str, total: float | None = None) -> None:
        if self.task is not None:
            self.p.remove_task(self.task)
        self.task = self.p.add_task(name, total=total)

    def update(self, done: float) -> None:
        if self.task is not None:
            self.p.update(self.task, completed=done)


def _writable(path: str, flag: str) -> None:
    """An output path that can be written, checked before a run whose results would otherwise be lost."""
    p = Path(path).expanduser()
    if p.is_dir() and not p.is_symlink():
        raise EdgertError(f"{flag} {path}: is a directory; give a file name")
    if os.path.lexists(p):
        safepath.check_output(p, error=EdgertError, what=flag)  # never a symlink, device node or FIFO
    parent = p.parent
    blocked = next((q for q in (parent, *parent.parents) if q.exists()), None)
    if blocked is not None and not blocked.is_dir():
        raise EdgertError(f"{flag} {path}: {blocked} is a file, not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise EdgertError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


def _check_before_run(args: Namespace, limits: list[Limit] | None, config: BenchConfig, sustained: bool) -> None:
    """Everything that would fail only after the run: output paths, the plot's dependency, unmeasurable budgets."""
    from ..bench.budget import unmeasurable

    for flag, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if path and path != "-":
            _writable(path, flag)
    if args.input_file:  # a regular file, never /dev/zero or a FIFO; read only by the run
        safepath.regular_file(Path(args.input_file).expanduser(), error=EdgertError, what="--input")
    if args.plot:
        if Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
            raise EdgertError(f"--plot {args.plot}: give a .png, .svg, .pdf or .jpg file name")
        require("matplotlib", "plot")
    if limits:
        cannot = unmeasurable(limits, config.cold_runs, config.energy_meter, sustained)
        if cannot:
            raise EdgertError(f"budget cannot be measured by this run: {'; '.join(cannot)}")


def run_bench(args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    require("psutil", "bench")
    require("rich", "bench")
    from ..bench import records, report
    from ..bench.budget import evaluate
    from ..bench.runner import run

    limits = _limits(args.budget)  # a bad budget is a usage error before any work
    from ..history import recorder

    store = recorder.url_for(args.store) if recorder.wanted(args.record) else None  # a bad URL: before measuring
    spec = args.target
    target = Path(spec) if spec and spec.endswith(".onnx") else resolve_bundle(spec)
    if not target.exists():
        raise EdgertError(f"{target}: no such bundle or model file")
    from ..bench.config import QUICK
    from ..device import threads_override
    from .options import from_args

    quick = {k: v for k, v in QUICK.items() if args.quick and getattr(args, k) is None}  # options given win
    config = from_args(BenchConfig, args, target=target, **quick)
    env = threads_override()
    if env is not None and args.threads is not None and any(t != env for t in config.threads):
        shown = ",".join(str(t) for t in config.threads)
        print(
            f"edgert: warning: EDGERT_THREADS={env} overrides --threads {shown}; "
            f"every session runs with {env} (recorded in the JSON as threads_source)",
            file=sys.stderr,
        )
    sustained = from_args(SustainedOptions, args)
    _check_before_run(args, limits, config, sustained.sustained is not None)
    if sustained.sustained is not None:
        from .sustained import run_sustained

        if store is not None:
            print("edgert: warning: a sustained run is not recorded in the history (bench runs are)", file=sys.stderr)
        return run_sustained(args, config, sustained, limits, _RichProgress)
    with _RichProgress() as progress:
        result = run(config, progress)
    if limits:
        result = result.with_budget(evaluate(limits, result.summaries()))
    write_outputs(args, result, records.save, report, plot=bool(result.configs))
    if store is not None and result.complete:  # after the run's own output: a store that fails costs nothing else
        recorder.record(result, store, lambda line: print(line, file=sys.stderr))
    if not result.complete:
        saved = f"; samples so far saved to {args.json}" if args.json else ""
        print(f"edgert: interrupted during {result.interrupted_in}{saved}", file=sys.stderr)
        return 130
    return budget_exit(result.budget, lambda b: f"{b.budget} ({b.config})") if limits else 0


def _schema(path: str) -> str:
    """The format a result file says it has ("" when it is not JSON with a schema: the loader then says why)."""
    import json

    from ..bench.records import MAX_BYTES

    try:
        data = json.loads(safepath.read_bounded(Path(path), MAX_BYTES, error=EdgertError, what=path))
    except (OSError, ValueError, RecursionError, EdgertError):
        return ""
    schema = data.get("schema") if isinstance(data, dict) else None
    return schema if isinstance(schema, str) else ""


def run_compare(args: Namespace) -> int:
    threshold = _percent(args.threshold, "--threshold")
    fail_on = _percent(args.fail_on, "--fail-on") if args.fail_on else None
    kinds = [_schema(p).startswith("edgert.eval/") for p in (args.a, args.b)]
    if any(kinds):
        if not all(kinds):
            which = args.a if kinds[0] else args.b
            raise EdgertError(f"{which} is an eval result and the other is not: compare two of a kind")
        from .eval import run_compare_eval

        return run_compare_eval(args, threshold, fail_on)
    require("scipy", "bench")
    from ..bench import records
    from ..bench.compare import compare, decide, differences

    a, b = records.load(args.a), records.load(args.b)  # a file that is not a result: one line saying where
    differ = differences(a, b)
    if differ and not args.force:
        raise EdgertError(
            f"{args.a} and {args.b} measure different things ({'; '.join(differ)}); pass --force to compare anyway"
        )
    changes = compare(a, b)
    if not changes:
        raise EdgertError(f"{args.a} and {args.b} share no metrics to compare")
    if differ:
        print(f"note: --force: comparing different runs ({'; '.join(differ)})")
    for ch in changes:
        line = ch.describe(threshold)
        if ch.regression(threshold):
            line = "REGRESSION  " + line
        print(line)
    code, notes = decide(a, b, changes, fail_on, args.strict)
    for note in notes:
        print(note)
    return code
