"""What edgert.monitor costs an app: p50 of a batch-1 embed through the bare model and through the monitor at
sample 0.01 (the default) and 1.0 (every call recorded), side by side in one process, in interleaved rounds, one
thread. The store is a SQLite file in a temporary folder; the monitor's flushes run in its background thread
during the rounds, as in an app.

    python benchmarks/monitor_overhead.py [BUNDLE] [--rounds 15] [--calls 200] [--variant int8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SENTENCE, default_bundle, machine_line, median, time_calls  # noqa: E402
from _results import write_section  # noqa: E402

import edgert  # noqa: E402
from edgert.session import SessionConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", nargs="?", default=None)
    p.add_argument("--variant", default="int8")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    bundle = Path(args.bundle) if args.bundle else default_bundle()
    model = edgert.load(bundle, variant=args.variant, config=SessionConfig(intra_op_threads=1))
    with tempfile.TemporaryDirectory() as tmp:
        watched = {
            "bare model": model,
            "monitor, sample 0.01": edgert.monitor(model, str(Path(tmp) / "a.sqlite"), sample=0.01, seed=0),
            "monitor, sample 1.0": edgert.monitor(model, str(Path(tmp) / "b.sqlite"), sample=1.0, flush_seconds=1),
        }
        names = list(watched)
        for m in watched.values():  # warm-up
            time_calls(lambda m=m: m.embed(SENTENCE), 20)
        rounds: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                m = watched[name]
                rounds[name].append(median(time_calls(lambda m=m: m.embed(SENTENCE), args.calls)) * 1e3)
        recorded = {}
        for name, m in watched.items():
            if name != "bare model":
                m.close()
                recorded[name] = (m.calls, m.recorded, m.dropped)
    base = median(rounds["bare model"])
    lines = [
        f"Machine: {machine_line()}. Bundle {bundle.name}:{args.variant}, one thread, batch 1, the 16-token sentence; "
        f"{args.rounds} interleaved rounds of {args.calls} calls, the median of each round's p50.",
        "",
        "| model | p50 (median of rounds) | vs bare | calls recorded |",
        "|---|---|---|---|",
    ]
    for name in names:
        p50 = median(rounds[name])
        calls, kept, dropped = recorded.get(name, (None, None, None))
        shown = "-" if calls is None else f"{kept:,} of {calls:,} ({dropped} dropped)"
        lines.append(f"| {name} | {p50:.3f} ms | {p50 / base:.3f}x | {shown} |")
    body = "\n".join(lines)
    print(body)
    write_section("Monitor overhead", body, "python benchmarks/monitor_overhead.py")


if __name__ == "__main__":
    main()
