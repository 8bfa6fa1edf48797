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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .. import stats, typed_json
from ..device import Description
from ..device import meters as energy
from ..errors import EdgertError
from . import noise
from .config import BenchConfig, parse_shapes, parse_values
from .memory import peak_rss_mib, rss_mib
from .noise import Noise
from .records import BenchResult, ColdStart, Energy, Latency, Memory, TargetInfo, ThreadRun, Throughput
from .spec import ColdParts, ColdPeak, RoundOutput, TargetSpec, WorkerSpec
from .workload import Target, open_target


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

    phase: str = "setup"
    configs: list[ThreadRun] = field(default_factory=list)
    target: TargetInfo | None = None
    memory: Memory | None = None
    noise: Noise | None = None
    cold_runs: list[float] = field(default_factory=list)
    cold_parts: list[ColdParts] = field(default_factory=list)
    cold_peaks: list[float] = field(default_factory=list)
    energy: Energy | None = None

    def update(self, **changes: Any) -> None:
        """The current thread setting's record, with CHANGES."""
        self.configs[-1] = replace(self.configs[-1], **changes)

    def cold_start(self) -> ColdStart | None:
        n = len(self.cold_peaks)  # a run counts once its process has reported its peak
        if not n:
            return None
        return ColdStart(tuple(self.cold_runs[:n]), tuple(self.cold_parts[:n]), tuple(self.cold_peaks[:n]))


def _round(spec: WorkerSpec) -> RoundOutput:
    """One round in a fresh worker process (edgert.bench.worker); its failure is one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "edgert.bench.worker", json.dumps(typed_json.dump(spec))],
        capture_output=True,
        text=True,
        timeout=spec.timeout,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise EdgertError(lines[-1] if lines else f"a bench round failed with exit code {proc.returncode}")
    answer = proc.stdout.strip().splitlines()
    return typed_json.load(RoundOutput, json.loads(answer[-1]) if answer else None, "a bench round's answer")


def threads_in_effect(requested: int) -> tuple[int, str]:
    """The intra-op thread count a session really gets, and what set it, in the flag's words."""
    from ..device import threads_in_effect as _in_effect

    resolved, source = _in_effect(requested)
    return resolved, ("--threads" if source == "requested" else source)


