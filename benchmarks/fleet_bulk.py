"""Bulk embedding on the fleet: one worker against two, beside one plain process, measured side by side here.

A head and two devices are started as users start them (`edgert fleet head`, `edgert fleet join`), each device
with one inference thread (EDGERT_THREADS=1), so two devices on this 2-core machine use what two boards would.
Before the rounds, one warm-up run ships the bundle to both devices and loads the model once per worker, as a
long-lived fleet would have done already. Then, in interleaved rounds, the same texts are embedded

- by one process with `edgert.load(...).embed` (one thread), the baseline;
- by `edgert fleet embed --devices w1` (one worker);
- by `edgert fleet embed --devices w1,w2` (two workers);

and rows/s is the rows written (checked against the input) over the wall time of the whole command, its start-up,
scheduling, transfer of texts and vectors and the writing of the parts included. The parts are compared with the
vectors of the warm-up run each round (bitwise): a speed-up that changed the numbers would not count.

    python benchmarks/fleet_bulk.py [--texts 8000] [--rounds 3] [--shard-size 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_bundle, machine_line, median, mixed_corpus  # noqa: E402
from _results import write_section  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "EDGERT_THREADS": "1", "PYTHONUNBUFFERED": "1"}

BASELINE = """
import sys, time, numpy as np, edgert
texts = open(sys.argv[2], encoding="utf-8").read().splitlines()
t0 = time.perf_counter()
model = edgert.load(sys.argv[1])
v = model.embed(texts)
np.save(sys.argv[3], v)
print(time.perf_counter() - t0)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fleet(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([PY, "-m", "edgert", "fleet", *args, "--cluster", address], capture_output=True, text=True,
                       env=ENV, timeout=1800)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"edgert fleet {' '.join(args)} failed: {r.stderr.strip()[-500:]}")
    return r


def _wait_for(address: str, names: set[str], timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = subprocess.run([PY, "-m", "edgert", "fleet", "devices", "--json", "--cluster", address, "--timeout", "5"],
                           capture_output=True, text=True, env=ENV)  # fmt: skip
        if r.returncode == 0 and names <= {d["name"] for d in json.loads(r.stdout)}:
            return
        time.sleep(0.5)
    raise SystemExit(f"devices {sorted(names)} did not join within {timeout:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=8000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--bundle", type=Path, default=None)
    args = p.parse_args()
    from edgert.fleet.bulk import read_parts

    bundle = args.bundle or default_bundle()
    texts = [t.replace("\n", " ") for t in mixed_corpus(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        port = _port()
        address = f"tcp://127.0.0.1:{port}"
        procs = [subprocess.Popen([PY, "-m", "edgert", "fleet", "head", "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)]  # fmt: skip
        try:
            for name in ("w1", "w2"):
                (root / name).mkdir()
                procs.append(subprocess.Popen(
                    [PY, "-m", "edgert", "fleet", "join", address, "--name", name],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env={**ENV, "EDGERT_HOME": str(root / name)}, start_new_session=True,
                ))  # fmt: skip
            _wait_for(address, {"w1", "w2"})
            shard = ["--shard-size", str(args.shard_size)]
            t0 = time.perf_counter()
            _fleet(address, "embed", str(bundle), "--devices", "w1,w2", "--input", str(source),
                   "--out", str(root / "warm"), *shard)  # fmt: skip
            warm = time.perf_counter() - t0
            print(f"warm-up (ship the bundle, load it on each worker): {warm:.1f} s", file=sys.stderr)

            def baseline(out: Path) -> tuple[float, np.ndarray]:
                out = out.with_suffix(".npy")
                t = time.perf_counter()
                subprocess.run([PY, "-c", BASELINE, str(bundle), str(source), str(out)], check=True, env=ENV,
                               capture_output=True)  # fmt: skip
                return time.perf_counter() - t, np.load(out)

            def on(devices: str) -> Callable[[Path], tuple[float, np.ndarray]]:
                def run(out: Path) -> tuple[float, np.ndarray]:
                    t = time.perf_counter()
                    _fleet(address, "embed", str(bundle), "--devices", devices, "--input", str(source),
                           "--out", str(out), *shard)  # fmt: skip
                    return time.perf_counter() - t, read_parts(out)

                return run

            configs = {"one process, `edgert.load().embed`": baseline, "fleet, 1 worker": on("w1"),
                       "fleet, 2 workers": on("w1,w2")}  # fmt: skip
            names = list(configs)
            want = read_parts(root / "warm")
            seconds: dict[str, list[float]] = {n: [] for n in names}
            same: dict[str, bool] = {n: True for n in names}
            for r in range(args.rounds):
                for name in names[r % 3 :] + names[: r % 3]:
                    s, got = configs[name](root / f"r{r}-{names.index(name)}")
                    if got.shape[0] != len(texts):
                        raise SystemExit(f"{name}: {got.shape[0]} rows written for {len(texts)} texts")
                    seconds[name].append(s)
                    same[name] = same[name] and bool(np.array_equal(got, want))
                    print(f"round {r + 1}: {name}: {s:.1f} s, {len(texts) / s:.0f} rows/s", file=sys.stderr)
        finally:
            for proc in procs[1:]:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            procs[0].terminate()
            for proc in procs:
                proc.wait(30)

    base = median(seconds[names[0]])
    lines = [
        f"Machine: {machine_line()}. {len(texts):,} texts of the mixed corpus, the default bundle's default variant, "
        f"one inference thread per process, shards of {args.shard_size}; {args.rounds} interleaved rounds, medians. "
        "Wall time of the whole command; the fleet's workers had the bundle and the model loaded (a warm-up run "
        f"shipped it and loaded it once per worker: {warm:.1f} s).",
        "",
        "| how | wall time | rows/s | vs one process | vectors equal to the warm-up's |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        s = median(seconds[name])
        lines.append(f"| {name} | {s:.1f} s | {len(texts) / s:.0f} | {base / s:.2f}x | "
                     f"{'bitwise' if same[name] else 'NO'} |")  # fmt: skip
    body = "\n".join(lines)
    print(body)
    write_section("Fleet bulk embedding", body, "python benchmarks/fleet_bulk.py")


if __name__ == "__main__":
    main()
