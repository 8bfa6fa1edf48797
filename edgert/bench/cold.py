"""Cold start, run as a fresh process by `edgert bench`: import, load, first result; then its peak RSS.

    python -m edgert.bench.cold '{"target": ..., "variant": ..., "threads": 0, "seq_len": 128, ...}'

Prints "ready {timings}" the moment the first result exists, then "peak {rss}".
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    spec = json.loads(sys.argv[1])

    from .memory import peak_rss_mib
    from .workload import open_spec

    t_start = time.perf_counter()
    target = open_spec(spec)
    t_load = time.perf_counter()
    target.make_call(target.latency_batch)()
    t_first = time.perf_counter()
    # The parent's wall clock (process start to the "ready" line) is the cold start; these are parts of it.
    timings = {
        "load_ms": target.load_ms,
        "prepare_inputs_ms": (t_load - t_start) * 1e3 - target.load_ms,
        "first_ms": (t_first - t_load) * 1e3,
    }
    print("ready " + json.dumps(timings), flush=True)
    print("peak " + json.dumps({"peak_rss_mib": peak_rss_mib()}), flush=True)


if __name__ == "__main__":
    main()
