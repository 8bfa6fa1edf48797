"""`edgert fleet`: start a head, join a device, list the devices, run bench/eval/tune/check on many devices at once,
and embed or classify a large set of texts on all of them. The engine is Dask distributed (the `fleet` extra)."""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EdgertError, require

if TYPE_CHECKING:
    from ..fleet.jobs import Outcome

#: Flags of the device commands that name a file or folder on this machine: shipped, then named on the device.
PATH_FLAGS = ("--data", "--file", "-f", "--input", "--budget")
#: Flags fleet handles itself: each device's output goes under fleet's --out.
OWN_FLAGS = ("--json", "--markdown", "--plot", "--reference", "--store", "--record")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _exec(argv: list[str]) -> int:
    """Replaces this process with ARGV (the engine's own scheduler or worker), so signals reach it directly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # pragma: no cover - execv does not return


def run_fleet(args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    require("distributed", "fleet")
    action = args.fleet
    if action == "head":
        return _exec([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", args.host,
                      "--port", str(args.port), "--no-dashboard"])  # fmt: skip
    from ..fleet import cluster

    address = cluster.address_of(args.cluster)
    if action == "join":
        if not args.name or not all(c.isalnum() or c in "-_." for c in args.name):
            raise EdgertError(f"--name {args.name!r}: use letters, digits, '-', '_' and '.' (e.g. pi5-kitchen)")
        from ..fleet.device_side import FLEET_RESOURCE, device_resource

        resources = f"{FLEET_RESOURCE}=1 {device_resource(args.name)}=1"
        return _exec([sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", args.name,
                      "--nthreads", "1", "--nworkers", "1", "--resources", resources, "--no-dashboard",
                      "--death-timeout", str(args.death_timeout)])  # fmt: skip
    client = cluster.connect(address, timeout=args.timeout)
    try:
        if action == "devices":
            return _devices(client, args)
        if action in ("embed", "classify"):
            return _bulk(client, args, resolve_bundle)
        return _command(client, args, resolve_bundle)
    finally:
        client.close()


def _devices(client: Any, args: Namespace) -> int:
    from ..fleet import cluster

    names = cluster.select(client, args.devices)
    devices = cluster.describe(client, names, None)
    if args.json:
        print(json.dumps([{"name": d.name, "address": d.address, **d.facts} for d in devices], indent=1))
        return 0
    from ..bench.report import print_tables

    head = ["device", "address", "cpu", "cores", "machine", "board", "features", "onnxruntime", "kernels",
            "fingerprint", "edgert"]  # fmt: skip
    rows = []
    for d in devices:
        f = d.facts["device"]
        rows.append([d.name, d.address, f.get("cpu", "?"), str(f.get("cores") or "?"), f.get("machine", "?"),
                     f.get("board") or "-", " ".join(f.get("features") or ()) or "-", f.get("onnxruntime", "?"),
                     f.get("kernels", "?"), d.facts["fingerprint"], d.facts["edgert"]])  # fmt: skip
    print_tables([(f"fleet at {client.scheduler.address}: {len(rows)} device(s)", head, rows)])
    return 0


def _check_passthrough(parser: Any, command: str, bundle: Path, rest: list[str]) -> None:
    """The device command's own flags, parsed here as the device will parse them: a bad flag or budget is one line,
    exit 2, before anything is shipped."""
    for a in rest:
        flag = a.split("=", 1)[0]
        if flag in OWN_FLAGS:
            raise EdgertError(f"fleet {command}: {flag} is fleet's to set (each device's output goes under --out)")
    parsed = parser.parse_args([command, str(bundle), *rest])
    if command == "bench" and getattr(parsed, "sustained", None) is not None:
        raise EdgertError("fleet bench: --sustained is not run through the fleet yet; run edgert bench --sustained "
                          "on each device")  # fmt: skip
    if command == "bench":  # what bench would refuse on the device after the bundle arrived, refused here
        from ..bench.budget import unmeasurable
        from ..bench.config import QUICK, BenchConfig
        from .bench import _limits
        from .options import from_args

        limits = _limits(parsed.budget)
        quick = {k: v for k, v in QUICK.items() if parsed.quick and getattr(parsed, k) is None}
        config = from_args(BenchConfig, parsed, target=bundle, **quick)
        cannot = unmeasurable(limits or [], config.cold_runs, config.energy_meter)
        if cannot:
            raise EdgertError(f"budget cannot be measured by this run: {'; '.join(cannot)}")
    elif command == "tune" and parsed.budget:
        from ..bench import budget

        budget.parse(parsed.budget)


def _rewrite_paths(client: Any, rest: list[str], devices: list[Any]) -> list[str]:
    """Ships every file or folder that a path flag names, and names the device's verified copy instead."""
    from ..fleet.jobs import ship_data

    out = list(rest)
    for i, a in enumerate(out):
        flag, eq, value = a.partition("=")
        if flag in PATH_FLAGS and eq:
            target = value
        elif a in PATH_FLAGS and i + 1 < len(out):
            target, flag = out[i + 1], ""
        else:
            continue
        path = Path(target).expanduser()
        if target == "-" or not path.exists():
            continue
        token = ship_data(client, path, devices, _say)
        if flag:
            out[i] = f"{a.split('=', 1)[0]}={token}"
        else:
            out[i + 1] = token
    return out


