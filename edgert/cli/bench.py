"""`edgert bench` and `edgert compare` on the command line: options to a BenchConfig, results to reports."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EdgertError, require


def _ints(text: str, what: str, allow_auto: bool = False) -> tuple[int, ...]:
    out = []
    for tok in (t.strip() for t in text.split(",") if t.strip()):
        if allow_auto and tok == "auto":
            out.append(0)
            continue
        try:
            out.append(int(tok))
        except ValueError:
            raise EdgertError(f"{what}: {tok!r} is not a whole number (got {text!r})") from None
    if not out:
        raise EdgertError(f"{what}: nothing given")
    return tuple(out)


def _percent(text: str, what: str) -> float:
    t = text.strip().rstrip("%")
    try:
        v = float(t)
    except ValueError:
        raise EdgertError(f"{what}: {text!r} is not a percentage such as 5%") from None
    return v / 100


def _limits(spec: str | None):
    from ..bench import budget

    if spec is None:
        return None
    if spec.endswith(".toml") or Path(spec).is_file():
        return budget.load_file(spec)
    return budget.parse(spec)


class _RichProgress:
    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = None

    def __enter__(self):
        self.p.__enter__()
        return self

    def __exit__(self, *exc):
        return self.p.__exit__(*exc)

    def phase(self, name: str, total: float | None = None) -> None:
        if self.task is not None:
            self.p.remove_task(self.task)
        self.task = self.p.add_task(name, total=total)

    def update(self, done: float) -> None:
        if self.task is not None:
            self.p.update(self.task, completed=done)


def run_bench(args, resolve_bundle) -> int:
    require("psutil", "bench")
    require("rich", "bench")
    from ..bench import records, report
    from ..bench.budget import evaluate
    from ..bench.runner import BenchConfig, run

    limits = _limits(args.budget)  # a bad budget is a usage error before any work
    spec = args.target
    target = Path(spec) if spec and spec.endswith(".onnx") else resolve_bundle(spec)
    if not target.exists():
        raise EdgertError(f"{target}: no such bundle or model file")
    quick = (
        {"min_time": 1.0, "min_count": 30, "throughput_time": 0.3, "cold_runs": 1, "energy_time": 0.5, "warmup": 5}
        if args.quick
        else {}
    )
    config = BenchConfig(
        target=target,
        variant=args.variant,
        threads=_ints(args.threads, "--threads", allow_auto=True),
        batch_sizes=_ints(args.batch_sizes, "--batch-sizes"),
        seq_len=args.seq_len,
        shapes=tuple(args.shape),
        input_file=Path(args.input) if args.input else None,
        **{
            "min_time": args.min_time,
            "min_count": args.min_count,
            "max_time": args.max_time,
            "warmup": args.warmup,
            "throughput_time": args.throughput_time,
            "cold_runs": args.cold_runs,
            "energy_meter": args.energy_meter,
            "energy_time": args.energy_time,
            **quick,
        },
        watts_per_core=args.watts_per_core,
    )
    with _RichProgress() as progress:
        result = run(config, progress)
    if limits:
        result["budget"] = evaluate(limits, result["summary"])
    if args.json:
        records.save(result, args.json)
    if args.markdown == "-":
        print(report.markdown(result))
    else:
        report.print_rich(result)
        if args.markdown:
            Path(args.markdown).write_text(report.markdown(result))
    if args.plot and result.get("configs"):
        report.plot(result, Path(args.plot))
    if not result["complete"]:
        saved = f"; samples so far saved to {args.json}" if args.json else ""
        print(f"edgert: interrupted during {result['interrupted_in']}{saved}", file=sys.stderr)
        return 130
    if limits and not all(b["passed"] for b in result["budget"]):
        failed = ", ".join(b["budget"] for b in result["budget"] if not b["passed"])
        print(f"edgert: budget violated: {failed}", file=sys.stderr)
        return 1
    return 0


def run_compare(args) -> int:
    require("scipy", "bench")
    from ..bench import records
    from ..bench.compare import compare

    a, b = records.load(args.a), records.load(args.b)
    threshold = _percent(args.threshold, "--threshold")
    fail_on = _percent(args.fail_on, "--fail-on") if args.fail_on else None
    changes = compare(a, b)
    if not changes:
        raise EdgertError(f"{args.a} and {args.b} share no metrics to compare")
    flagged = []
    for ch in changes:
        line = ch.describe(threshold)
        if ch.regression(threshold):
            line = "REGRESSION  " + line
            flagged.append(ch)
        print(line)
    for label, r in (("A", a), ("B", b)):
        if not r.get("complete", True):
            print(f"note: {label} is an incomplete run (interrupted during {r.get('interrupted_in')})")
    if fail_on is not None and any(ch.regression(fail_on) for ch in changes):
        return 1
    return 0
