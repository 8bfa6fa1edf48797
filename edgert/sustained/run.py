"""The parent side of a sustained run: starts the model's process (edgert.sustained.worker), reads this device's
sensors as each second's calls end, and keeps every second it got, so a Ctrl-C loses nothing measured."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
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
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgert.sustained.worker", json.dumps(typed_json.dump(spec))],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                tick = typed_json.load(Tick, json.loads(line), "a sustained run's second")
                r = sensors.read()
                seconds.append(Second(tick.t, tick.busy, tick.items, tick.samples_ns, r.freq_mhz, r.freq_min_mhz,
                                      r.temp_c, r.temps, r.throttled))  # fmt: skip
                progress.update(min(tick.t, options.sustained))
            proc.wait()
            if proc.returncode in (130, -2):  # its Ctrl-C arrived before ours: the same interruption
                raise KeyboardInterrupt
            if proc.returncode != 0:
                err.seek(0)
                lines = [ln for ln in err.read().splitlines() if ln.strip()]
                raise EdgertError(lines[-1] if lines else f"the sustained run failed with exit code {proc.returncode}")
            complete = True
        except KeyboardInterrupt:
            pass  # the seconds so far are kept: the result says it is incomplete
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
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