def _command(client: Any, args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    from ..fleet import cluster, jobs

    command = args.fleet
    bundle = resolve_bundle(args.bundle)
    rest = list(args.passthrough)
    if command == "check" and "--no-card" not in rest:
        rest.append("--no-card")  # the device's copy stays the bundle that was sent
    _check_passthrough(args.parser, command, bundle, rest)
    store = None
    if args.record:
        if command not in ("bench", "eval"):
            raise EdgertError(f"fleet {command} --record: fleet records bench and eval results")
        from ..history import recorder

        store = recorder.url_for(args.store)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    names = cluster.select(client, args.devices)
    devices = cluster.describe(client, names, command)
    _say(f"fleet {command}: {len(devices)} device(s): {', '.join(names)}")
    shipped = jobs.ship(client, bundle, devices, _say)
    ready = [d for d in devices if shipped[d.name].error is None]
    rest = _rewrite_paths(client, rest, ready) if ready else rest
    try:
        outcomes = jobs.run(client, ready, jobs.bundle_id(bundle), command, rest, _say, grace=args.grace)
    except jobs._Interrupted as stop:
        outcomes = stop.outcomes
        _say("edgert: interrupted; the devices that finished are shown")
    by_name = {o.device: o for o in outcomes}
    for d in devices:
        if d.name not in by_name:
            by_name[d.name] = jobs.Outcome(d.name, "refused", message=str(shipped[d.name].error))
    ordered = [by_name[d.name] for d in devices]
    _table(command, bundle, devices, ordered)
    if out is not None:
        for o in ordered:
            (out / f"{o.device}.txt").write_text(o.stdout + ("\n" + o.stderr if o.stderr else ""))
            if o.result is not None:
                (out / f"{o.device}.json").write_text(json.dumps(o.result, indent=1))
        _say(f"fleet: each device's output and JSON are in {out}")
    if store is not None:
        _record(command, bundle, ordered, store)
    for o in ordered:
        if o.status not in ("ok", "budget missed"):
            _say(f"edgert: {o.device}: {o.status}: {o.message or (o.stderr.strip().splitlines() or ['?'])[-1]}")
    return 0 if all(o.status == "ok" for o in ordered) else 1


def _f(v: float | None, unit: str, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f} {unit}"


def _table(command: str, bundle: Path, devices: list[Any], outcomes: list[Any]) -> None:
    from ..bench.report import print_tables

    cpu = {d.name: d.cpu for d in devices}
    if command == "bench":
        from ..bench.records import BenchResult

        head = ["device", "cpu", "status", "p50", "p95", "throughput", "peak RSS", "budget", "attempts"]
        rows = []
        for o in outcomes:
            if o.result is None:
                rows.append([o.device, cpu[o.device], o.status.upper(), "-", "-", "-", "-", "-", str(o.attempt or "-")])
                continue
            r = BenchResult.from_json(o.result, f"{o.device}'s bench result")
            s = r.summary()
            missed = [b.budget for b in r.budget if not b.passed]
            verdict = "-" if not r.budget else ("PASS" if not missed else "FAIL " + ", ".join(missed))
            rows.append([o.device, cpu[o.device], o.status, _f(s.p50, "ms"), _f(s.p95, "ms"),
                         _f(s.throughput, "items/s", 1), _f(s.rss, "MiB", 0), verdict, str(o.attempt)])  # fmt: skip
    else:
        head = ["device", "cpu", "status", "exit", "result", "attempts"]
        rows = [[o.device, cpu[o.device], o.status if o.result or o.code is not None else o.status.upper(),
                 "-" if o.code is None else str(o.code), _headline(command, o), str(o.attempt or "-")]
                for o in outcomes]  # fmt: skip
    print_tables([(f"edgert fleet {command} {bundle.name}: {len(outcomes)} device(s)", head, rows)])


def _headline(command: str, o: Outcome) -> str:
    if command == "eval" and o.result is not None:
        from ..eval.records import EvalResult

        r = EvalResult.from_json(o.result, f"{o.device}'s eval result")
        shown = []
        for e in r.results:
            m = next((m for m in e.metrics if m.name == r.headline), None)
            if m is not None:
                shown.append(f"{e.variant} {m.name} {m.value:.4f} [{m.low:.4f}, {m.high:.4f}]")
        return "; ".join(shown) or "-"
    lines = [line for line in o.stdout.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("chosen:"):
            return line
    return lines[-1][:100] if lines else (o.message or "-")


def _record(command: str, bundle: Path, outcomes: list[Any], store: str) -> None:
    """Each device's result into the history, named by its device and pointing at the bundle as it is here (the
    device ran the same bytes: its copy has the same edgert.json)."""
    from ..history import recorder
    from ..history.records import from_bench, from_eval

    runs = []
    for o in outcomes:
        if o.result is None:
            continue
        if command == "bench":
            from ..bench.records import BenchResult

            r = BenchResult.from_json(o.result)
            if r.target is not None:
                r = replace(r, target=replace(r.target, path=str(bundle)))
            made = from_bench(r)
        else:
            from ..eval.records import EvalResult

            e = EvalResult.from_json(o.result)
            e = replace(e, results=tuple(replace(x, bundle=str(bundle)) for x in e.results))
            made = from_eval(e)
        runs += [replace(run, device=o.device) for run in made]
    if runs:
        recorder.record(runs, store, _say)


def _bulk(client: Any, args: Namespace, resolve_bundle: Callable[[str | None], Path]) -> int:
    from ..bundle import sha256_file
    from ..fleet import bulk, cluster, jobs
    from ..safepath import regular_file

    bundle = resolve_bundle(args.bundle)
    source = Path(args.input).expanduser()
    regular_file(source, error=EdgertError, what="--input")
    batch = args.batch_size
    if args.batch_from:
        from ..bench.records import load

        knee = bulk.knee(load(args.batch_from))
        if knee is None:
            raise EdgertError(f"--batch-from {args.batch_from}: that bench result measured no throughput")
        batch = knee
        _say(f"fleet {args.fleet}: batch {batch}, the throughput knee of {args.batch_from}")
    names = cluster.select(client, args.devices)
    devices = cluster.describe(client, names, args.fleet)
    shipped = jobs.ship(client, bundle, devices, _say)
    refused = [f"{n}: {s.error}" for n, s in shipped.items() if s.error]
    if refused:
        raise EdgertError(f"the bundle was refused: {'; '.join(refused)}")
    total = sum(1 for _ in source.open(encoding="utf-8"))
    _say(f"fleet {args.fleet}: {total:,} texts from {source.name} on {len(devices)} device(s), batch {batch}, "
         f"{args.shard_size} texts per part")  # fmt: skip

    def lines() -> Any:
        with source.open(encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\n")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(args.fleet, total=total)
        result = bulk.run_bulk(
            client, jobs.bundle_id(bundle), lines(), Path(args.out), task=args.fleet, variant=args.variant,
            batch_size=batch, shard_size=args.shard_size, input_sha256=sha256_file(source), devices=names,
            grace=args.grace,
            progress=lambda rows, parts: bar.update(task, completed=rows),
        )  # fmt: skip
    kept = f" ({result.kept} kept from an earlier run)" if result.kept else ""
    print(f"fleet {args.fleet}: {result.rows:,} rows in {result.parts} part(s){kept} under {result.out}")
    return 0
