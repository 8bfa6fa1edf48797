"""`edgert history`: list, show, trend, gate, export and import the runs a store remembers."""

from __future__ import annotations

import json
import math
import sys
from argparse import Namespace
from pathlib import Path

from ..errors import EdgertError, require
from ..history.records import Run
from ..history.store import Filter, Store


def _percent(text: str, flag: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise EdgertError(f"{flag} {text!r}: give a share such as 5%") from None
    if not 0 <= value < 10:
        raise EdgertError(f"{flag} {text!r}: must be between 0% and 1000%")
    return value


def _filter(args: Namespace) -> Filter:
    metric = getattr(args, "metric", None)
    return Filter(
        device=args.device, model=args.model, variant=args.variant, kind=args.kind,
        metric=metric if isinstance(metric, str) else None, version=args.version, since=args.since, until=args.until,
    )  # fmt: skip


def _headline(run: Run) -> str:
    shown = [m for m in run.measures if m.rounds or m.low is not None][:2] or list(run.measures[:2])
    return ", ".join(f"{m.name} {m.value:.4g}{(' ' + m.unit) if m.unit else ''}" for m in shown)


def run_history(args: Namespace) -> int:
    action = args.history
    if action is None:
        raise EdgertError("edgert history: give list, show, trend, gate, export or import (see edgert history --help)")
    with Store(args.store) as store:
        if action == "import":
            from ..history.transfer import import_jsonl

            got = import_jsonl(store, Path(args.file))
            for line in got.bad:
                print(f"skipped: {line}", file=sys.stderr)
            print(
                f"imported {got.added} run(s) into {store.where}; {got.known} already there, {got.bad_count} bad lines"
            )
            return 2 if got.bad_count and not got.added and not got.known else 0
        if action == "export":
            from ..history.transfer import export_jsonl

            n = export_jsonl(store, Path(args.file), _filter(args))
            print(f"exported {n} run(s) to {args.file}")
            return 0
        runs = store.runs(_filter(args))
    if action == "list":
        return _list(runs, args)
    if action == "show":
        return _show(runs, args.uid)
    require("ruptures", "history")
    require("scipy", "bench")
    if action in ("plot", "report"):
        from ..history import figures

        threshold = _percent(args.threshold, "--threshold")
        if action == "plot":
            for path in figures.plot(runs, args.metric, Path(args.file), threshold):
                print(f"wrote {path}")
        else:
            n = figures.report(runs, Path(args.file), threshold, args.metric)
            print(f"wrote {args.file}: {n} figure(s)")
        return 0
    return _trend(runs, args) if action == "trend" else _gate(runs, args)


def _list(runs: list[Run], args: Namespace) -> int:
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=1))
        return 0
    require("rich", "bench")
    from ..bench.report import print_tables

    rows = [
        [r.uid[:12], r.created, r.kind, r.device, f"{r.model}:{r.variant}", r.software.get("edgert") or "-",
         (r.git_commit or "-")[:12], _headline(r)]
        for r in runs
    ]  # fmt: skip
    print_tables([("Runs", ["run", "date", "kind", "device", "model", "edgert", "commit", "figures"], rows)])
    print(f"{len(runs)} run(s)")
    return 0


def _show(runs: list[Run], uid: str) -> int:
    found = [r for r in runs if r.uid.startswith(uid)]
    if not found:
        raise EdgertError(f"no run {uid!r} in the store (edgert history list shows them)")
    if len(found) > 1:
        raise EdgertError(f"{uid!r} names {len(found)} runs; give more of the uid")
    (r,) = found
    from .render import print_rows

    rows = [
        ("run", r.uid), ("kind", r.kind), ("date", r.created), ("device", f"{r.device} ({r.fingerprint})"),
        ("model", f"{r.model}:{r.variant} ({r.model_sha256[:16]})"), ("workload", r.workload or "-"),
        ("git commit", r.git_commit or "-"),
        ("card", ", ".join(f"{k} {v}" for k, v in r.card.items() if v) or "-"),
        ("software", ", ".join(f"{k} {v}" for k, v in r.software.items() if v)),
    ]  # fmt: skip
    for m in r.measures:
        interval = f" [{m.low:.4g}, {m.high:.4g}]" if m.low is not None and m.high is not None else ""
        rounds = f", {len(m.rounds)} rounds" if m.rounds else ""
        rows.append((m.name, f"{m.value:.6g}{(' ' + m.unit) if m.unit else ''}{interval}{rounds}"))
    print_rows(rows)
    return 0


def _trend(runs: list[Run], args: Namespace) -> int:
    from ..history.trend import noise, series_of, steps

    threshold = _percent(args.threshold, "--threshold")
    for s in series_of(runs, args.metric):
        values = s.values
        sigma = noise(values, s.rounds())
        print(
            f"{s.label}: {len(values)} runs, {min(values):.4g} to {max(values):.4g} {s.unit}; one run varies by "
            f"about {math.expm1(sigma):.1%} (steps within --threshold {threshold:.0%} are not shown)"
        )
        for st in steps(s, threshold):
            word = "worse" if st.worse else "better"
            print(
                f"  step at run {st.index + 1} ({st.uid[:12]}, {s.runs[st.index].created}): {st.before:.4g} -> "
                f"{st.after:.4g} {s.unit} ({st.ratio:.2f}x, {word}, p={st.p_value:.2g})"
            )
    return 0


def _gate(runs: list[Run], args: Namespace) -> int:
    from ..history.trend import gate, series_of

    threshold = _percent(args.threshold, "--threshold")
    failed = False
    for s in series_of(runs, args.metric):
        v = gate(s, args.last, threshold)
        mark = "REGRESSION  " if v.regression else ""
        print(f"{mark}{v.series}: latest {v.latest:.4g} {s.unit} vs {v.baseline:.4g}: {v.why}")
        failed |= v.regression
    return 1 if failed else 0
