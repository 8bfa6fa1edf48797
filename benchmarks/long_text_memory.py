"""Peak memory of `edgert embed --file` on one huge line against one short line, each in a fresh process.

A text is cut before tokenizing (edgert.tasks.text), so a 50 MB line should cost little more than reading the
file. Peak RSS comes from the kernel's own accounting of each finished child (ru_maxrss), median of --runs,
the two commands interleaved.

    python benchmarks/long_text_memory.py [BUNDLE] [--mb 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_bundle, machine_line, median  # noqa: E402
from _results import write_section  # noqa: E402


def peak_mib(cmd: list[str]) -> float:
    """The peak RSS of one child process, MiB (ru_maxrss of a fresh waiter, so earlier children do not count)."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", default=None)
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    bundle = Path(args.bundle) if args.bundle else default_bundle()
    with tempfile.TemporaryDirectory() as tmp:
        words = "the quick brown fox jumps over the lazy dog "
        big, small = Path(tmp) / "big.txt", Path(tmp) / "small.txt"
        with open(big, "w") as f:
            for _ in range(args.mb * (1 << 20) // len(words)):
                f.write(words)
            f.write("\n")
        small.write_text(words + "\n")
        cmd = [sys.executable, "-m", "edgert", "embed", str(bundle), "--file"]
        rows = {"big": [], "small": []}
        for _ in range(args.runs):
            rows["big"].append(peak_mib([*cmd, str(big)]))
            rows["small"].append(peak_mib([*cmd, str(small)]))
    b, s = median(rows["big"]), median(rows["small"])
    body = (
        f"{machine_line()}\n\n"
        f"| input | peak RSS, median of {args.runs} (MiB) | runs |\n|---|---|---|\n"
        f"| one line of {args.mb} MB | {b:.0f} | {', '.join(f'{x:.0f}' for x in rows['big'])} |\n"
        f"| one short line | {s:.0f} | {', '.join(f'{x:.0f}' for x in rows['small'])} |\n\n"
        f"The huge line costs {b - s:.0f} MiB more than a short one (reading it: {args.mb} MB of bytes and the "
        "decoded text); before the cut, the same line peaked at 6.8 GB."
    )
    print(body)
    write_section("Long text memory", body, f"python benchmarks/long_text_memory.py --mb {args.mb} --runs {args.runs}")


if __name__ == "__main__":
    main()
