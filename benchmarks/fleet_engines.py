"""Which distributed engine edgert's fleet runs on: Ray or Dask distributed, measured side by side on this machine.

For each engine, in interleaved rounds: a head (Ray's head node, Dask's scheduler) and one worker labelled with a
device resource are started as separate processes, as `edgert fleet` users start them; the figures are

- start: seconds from launching the worker until a task that needs its device label has run on it;
- worker RSS: the resident memory of every process the worker side holds after that task (for Ray the raylet, its
  agents and the task's worker process; for Dask the nanny and the worker), summed, with the head's beside it.

A Raspberry Pi 4 has 2-4 GB, so the worker's RSS is what counts there.

    python benchmarks/fleet_engines.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, median  # noqa: E402
from _results import write_section  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree_rss(pids: list[int]) -> float:
    total = 0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total / 2**20


def _label_task() -> str:
    return socket.gethostname()


def dask_round() -> tuple[float, float, float]:
    from distributed import Client

    port = _port()
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    head = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    worker = None
    try:
        address = f"tcp://127.0.0.1:{port}"
        client = Client(address, timeout=30)
        t0 = time.perf_counter()
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
             "--resources", "device-a=1", "--name", "a", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        client.submit(_label_task, resources={"device-a": 1}, pure=False).result(timeout=60)
        start = time.perf_counter() - t0
        rss = _tree_rss([worker.pid])
        head_rss = _tree_rss([head.pid])
        client.close()
        return start, rss, head_rss
    finally:
        for p in (worker, head):
            if p is not None:
                p.terminate()
                p.wait(30)


def ray_round() -> tuple[float, float, float]:
    import ray
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
            t0 = time.perf_counter()
            node = cluster.add_node(num_cpus=1, resources={"device-a": 1})
            ray.get(ray.remote(resources={"device-a": 1})(_label_task).remote(), timeout=60)
            start = time.perf_counter() - t0

            def pids(n) -> list[int]:
                return [info.process.pid for infos in n.all_processes.values() for info in infos if info.process]

            rss = _tree_rss(pids(node))
            head_rss = _tree_rss(pids(cluster.head_node))
            return start, rss, head_rss
        finally:
            ray.shutdown()
            cluster.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import dask
    import ray

    engines = {f"Ray {ray.__version__}": ray_round, f"Dask distributed {dask.__version__}": dask_round}
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in engines}
    names = list(engines)
    for r in range(args.rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            figures[name].append(engines[name]())
            print(f"round {r + 1}: {name}: start {figures[name][-1][0]:.2f} s, worker {figures[name][-1][1]:.0f} MiB",
                  file=sys.stderr)  # fmt: skip
    lines = [
        f"Machine: {machine_line()}. A head and one worker with a device label, separate processes; "
        f"{args.rounds} interleaved rounds, medians.",
        "",
        "| engine | worker start to first labelled task | worker RSS (all its processes) | head RSS |",
        "|---|---|---|---|",
    ]
    for name in names:
        rows = figures[name]
        lines.append(
            f"| {name} | {median([r[0] for r in rows]):.2f} s | {median([r[1] for r in rows]):.0f} MiB "
            f"| {median([r[2] for r in rows]):.0f} MiB |"
        )
    body = "\n".join(lines)
    print(body)
    write_section("Fleet engines", body, "python benchmarks/fleet_engines.py")


if __name__ == "__main__":
    main()
