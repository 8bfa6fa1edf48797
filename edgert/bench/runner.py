"""The measuring loop behind `edgert bench`: init, first inference, warmup, steady-state latency (SingleStream),
throughput (Offline) per batch size, for each thread count; then cold start in fresh processes, memory, and
energy in runs of their own so that meter sampling never disturbs the timed runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .. import stats
from ..device import meters as energy
from ..errors import EdgertError
from . import noise
from .config import BenchConfig, parse_shapes, parse_values
from .memory import peak_rss_mib, rss_mib
from .records import Run, Stats
from .workload import open_target


class Progress(Protocol):
    def phase(self, name: str, total: float | None = None) -> None: ...
    def update(self, done: float) -> None: ...


class _Quiet:
    def phase(self, name: str, total: float | None = None) -> None:
        pass

    def update(self, done: float) -> None:
        pass


@dataclass
class _State:
    """What has been measured so far: a Ctrl-C keeps all of it."""

    result: dict[str, Any] = field(default_factory=dict)
    phase: str = "setup"


def target_spec(config: BenchConfig, threads: int) -> dict[str, Any]:
    """What a fresh process needs to open the same target (workload.open_spec reads it)."""
    return {
        "target": str(config.target),
        "variant": config.variant,
        "threads": threads,
        "seq_len": config.seq_len,
        "shapes": list(config.shapes),
        "values": parse_values(list(config.values)),
        "input_file": str(config.input_file) if config.input_file else None,
    }


def _round(spec: dict[str, Any]) -> dict[str, Any]:
    """One round in a fresh worker process (edgert.bench.worker); its failure is one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgert.bench.worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=spec["max_time"] * (2 + len(spec["batches"])) + 300,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise EdgertError(lines[-1] if lines else f"a bench round failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def threads_in_effect(requested: int) -> tuple[int, str]:
    """The intra-op thread count a session really gets, and what set it, in the flag's words."""
    from ..device import threads_in_effect as _in_effect

    resolved, source = _in_effect(requested)
    return resolved, ("--threads" if source == "requested" else source)


def _cold_start(config: BenchConfig, progress: Progress, state: _State) -> dict[str, Any]:
    spec = target_spec(config, config.threads[0])
    walls, parts, peaks = [], [], []
    state.result["cold_start"] = {"runs": walls, "parts": parts, "peak_rss_mib": peaks}
    progress.phase("cold start (fresh processes)", config.cold_runs)
    for i in range(config.cold_runs):
        with tempfile.TemporaryFile("w+") as err:
            t = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "edgert.bench.cold", json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            line = proc.stdout.readline()
            wall = (time.perf_counter() - t) * 1e3
            rest = proc.stdout.read()  # read through the same buffer that readline() filled
            proc.wait(timeout=300)
            if not line.startswith("ready ") or "peak " not in rest:
                err.seek(0)
                last = (err.read().strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                raise EdgertError(f"cold-start process failed: {last}")
        walls.append(wall)
        parts.append(json.loads(line[6:]))
        peaks.append(json.loads(rest.split("peak ", 1)[1])["peak_rss_mib"])
        progress.update(i + 1)
    return {
        "runs": walls,
        "parts": parts,
        "peak_rss_mib": peaks,
        "median_ms": stats.median(walls) if walls else None,
    }


def _energy(call, config: BenchConfig, board: str | None, machine: str, progress: Progress) -> dict[str, Any]:
    meter = energy.choose(config.energy_meter, board, machine, config.watts_per_core)
    out: dict[str, Any] = {"meter": meter.name, "source": meter.source, "estimated": meter.estimated}
    if meter.kind == "sampled":
        progress.phase("energy: idle power", 1.0)
        out["idle_w"] = meter.idle(1.0)
    progress.phase(f"energy ({meter.name})", config.energy_time)
    count = 0
    meter.start()
    start = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < config.energy_time or count < 10:
            call()
            count += 1
            if count % 16 == 0:
                progress.update(min(elapsed, config.energy_time))
    finally:
        joules = meter.stop()
    out.update(
        {
            "inferences": count,
            "seconds": time.perf_counter() - start,
            "joules": joules,
            "mj_per_inference": joules * 1e3 / count,
        }
    )
    return out


def run(config: BenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Measures CONFIG.target. On Ctrl-C, returns what was gathered, with "complete": False."""
    from ..device import describe, versions

    progress = progress or _Quiet()
    state = _State()
    r = state.result
    device = describe()
    r.update(
        {
            "complete": False,
            "interrupted_in": None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": device,
            "software": versions(("edgert", "onnxruntime", "numpy", "tokenizers")),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
            "configs": [],
        }
    )
    try:
        _measure(config, progress, state, device)
        r["complete"] = True
    except KeyboardInterrupt:
        r["interrupted_in"] = state.phase
    r["summary"] = summarize(r)
    return r


def _measure(config: BenchConfig, progress: Progress, state: _State, device: dict) -> None:
    r = state.result
    shapes = parse_shapes(list(config.shapes))
    values = parse_values(list(config.values))
    rss_start = rss_mib()
    energy_call = None
    before = noise.snapshot()
    spreads: dict[str, float | None] = {}
    for threads in config.threads:
        effective, source = threads_in_effect(threads)
        label = f"threads={effective or 'auto'}"
        entry: dict[str, Any] = {"threads": effective, "threads_requested": threads, "threads_source": source}
        r["configs"].append(entry)
        state.phase = f"init ({label})"
        progress.phase(state.phase)
        rss_before = rss_mib()
        t = time.perf_counter_ns()
        target = open_target(
            config.target,
            variant=config.variant,
            threads=threads,
            seq_len=config.seq_len,
            shapes=shapes,
            input_file=config.input_file,
            values=values,
        )
        entry["init_ms"] = (time.perf_counter_ns() - t) / 1e6
        rss_loaded = rss_mib()
        if "target" not in r:
            r["target"], r["memory"] = _describe(config, target, rss_start, rss_loaded - rss_before)
        call1 = target.make_call(target.latency_batch)
        state.phase = f"first inference ({label})"
        t = time.perf_counter_ns()
        try:
            call1()
        except EdgertError:
            raise
        except Exception as exc:  # onnxruntime's reason, in one line, instead of a traceback
            raise EdgertError(f"the model failed while running: {' '.join(str(exc).split())}") from None
        entry["first_ms"] = (time.perf_counter_ns() - t) / 1e6
        state.phase = f"warmup ({label})"
        progress.phase(state.phase, config.warmup)
        warm: list[int] = []
        for i in range(config.warmup):
            t = time.perf_counter_ns()
            call1()
            warm.append(time.perf_counter_ns() - t)
            progress.update(i + 1)
        entry["warmup"] = Run("warmup", "ns", tuple(warm)).as_dict()
        if r["memory"].get("rss_after_run_mib") is None:
            r["memory"]["rss_after_run_mib"] = rss_mib()
            r["memory"]["run_rss_mib"] = r["memory"]["rss_after_run_mib"] - rss_loaded
        batches = [b for b in config.batch_sizes if target.refusal(b) is None]
        entry["refused"] = [why for b in config.batch_sizes if (why := target.refusal(b)) is not None]
        energy_call = energy_call or call1
        del target
        _rounds(config, progress, state, entry, label, threads, batches, spreads)
    r["memory"]["peak_rss_mib"] = peak_rss_mib()
    r["noise"] = noise.state(before, noise.snapshot(), spreads)
    if config.cold_runs:
        state.phase = "cold start"
        r["cold_start"] = _cold_start(config, progress, state)
    if config.energy_meter != "off" and energy_call is not None:
        state.phase = "energy"
        r["energy"] = _energy(energy_call, config, device.get("board"), device["machine"], progress)


def _describe(config: BenchConfig, target, rss_start: float, load_rss: float) -> tuple[dict, dict]:
    model = target.model
    bundle = getattr(model, "bundle", None)
    names = bundle.model_files(model.variant) if bundle is not None else []  # reads the graph once
    paths = [bundle.path / f for f in names] if bundle is not None else [Path(config.target)]
    model_bytes = sum(p.stat().st_size for p in paths)  # the graph and its external weights
    if bundle is not None:  # the manifest's hashes, checked when the bundle was opened
        digest = {f: bundle.files[f].sha256 for f in names}
    else:
        import hashlib

        digest = {paths[0].name: hashlib.sha256(paths[0].read_bytes()).hexdigest()}
    described = {
        "path": str(config.target),
        "kind": target.kind,
        "task": bundle.task if bundle is not None else "raw",
        "variant": model.variant,
        "description": target.description,
        "model_bytes": model_bytes,
        "model_sha256": digest,
        "latency_batch": target.latency_batch,
        **target.items,
    }
    memory = {
        "rss_start_mib": rss_start,
        "load_rss_mib": load_rss,
        "model_file_mib": model_bytes / 2**20,
        "arena": True,
    }
    return described, memory


def _rounds(config, progress, state, entry, label, threads, batches, spreads) -> None:
    """Latency and throughput in independent worker processes; pooled samples for percentiles, one summary per
    round for the spread and for compare. A Ctrl-C keeps the rounds already done."""
    n = config.rounds
    spec = {
        **target_spec(config, threads),
        "warmup": max(config.warmup // n, 2),
        "min_time": config.min_time / n,
        "min_count": math.ceil(config.min_count / n),
        "max_time": config.max_time / n,
        "throughput_time": config.throughput_time / n,
        "batches": batches,
    }
    lat: list[int] = []
    lat_rounds: list[float] = []
    thr: dict[int, tuple[list[int], list[float]]] = {b: ([], []) for b in batches}
    latency_batch = state.result["target"]["latency_batch"]

    def record() -> None:
        meta = {"batch": latency_batch, "scenario": "SingleStream", "rounds": len(lat_rounds)}
        entry["latency"] = Run("latency", "ns", tuple(lat), meta).as_dict()
        entry["latency"]["rounds_p50_ms"] = list(lat_rounds)
        entry["latency"]["spread"] = stats.spread(lat_rounds)
        entry["throughput"] = []
        for b, (samples, rates) in thr.items():
            if not samples:
                continue
            entry["throughput"].append(
                {
                    "batch": b,
                    "items_per_call": b,
                    "items_per_s": stats.median(rates),
                    "rounds_items_per_s": list(rates),
                    "spread": stats.spread(rates),
                    "run": Run("throughput", "ns", tuple(samples), {"batch": b, "scenario": "Offline"}).as_dict(),
                }
            )

    state.phase = f"latency and throughput ({label})"
    progress.phase(f"{n} rounds in fresh processes ({label})", n)
    try:
        for k in range(n):
            out = _round(spec)
            lat.extend(out["latency"])
            lat_rounds.append(stats.median(out["latency"]) / 1e6)
            for t in out["throughput"]:
                samples, rates = thr[t["batch"]]
                samples.extend(t["samples"])
                rates.append(t["items"] * 1e9 / stats.median(t["samples"]))  # items actually run per call
            progress.update(k + 1)
    finally:
        record()
        spreads[f"latency p50 ({label})"] = entry["latency"]["spread"]


def summarize(r: dict[str, Any]) -> dict[str, float | None]:
    """The figures of the first thread setting (see summaries() for every one): latency in ms, its best measured
    throughput (items actually run per second), cold start, memory in MiB, energy."""
    configs = r.get("configs") or []
    return _summary(r, configs[0] if configs else None)


def summaries(r: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """One summary per thread setting, named as budgets name the configuration they judge."""
    return {f"threads={c['threads'] or 'auto'}": _summary(r, c) for c in r.get("configs") or []}


def _summary(r: dict[str, Any], c: dict[str, Any] | None) -> dict[str, float | None]:
    s: dict[str, float | None] = dict.fromkeys(
        ("p50", "p90", "p95", "p99", "max", "mean", "cold", "init", "first", "rss", "load_rss", "energy", "throughput")
    )
    if c is not None:
        samples = (c.get("latency") or {}).get("samples") or []
        if samples:
            st = Stats.of(samples)
            s.update({k: getattr(st, k) for k in ("p50", "p90", "p95", "p99", "max", "mean")})
        s["init"], s["first"] = c.get("init_ms"), c.get("first_ms")
        rates = [t["items_per_s"] for t in c.get("throughput", [])]
        s["throughput"] = max(rates) if rates else None
    cold = r.get("cold_start") or {}
    if cold.get("runs"):
        s["cold"] = stats.median(cold["runs"])
        s["rss"] = max(cold["peak_rss_mib"]) if cold.get("peak_rss_mib") else None
    # rss is always the cold-start process's peak: a process that only loads and runs the model. The bench
    # process's own peak (harness, every thread setting) is kept apart in memory.peak_rss_mib.
    mem = r.get("memory") or {}
    s["load_rss"] = mem.get("load_rss_mib")
    if r.get("energy"):
        s["energy"] = r["energy"]["mj_per_inference"]
    return s
