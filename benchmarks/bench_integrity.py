"""Can `edgert bench` and `edgert compare` be trusted on this machine?

    python benchmarks/bench_integrity.py --label quiet [--runs 5] [--busy]

1. False alarms: RUNS benches of one build (MiniLM fp32, 32 tokens, 1 thread, batch 1), every pair compared with
   --fail-on 10%: how many pairs compare flags, and how many would fail CI (flagged and not excused as noisy).
   --busy runs a CPU hog on one core for the whole time, as a busy CI runner would.
2. Detection: two benches at --slow-seq tokens (42: 1.3x the tokens), compared with each baseline run: the
   latency ratio they really show, and how often compare flags it.
3. Outside check: bench's p50 and cold start next to a whole-process timing of the same work, taken from outside
   (process wall time of load + 201 calls minus load + 1 call, over 200; and start to first result).

Writes a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_bundle, machine_line  # noqa: E402
from _results import write_section  # noqa: E402

from edgert import stats  # noqa: E402
from edgert.bench import compare, records  # noqa: E402

BENCH = ["--variant", "fp32", "--threads", "1", "--batch-sizes", "1", "--min-time", "1.5", "--min-count", "50"]
BENCH += ["--energy-meter", "off"]

CHILD = """
import sys, time
t0 = time.perf_counter()
import edgert
from edgert.bench.workload import texts_of_length
m = edgert.load(sys.argv[1], variant="fp32", config=edgert.SessionConfig(intra_op_threads=1))
text = texts_of_length(m.encoder.tokenizer, 32, 1)
m.embed(text)
first = time.perf_counter() - t0
for _ in range(int(sys.argv[2])):
    m.embed(text)
print(first)
"""


def _hog(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _bench(bundle: Path, out: Path, seq: int, cold: int) -> records.BenchResult:
    cmd = [sys.executable, "-m", "edgert.cli.main", "bench", str(bundle), *BENCH, "--seq-len", str(seq)]
    subprocess.run([*cmd, "--cold-runs", str(cold), "--json", str(out)], check=True, capture_output=True)
    return records.load(out)


def _outside(bundle: Path, calls: int) -> tuple[float, float]:
    """Whole-process wall time of load + 1 + calls embeds, and the child's own start-to-first-result."""
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(bundle), str(calls)], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - t, float(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True, help="names the RESULTS.md section, e.g. quiet or busy")
    ap.add_argument("--note", default="", help="what else the machine was doing")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slow-seq", type=int, default=42, help="tokens of the slower benches (baseline: 32)")
    ap.add_argument("--busy", action="store_true", help="a CPU hog on one core for the whole time")
    args = ap.parse_args()
    bundle = default_bundle()
    stop = multiprocessing.Event()
    hog = multiprocessing.Process(target=_hog, args=(stop,), daemon=True) if args.busy else None
    if hog:
        hog.start()
    tmp = Path(tempfile.mkdtemp())
    try:
        base = [_bench(bundle, tmp / f"a{i}.json", 32, 5 if i == 0 else 0) for i in range(args.runs)]
        slow = [_bench(bundle, tmp / f"b{i}.json", args.slow_seq, 0) for i in range(2)]
        outside = [(_outside(bundle, 200), _outside(bundle, 0)) for _ in range(5)]
    finally:
        stop.set()
        if hog:
            hog.join()

    pairs = list(itertools.combinations(range(args.runs), 2))
    flagged = failed = noisy_pairs = 0
    for i, j in pairs:
        changes = compare.compare(base[i], base[j])
        flagged += any(ch.regression(0.10) for ch in changes)
        failed += compare.decide(base[i], base[j], changes, 0.10, strict=False)[0]
        noisy_pairs += bool(compare.noisy(base[i]) or compare.noisy(base[j]))
    detected = excused = 0
    ratios = []
    for a in base:
        for b in slow:
            changes = compare.compare(a, b)
            lat = next(ch for ch in changes if ch.metric.startswith("latency"))
            ratios.append(lat.ratio)
            detected += lat.regression(0.10)
            excused += compare.decide(a, b, changes, 0.10, strict=False)[0] == 0 and lat.regression(0.10)
    n_slow = len(base) * len(slow)
    p50 = [p for b in base if (p := b.summary().p50) is not None]
    spreads = [b.configs[0].latency.spread for b in base if b.configs[0].latency is not None]
    per_call = [(long[0] - short[0]) / 200 * 1e3 for long, short in outside]
    first = [short[1] * 1e3 for _, short in outside]
    wall = [short[0] * 1e3 for _, short in outside]
    cold = base[0].cold_start
    assert cold is not None and cold.median_ms is not None
    situation = "a CPU hog on one core throughout" if args.busy else "no hog"
    situation += f"; {args.note}" if args.note else ""
    lines = [
        f"Machine: {machine_line()}; {situation}.",
        "",
        f"- runs marked NOISY: {sum(bool(compare.noisy(b)) for b in base)} of {args.runs}; round spread of the "
        f"latency medians {min(spreads):.1%} to {max(spreads):.1%}",
        f"- **false alarms** over {len(pairs)} same-build pairs (`--fail-on 10%`): {flagged} flagged, "
        f"**{failed} would fail CI** ({noisy_pairs} pairs had a noisy run, whose flags are reported, not failed)",
        f"- **detection** of {args.slow_seq / 32:.2f}x the tokens (32 -> {args.slow_seq}): latency ratio "
        f"{min(ratios):.2f}x to {max(ratios):.2f}x, "
        f"flagged in {detected} of {n_slow} pairs ({excused} of those excused as noisy)",
        f"- bench p50 (median of {args.runs} runs): {stats.median(p50):.2f} ms; outside, whole processes "
        f"((load + 201 calls) - (load + 1 call)) / 200: {stats.median(per_call):.2f} ms (a mean, medians of 5)",
        f"- bench cold start (median of {len(cold.runs_ms)} fresh processes): {cold.median_ms:.0f} ms; outside, "
        f"process start to exit after one result: {stats.median(wall):.0f} ms, of which start to first result "
        f"inside the child {stats.median(first):.0f} ms",
    ]
    body = "\n".join(lines)
    print(body)
    print(json.dumps({"p50": p50, "per_call": per_call, "ratios": ratios}), file=sys.stderr)
    flag = " --busy" if args.busy else ""
    write_section(
        f"Bench integrity ({args.label})",
        body,
        f"python benchmarks/bench_integrity.py --label {shlex.quote(args.label)} --runs {args.runs} "
        f"--slow-seq {args.slow_seq}{flag}",
    )


if __name__ == "__main__":
    main()
