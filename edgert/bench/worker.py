"""One round of `edgert bench`, run as a fresh process so that rounds are independent (as pyperf does): a new
session, new allocations, new thread placement. Samples inside one process are autocorrelated; the spread
between rounds is what tells noise from change.

    python -m edgert.bench.worker '{"target": {"target": ..., "threads": 1, ...}, "batches": [1, 8], ...}'

Takes a WorkerSpec and prints one line of JSON, a RoundOutput (edgert.bench.spec): the latency samples (ns),
and per batch the items each call ran and its samples. A failure is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from .spec import BatchSamples, RoundOutput, WorkerSpec


def timed(call: Callable[[], object], *, min_time: float, min_count: int, max_time: float) -> list[int]:
    """One call after another until both the minimum time and the minimum count are met (or max_time)."""
    import gc

    samples: list[int] = []
    enabled = gc.isenabled()
    gc.disable()
    clock = time.perf_counter_ns
    try:
        start = clock()
        while True:
            t0 = clock()
            call()
            t1 = clock()
            samples.append(t1 - t0)
            elapsed = (t1 - start) / 1e9
            if (elapsed >= min_time and len(samples) >= min_count) or elapsed >= max_time:
                break
    finally:
        if enabled:
            gc.enable()
    return samples


def measure(spec: WorkerSpec) -> RoundOutput:
    from .workload import open_spec

    target = open_spec(spec.target)
    call = target.make_call(target.latency_batch)
    for _ in range(max(spec.warmup, 1)):
        call()
    latency = timed(call, min_time=spec.min_time, min_count=spec.min_count, max_time=spec.max_time)
    throughput = []
    for batch in spec.batches:
        call = target.make_call(batch)
        call()
        samples = timed(call, min_time=spec.throughput_time, min_count=3, max_time=spec.max_time)
        throughput.append(BatchSamples(batch, batch, tuple(samples)))
    return RoundOutput(tuple(latency), tuple(throughput))


def main() -> None:
    from .. import typed_json
    from ..errors import EdgertError

    try:
        result = measure(typed_json.load(WorkerSpec, json.loads(sys.argv[1]), "worker spec"))
    except EdgertError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # the model failed while running: one line naming onnxruntime's reason
        reason = " ".join(str(exc).split())
        print(f"the model failed while running: {type(exc).__name__}: {reason}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(typed_json.dump(result)), flush=True)


if __name__ == "__main__":
    main()
