"""A long fuzz campaign over the kernels: tests/fuzz_kernels.py with many seeds and examples, each seed in a process
of its own, counting crashes (a process killed by a signal) and compiled-versus-NumPy mismatches per property.

    python benchmarks/fuzz_campaign.py --seeds 8 --examples 3000

The test suite runs the same properties with 60 examples (tests/test_fuzz.py); this is the long run.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import machine_line
from _results import write_section

FUZZ = Path(__file__).resolve().parents[1] / "tests" / "fuzz_kernels.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--examples", type=int, default=3000, help="examples per property and seed")
    args = ap.parse_args()
    totals: dict[str, dict[str, int]] = {}
    crashes, started = [], time.perf_counter()
    for seed in range(args.seeds):
        cmd = [sys.executable, str(FUZZ), "--examples", str(args.examples), "--seed", str(seed), "--count"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode < 0:
            crashes.append(f"seed {seed}: {signal.Signals(-proc.returncode).name}")
            print(f"seed {seed}: CRASH {signal.Signals(-proc.returncode).name}", flush=True)
            continue
        if proc.returncode == 3:
            print("the compiled kernels are not built: nothing to fuzz", file=sys.stderr)
            return 2
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        for name, p in summary["properties"].items():
            t = totals.setdefault(name, {"examples": 0, "mismatches": 0})
            t["examples"] += p["examples"]
            t["mismatches"] += p["mismatches"]
            if p["mismatches"]:
                print(f"seed {seed}: {name}: {p['mismatches']} mismatches, first: {p['first']}", flush=True)
        done = sum(t["examples"] for t in totals.values())
        print(f"seed {seed}: done, {done} examples so far, {time.perf_counter() - started:.0f} s", flush=True)
    rows = ["| property | examples | compiled vs NumPy mismatches |", "|---|---:|---:|"]
    for name, t in totals.items():
        rows.append(f"| {name} | {t['examples']} | {t['mismatches']} |")
    examples = sum(t["examples"] for t in totals.values())
    mismatches = sum(t["mismatches"] for t in totals.values())
    rows.append(f"| **all** | **{examples}** | **{mismatches}** |")
    body = (
        f"{machine_line()}\n\n{args.seeds} seeds x {args.examples} examples per property, each seed in its own "
        f"process; crashes (a process killed by a signal): **{len(crashes)}**"
        + (f" ({'; '.join(crashes)})" if crashes else "")
        + f"; {time.perf_counter() - started:.0f} s.\n\n"
        + "\n".join(rows)
    )
    print(body)
    write_section(
        "Kernel fuzz campaign",
        body,
        f"python benchmarks/fuzz_campaign.py --seeds {args.seeds} --examples {args.examples}",
    )
    return 1 if crashes or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