def _cold_start(config: BenchConfig, progress: Progress, state: _State) -> None:
    spec = json.dumps(typed_json.dump(TargetSpec.of(config, config.threads[0])))
    progress.phase("cold start (fresh processes)", config.cold_runs)
    for i in range(config.cold_runs):
        with tempfile.TemporaryFile("w+") as err:
            t = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "edgert.bench.cold", spec], stdout=subprocess.PIPE, stderr=err, text=True
            )
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            wall = (time.perf_counter() - t) * 1e3
            rest = proc.stdout.read()  # read through the same buffer that readline() filled
            proc.wait(timeout=300)
            if proc.returncode != 0 or not ready.strip() or not rest.strip():
                err.seek(0)
                last = (err.read().strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                raise EdgertError(f"cold-start process failed: {last}")
        parts = typed_json.load(ColdParts, json.loads(ready), "a cold-start process's first line")
        peak = typed_json.load(ColdPeak, json.loads(rest.strip().splitlines()[-1]), "its peak line")
        state.cold_runs.append(wall)
        state.cold_parts.append(parts)
        state.cold_peaks.append(peak.peak_rss_mib)
        progress.update(i + 1)


def _energy(
    call: Callable[[], object], config: BenchConfig, board: str | None, machine: str, progress: Progress
) -> Energy:
    meter = energy.choose(config.energy_meter, board, machine, config.watts_per_core)
    idle = None
    if meter.kind == "sampled":
        progress.phase("energy: idle power", 1.0)
        idle = meter.idle(1.0)
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
    seconds = time.perf_counter() - start
    return Energy(meter.name, meter.source, meter.estimated, count, seconds, joules, idle)


def run(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Measures CONFIG.target. On Ctrl-C, returns what was gathered, with complete False."""
    from ..device import describe, versions

    progress = progress or _Quiet()
    state = _State()
    device = describe()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    software = versions(("edgert", "onnxruntime", "numpy", "tokenizers"))
    complete, interrupted = False, None
    try:
        _measure(config, progress, state, device)
        complete = True
    except KeyboardInterrupt:
        interrupted = state.phase
    return BenchResult(
        created=created,
        machine=device,
        software=software,
        settings=config,
        configs=tuple(state.configs),
        target=state.target,
        memory=state.memory,
        noise=state.noise,
        cold_start=state.cold_start(),
        energy=state.energy,
        complete=complete,
        interrupted_in=interrupted,
    )


def _measure(config: BenchConfig, progress: Progress, state: _State, device: Description) -> None:
    shapes = parse_shapes(list(config.shapes))
    values = parse_values(list(config.values))
    rss_start = rss_mib()
    energy_call = None
    before = noise.snapshot()
    spreads: dict[str, float | None] = {}
    for threads in config.threads:
        effective, source = threads_in_effect(threads)
        record = ThreadRun(effective, threads, source)
        label = record.label
        state.configs.append(record)
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
            memory=config.memory,
        )
        state.update(init_ms=(time.perf_counter_ns() - t) / 1e6)
        rss_loaded = rss_mib()
        if state.target is None:
            state.target, state.memory = _describe(config, target, rss_start, rss_loaded - rss_before)
        call1 = target.make_call(target.latency_batch)
        state.phase = f"first inference ({label})"
        t = time.perf_counter_ns()
        try:
            call1()
        except EdgertError:
            raise
        except Exception as exc:  # onnxruntime's reason, in one line, instead of a traceback
            raise EdgertError(f"the model failed while running: {' '.join(str(exc).split())}") from None
        state.update(first_ms=(time.perf_counter_ns() - t) / 1e6)
        state.phase = f"warmup ({label})"
        progress.phase(state.phase, config.warmup)
        warm: list[int] = []
        for i in range(config.warmup):
            t = time.perf_counter_ns()
            call1()
            warm.append(time.perf_counter_ns() - t)
            progress.update(i + 1)
        state.update(warmup_ns=tuple(warm))
        if state.memory is not None and state.memory.rss_after_run_mib is None:
            after = rss_mib()
            state.memory = replace(state.memory, rss_after_run_mib=after, run_rss_mib=after - rss_loaded)
        batches = tuple(b for b in config.batch_sizes if target.refusal(b) is None)
        state.update(refused=tuple(why for b in config.batch_sizes if (why := target.refusal(b)) is not None))
        energy_call = energy_call or call1
        latency_batch = target.latency_batch
        del target
        _rounds(config, progress, state, label, threads, latency_batch, batches, spreads)
    if state.memory is not None:
        state.memory = replace(state.memory, peak_rss_mib=peak_rss_mib())
    state.noise = noise.state(before, noise.snapshot(), spreads)
    if config.cold_runs:
        state.phase = "cold start"
        _cold_start(config, progress, state)
    if config.energy_meter != "off" and energy_call is not None:
        state.phase = "energy"
        state.energy = _energy(energy_call, config, device.board, device.machine, progress)


def _describe(config: BenchConfig, target: Target, rss_start: float, load_rss: float) -> tuple[TargetInfo, Memory]:
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
    described = TargetInfo(
        path=str(config.target),
        kind=target.kind,
        task=bundle.task if bundle is not None else "raw",
        variant=model.variant,
        description=target.description,
        model_bytes=model_bytes,
        model_sha256=digest,
        latency_batch=target.latency_batch,
        input=target.facts,
    )
    memory = Memory(rss_start_mib=rss_start, load_rss_mib=load_rss, model_file_mib=model_bytes / 2**20)
    return described, memory


def _rounds(
    config: BenchConfig,
    progress: Progress,
    state: _State,
    label: str,
    threads: int,
    latency_batch: int,
    batches: tuple[int, ...],
    spreads: dict[str, float | None],
) -> None:
    """Latency and throughput in independent worker processes; pooled samples for percentiles, one summary per
    round for the spread and for compare. A Ctrl-C keeps the rounds already done."""
    n = config.rounds
    spec = WorkerSpec(
        target=TargetSpec.of(config, threads),
        warmup=max(config.warmup // n, 2),
        min_time=config.min_time / n,
        min_count=math.ceil(config.min_count / n),
        max_time=config.max_time / n,
        throughput_time=config.throughput_time / n,
        batches=batches,
    )
    lat: list[int] = []
    lat_rounds: list[float] = []
    thr: dict[int, tuple[list[int], list[float], int]] = {}

    def record() -> None:
        latency = Latency(latency_batch, tuple(lat), tuple(lat_rounds)) if lat_rounds else None
        throughput = tuple(
            Throughput(b, items, tuple(samples), tuple(rates)) for b, (samples, rates, items) in thr.items()
        )
        state.update(latency=latency, throughput=throughput)
        spreads[f"latency p50 ({label})"] = latency.spread if latency is not None else None

    state.phase = f"latency and throughput ({label})"
    progress.phase(f"{n} rounds in fresh processes ({label})", n)
    try:
        for k in range(n):
            out = _round(spec)
            lat.extend(out.latency_ns)
            lat_rounds.append(stats.median(out.latency_ns) / 1e6)
            for t in out.throughput:
                samples, rates, _ = thr.setdefault(t.batch, ([], [], t.items))
                samples.extend(t.samples_ns)
                rates.append(t.items * 1e9 / stats.median(t.samples_ns))  # items actually run per call
            progress.update(k + 1)
    finally:
        record()
