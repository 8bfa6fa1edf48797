"""The model side of a sustained run, in a process of its own so that the parent's sensor reads, progress and
rendering never share its interpreter:

    python -m edgert.sustained.worker '{"target": {...}, "duration": 300, "duty": 1.0, "warmup": 10}'

Each period of one second it calls the model for DUTY of the period (at least once), sleeps for the rest, and
prints one line of JSON, a ``Tick``, as its calls end: their latencies (ns), the items they ran and the time
spent calling. A call is never cut, so a slow one stretches its period.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from ..bench.spec import TargetSpec

PERIOD = 1.0


@dataclass(frozen=True)
class SustainedSpec:
    target: TargetSpec
    duration: float
    duty: float
    warmup: int = 10


@dataclass(frozen=True)
class Tick:
    """One period's calls: when they ended (s since the timed run began), the time spent in them, what ran."""

    t: float
    busy: float
    items: int
    samples_ns: tuple[int, ...]


def run(spec: SustainedSpec) -> None:
    import gc

    from .. import typed_json
    from ..bench.workload import open_spec

    target = open_spec(spec.target)
    call = target.make_call(target.latency_batch)
    for _ in range(max(spec.warmup, 1)):
        call()
    clock = time.perf_counter_ns
    gc.disable()  # as in bench's timed runs: a collection inside a call is noise, not the model
    start = clock()
    end = start + int(spec.duration * 1e9)
    period_start = start
    while period_start < end:
        busy_until = period_start + int(PERIOD * spec.duty * 1e9)
        samples: list[int] = []
        t = period_start
        while not samples or t < busy_until:
            t0 = clock()
            call()
            t = clock()
            samples.append(t - t0)
        # the tick goes out as the calls end, so the parent reads the sensors while the load is still on them
        tick = Tick((t - start) / 1e9, sum(samples) / 1e9, len(samples) * target.latency_batch, tuple(samples))
        print(json.dumps(typed_json.dump(tick)), flush=True)
        gc.collect()  # in the idle share of the period, or charged to no call
        rest = period_start + int(PERIOD * 1e9) - clock()
        if rest > 0:
            time.sleep(rest / 1e9)
        period_start = max(clock(), period_start + int(PERIOD * 1e9))


def main() -> None:
    from .. import typed_json
    from ..errors import EdgertError

    try:
        run(typed_json.load(SustainedSpec, json.loads(sys.argv[1]), "sustained spec"))
    except EdgertError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the model failed while running: one line naming onnxruntime's reason
        reason = " ".join(str(exc).split())
        print(f"the model failed while running: {type(exc).__name__}: {reason}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
