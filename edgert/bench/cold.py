"""Cold start, run as a fresh process by `edgert bench`: import, load, first result; then its peak RSS.

    python -m edgert.bench.cold '{"target": ..., "variant": ..., "threads": 0, "seq_len": 128, ...}'

Takes a TargetSpec and prints two lines of JSON (edgert.bench.spec): ColdParts the moment the first result
exists, then ColdPeak. A failure is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from .. import typed_json
    from ..errors import EdgertError
    from .memory import peak_rss_mib
    from .spec import ColdParts, ColdPeak, TargetSpec
    from .workload import open_spec

    try:
        spec = typed_json.load(TargetSpec, json.loads(sys.argv[1]), "cold-start spec")
        t_open = time.perf_counter()
        target = open_spec(spec)
        t_load = time.perf_counter()
        target.make_call(target.latency_batch)()
        t_first = time.perf_counter()
    except EdgertError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)
    # The parent's wall clock (process start to this line) is the cold start; these are parts of it.
    parts = ColdParts(
        load_ms=target.load_ms,
        prepare_inputs_ms=(t_load - t_open) * 1e3 - target.load_ms,
        first_ms=(t_first - t_load) * 1e3,
    )
    print(json.dumps(typed_json.dump(parts)), flush=True)
    print(json.dumps(typed_json.dump(ColdPeak(peak_rss_mib()))), flush=True)


if __name__ == "__main__":
    main()
