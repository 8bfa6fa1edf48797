"""The parent side of a sustained run: starts the model's process (edgert.sustained.worker), reads this device's
sensors as each second's calls end, and keeps every second it got, so a Ctrl-C loses nothing measured."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from .. import typed_json
from ..bench.config import BenchConfig
from ..bench.runner import Progress, threads_in_effect
from ..bench.spec import TargetSpec
from ..device import describe, versions
from ..device.sensors import Sensors
from ..errors import EdgertError
from .options import SustainedOptions
from .records import Second, SustainedResult
from .worker import SustainedSpec, Tick


class _Stop:
    """A Ctrl-C (or SIGTERM) during the run: asked is set and the worker is told; the second one kills it."""

    def __init__(self) -> None:
        self.asked = False
        self.worker: subprocess.Popen[str] | None = None

    def __call__(self, signum: int, frame: object) -> None:
        w = self.worker
        if w is not None and w.poll() is None:
            w.send_signal(signal.SIGKILL if self.asked else signal.SIGINT)
        self.asked = True


@contextmanager
def _interruptible() -> Iterator[_Stop]:
    """While the worker runs, a Ctrl-C is a flag, not an exception: an exception raised between any two lines of
    the parent (inside the progress display's lock, between two appends) could leave it hung or half-updated. The
    worker, told, ends its stream after the call it is in, and the loop keeps every second it sent."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only: there, the caller's own handling stands
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run(
    config: BenchConfig, options: SustainedOptions, progress: Progress, sensors: Sensors | None = None
) -> SustainedResult:
    if options.sustained is None:
        raise EdgertError("a sustained run needs a duration (--sustained, e.g. 5m)")
    if len(config.threads) != 1:
        raise EdgertError("a sustained run measures one configuration: give one --threads value")
    sensors = sensors if sensors is not None else Sensors()
    before = sensors.probe()  # a sensor that is there but unreadable fails now, before minutes of load
    threads, _ = threads_in_effect(config.threads[0])
    spec = SustainedSpec(TargetSpec.of(config, config.threads[0]), options.sustained, options.duty, config.warmup)
    seconds: list[Second] = []
    complete = False
    progress.phase(f"sustained load ({options.sustained:g} s at {options.duty:.0%} duty)", options.sustained)
    with tempfile.TemporaryFile("w+") as err, _interruptible() as stop:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgert.sustained.worker", json.dumps(typed_json.dump(spec))],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        stop.worker = proc
        if stop.asked:  # the Ctrl-C came as it started
            proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if not line.endswith("\n") and stop.asked:
                    break  # killed mid-line by a second Ctrl-C: that second is not whole
                tick = typed_json.load(Tick, json.loads(line), "a sustained run's second")
                r = sensors.read()
                seconds.append(Second(tick.t, tick.busy, tick.items, tick.samples_ns, r.freq_mhz, r.freq_min_mhz,
                                      r.temp_c, r.temps, r.throttled))  # fmt: skip
                progress.update(min(tick.t, options.sustained))
            proc.wait()
            interrupted = stop.asked or proc.returncode in (130, -2)  # its Ctrl-C may arrive before ours
            if proc.returncode != 0 and not interrupted:
                err.seek(0)
                lines = [ln for ln in err.read().splitlines() if ln.strip()]
                raise EdgertError(lines[-1] if lines else f"the sustained run failed with exit code {proc.returncode}")
            complete = not interrupted  # interrupted: the seconds so far are kept, the result says it is incomplete
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    calls = len(seconds[0].samples_ns) if seconds else 0
    return SustainedResult(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=describe(),
        software=versions(("edgert", "onnxruntime", "numpy", "tokenizers")),
        target=str(config.target),
        variant=config.variant,
        threads=threads,
        batch=seconds[0].items // calls if calls else 1,
        duration=options.sustained,
        duty=options.duty,
        window=options.window,
        sources=dict(sensors.sources),
        unavailable=dict(sensors.unavailable),
        throttled_before=before.throttled,
        seconds=tuple(seconds),
        complete=complete,
    )
