"""`edgert fleet` on a real local Dask cluster: a head and two devices, each an `edgert fleet join` process with its
own EDGERT_HOME (its own bundle store), started once for the module. No mock: the commands run on the devices,
the bundle crosses the wire, workers are killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import EMULATED

pytest.importorskip("distributed", reason="the fleet extra (Dask distributed) is the engine")
pytestmark = pytest.mark.skipif(EMULATED, reason="a cluster of bench runs: minutes under qemu")

PY = sys.executable
#: short bench runs: the tests check what the fleet gathers, not how fast the devices are
BENCH = ["--threads", "1", "--batch-sizes", "1,4", "--min-time", "0.3", "--min-count", "20", "--warmup", "3",
         "--throughput-time", "0.1", "--cold-runs", "0", "--energy-time", "0.1", "--rounds", "3"]  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "EDGERT_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        log = (root / "head.log").open("wb")
        self.procs["head"] = subprocess.Popen(
            [PY, "-m", "edgert", "fleet", "head", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip

    def join(self, name: str, env: dict[str, str] | None = None) -> None:
        home = self.root / name
        home.mkdir(exist_ok=True)
        log = (self.root / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [PY, "-m", "edgert", "fleet", "join", self.address, "--name", name, "--death-timeout", "20"],
            stdout=log, stderr=subprocess.STDOUT, env={**self.env, "EDGERT_HOME": str(home), **(env or {})},
            start_new_session=True,
        )  # fmt: skip
        self.wait_for(name)

    def devices(self) -> list[str]:
        out = self.run("devices", "--json", check=True)
        return sorted(d["name"] for d in json.loads(out.stdout))

    def wait_for(self, name: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.run("devices", "--json")
            if r.returncode == 0 and name in [d["name"] for d in json.loads(r.stdout)]:
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} did not join: {(self.root / f'{name}.log').read_text()[-2000:]}")

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [PY, "-m", "edgert", "fleet", args[0], *_with_cluster(args[1:], self.address)]
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=600)
        if check:
            assert r.returncode == 0, r.stderr
        return r

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([PY, "-m", "edgert", "fleet", args[0], *_with_cluster(args[1:], self.address)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)  # fmt: skip

    def home(self, name: str) -> Path:
        return self.root / name

    def stop(self, name: str) -> None:
        p = self.procs.pop(name)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            p.kill()
        p.wait(30)

    def close(self) -> None:
        for name in [n for n in self.procs if n != "head"]:
            self.stop(name)
        head = self.procs.pop("head")
        head.terminate()
        head.wait(30)


def _with_cluster(args: tuple[str, ...], address: str) -> list[str]:
    """--cluster goes before any -- (what follows -- is the device command's own)."""
    args = list(args)
    cut = args.index("--") if "--" in args else len(args)
    return [*args[:cut], "--cluster", address, "--timeout", "5", *args[cut:]]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        f.join("pi5")
        f.join("jetson-orin")
        yield f
    finally:
        f.close()


def _bench_children(home: Path) -> list[int]:
    """The worker processes running an `edgert bench` of the bundle in HOME's store (one device's bench)."""
    import psutil

    store = str(home / "fleet" / "bundles")
    found = []
    for p in psutil.process_iter(["ppid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd[1:4] == ["-m", "edgert", "bench"] and len(cmd) > 4 and cmd[4].startswith(store):
            found.append(int(p.info["ppid"]))
    return found


def test_devices_are_listed_with_what_edgert_device_says_on_each(fleet):
    from edgert import typed_json
    from edgert.device import describe
    from edgert.tuned import fingerprint

    r = fleet.run("devices", "--json", check=True)
    devices = {d["name"]: d for d in json.loads(r.stdout)}
    assert sorted(devices) == ["jetson-orin", "pi5"]
    here = typed_json.dump(describe())
    for d in devices.values():  # the same machine: each device describes itself as this process does
        assert d["fingerprint"] == fingerprint()
        assert d["device"]["cpu"] == here["cpu"] and d["device"]["features"] == here["features"]
        assert d["missing"] == []
    table = fleet.run("devices", check=True).stdout
    assert "pi5" in table and "jetson-orin" in table and fingerprint() in table


def test_fleet_bench_gives_one_result_per_device_with_budgets_judged_on_each(fleet, minilm_bundle, tmp_path):
    from edgert.bench.budget import evaluate, parse
    from edgert.bench.records import BenchResult

    out = tmp_path / "out"
    budget = "p95<=60s,p50<=0.001ms"  # the first passes anywhere; no model runs in a microsecond
    r = fleet.run("bench", str(minilm_bundle), "--out", str(out), "--", *BENCH, "--variant", "int8",
                  "--budget", budget)  # fmt: skip
    assert r.returncode == 1, r.stderr  # a device missed a budget
    for name in ("pi5", "jetson-orin"):
        assert f"{name}: sending {minilm_bundle.name}" in r.stderr or f"{name}: holds" in r.stderr
        result = BenchResult.from_json(json.loads((out / f"{name}.json").read_text()))
        # judged on the device, by the device's own figures: the same verdicts as judging its summaries here
        again = evaluate(parse(budget), result.summaries())
        assert [(b.budget, b.passed) for b in result.budget] == [(b.budget, b.passed) for b in again]
        assert [b.passed for b in result.budget] == [True, False]
        assert result.target is not None and result.target.variant == "int8"
        assert len(result.configs) == 1 and result.configs[0].threads == 1
    rows = [line for line in r.stdout.splitlines() if line.lstrip().startswith("device ") or "│" in line]
    assert sum("pi5" in line for line in rows) == 1 and sum("jetson-orin" in line for line in rows) == 1
    assert "FAIL p50<=0.001ms" in r.stdout

    # the second run finds the bundle on both devices and sends nothing; a generous budget passes: exit 0
    r = fleet.run("bench", str(minilm_bundle), "--devices", "pi*", "--", *BENCH, "--budget", "p95<=60s")
    assert r.returncode == 0, r.stderr
    assert "pi5: holds" in r.stderr and "sending" not in r.stderr and "jetson-orin" not in r.stderr


def test_the_bundle_arrives_verified_and_is_the_same_bytes(fleet, minilm_bundle):
    from edgert.bundle import Bundle
    from edgert.fleet.jobs import bundle_id

    fleet.run("bench", str(minilm_bundle), "--devices", "jetson-orin", "--", *BENCH, check=True)
    copy = fleet.home("jetson-orin") / "fleet" / "bundles" / bundle_id(minilm_bundle)
    here, there = Bundle.open(minilm_bundle), Bundle.open(copy, verify=True)
    assert {n: e.sha256 for n, e in here.files.items()} == {n: e.sha256 for n, e in there.files.items()}
    assert (copy / "edgert.json").read_bytes() == (minilm_bundle / "edgert.json").read_bytes()


def test_a_worker_killed_mid_run_has_its_run_retried_on_its_device(fleet, minilm_bundle):
    run = fleet.popen("bench", str(minilm_bundle), "--", *BENCH, "--min-time", "3")
    home = fleet.home("pi5")
    end = time.monotonic() + 120
    while not (parents := _bench_children(home)) and time.monotonic() < end:
        time.sleep(0.2)
    assert parents, "pi5 never started its bench"
    os.kill(parents[0], signal.SIGKILL)  # the worker process; its nanny starts a new one
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert "pi5: ok" in stderr and "attempt 2" in stderr  # run again, on pi5 itself
    assert stderr.count("pi5: ok") == 1 and stderr.count("jetson-orin: ok") == 1  # once each, never twice
    end = time.monotonic() + 30  # the killed worker's bench died with it (it does not run on, unseen)
    while _bench_children(home) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _bench_children(home)


def test_a_device_that_leaves_is_reported_and_the_others_finish(fleet, minilm_bundle):
    fleet.join("leaver")
    try:
        run = fleet.popen("bench", str(minilm_bundle), "--grace", "3", "--", *BENCH, "--min-time", "2")
        home = fleet.home("leaver")
        end = time.monotonic() + 180
        while not _bench_children(home) and time.monotonic() < end:
            time.sleep(0.2)
        assert _bench_children(home), "leaver never started its bench"
    finally:
        fleet.stop("leaver")  # the whole device: nanny, worker and its bench
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 1
    assert "leaver: left the cluster" in stderr
    assert "pi5: ok" in stderr and "jetson-orin: ok" in stderr
    assert "LEFT" in stdout


def test_bad_input_is_one_line_and_exit_2_before_anything_is_shipped(fleet, minilm_bundle, tmp_path):
    closed = _port()
    r = subprocess.run([PY, "-m", "edgert", "fleet", "bench", str(minilm_bundle), "--cluster",
                        f"tcp://127.0.0.1:{closed}", "--timeout", "1"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot reach the cluster" in r.stderr
    r = fleet.run("bench", str(minilm_bundle), "--devices", "raspberry*")
    assert r.returncode == 2 and "no device matches" in r.stderr and "pi5" in r.stderr
    r = fleet.run("bench", str(minilm_bundle), "--", "--budget", "p95<=fast")
    assert r.returncode == 2 and "cannot parse" in r.stderr and "sending" not in r.stderr
    r = fleet.run("bench", str(minilm_bundle), "--", "--cold-runs", "0", "--budget", "rss<=100MB")
    assert r.returncode == 2 and "cannot be measured" in r.stderr and "sending" not in r.stderr
    r = fleet.run("bench", str(minilm_bundle), "--", "--json", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "fleet's to set" in r.stderr
    r = fleet.run("tune", str(minilm_bundle), "--record")
    assert r.returncode == 2


def test_a_device_without_the_needed_extra_is_named_before_any_work(fleet, minilm_bundle, tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()  # this device's Python cannot find scipy (bench's extra): sys.modules["scipy"] = None
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['scipy'] = None\n")
    fleet.join("bare", env={"PYTHONPATH": str(hide)})
    try:
        r = fleet.run("bench", str(minilm_bundle), "--", *BENCH)
        assert r.returncode == 2, r.stderr
        assert "needs edgert[bench] on every device: bare lacks scipy" in r.stderr
        assert "sending" not in r.stderr
        r = fleet.run("check", str(minilm_bundle), "--devices", "bare", "--", "--variant", "int8",
                      "--fail-below", "0.5")  # fmt: skip
        assert r.returncode == 0, r.stderr  # check needs no extra
        assert "bare: ok" in r.stderr
    finally:
        fleet.stop("bare")


def _texts(n: int) -> list[str]:
    import random

    words = ("the quick brown fox jumps over a lazy dog while small models run on edge boards near you " * 2).split()
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + f" {i}" for i in range(n)]


def test_bulk_embedding_across_two_devices_equals_one_process_bitwise(fleet, minilm_bundle, tmp_path):
    import edgert
    from edgert.fleet.bulk import read_parts

    texts = _texts(20_000)
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "vectors"
    r = fleet.run("embed", str(minilm_bundle), "--devices", "pi5,jetson-orin", "--input", str(source),
                  "--out", str(out), "--variant", "fp32", "--shard-size", "2500", check=True)  # fmt: skip
    assert "20,000 rows in 8 part(s)" in r.stdout
    index = json.loads((out / "index.json").read_text())
    assert [p["part"] for p in index["parts"]] == list(range(8)) and index["rows"] == 20_000
    got = read_parts(out)
    model = edgert.load(minilm_bundle, variant="fp32", tuned=False)
    want = model.embed(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)  # row for row, bit for bit

    # a second run over the same input keeps every part it finds intact, and rewrites one that was damaged
    (out / "part-00003.npy").write_bytes(b"damaged")
    r = fleet.run("embed", str(minilm_bundle), "--input", str(source), "--out", str(out), "--variant", "fp32",
                  "--shard-size", "2500", check=True)  # fmt: skip
    assert "(7 kept from an earlier run)" in r.stdout
    assert np.array_equal(read_parts(out), want)


def test_bulk_runs_only_on_the_selected_devices(fleet, minilm_bundle, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts(1_200)) + "\n", encoding="utf-8")
    out = tmp_path / "vectors"
    r = fleet.run("embed", str(minilm_bundle), "--devices", "jetson*", "--input", str(source), "--out", str(out),
                  "--shard-size", "200", check=True)  # fmt: skip
    assert "1,200 rows in 6 part(s)" in r.stdout
    index = json.loads((out / "index.json").read_text())
    assert [p["device"] for p in index["parts"]] == ["jetson-orin"] * 6


def test_bulk_stops_when_its_selected_device_leaves_and_a_rerun_keeps_what_it_made(fleet, minilm_bundle, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts(6_000)) + "\n", encoding="utf-8")
    out = tmp_path / "vectors"
    fleet.join("leaver-bulk")
    try:
        run = fleet.popen("embed", str(minilm_bundle), "--devices", "leaver-bulk", "--grace", "3", "--input",
                          str(source), "--out", str(out), "--shard-size", "100")  # fmt: skip
        end = time.monotonic() + 180
        while time.monotonic() < end:
            index = out / "index.json"
            if index.is_file() and json.loads(index.read_text())["parts"]:
                break
            time.sleep(0.2)
    finally:
        fleet.stop("leaver-bulk")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 2, stderr
    assert "no selected device has been in the cluster for 3 s (leaver-bulk)" in stderr
    made = json.loads((out / "index.json").read_text())["parts"]
    assert made and len(made) < 60 and {p["device"] for p in made} == {"leaver-bulk"}  # never another device
    r = fleet.run("embed", str(minilm_bundle), "--devices", "pi5", "--input", str(source), "--out", str(out),
                  "--shard-size", "100", check=True)  # fmt: skip
    assert f"({len(made)} kept from an earlier run)" in r.stdout and "6,000 rows in 60 part(s)" in r.stdout


def test_fleet_check_ships_the_file_it_names_and_judges_each_device(fleet, minilm_bundle, tmp_path):
    texts = tmp_path / "mine.txt"
    texts.write_text("the cat sat on the mat\nedge devices run small models\n", encoding="utf-8")
    r = fleet.run("check", str(minilm_bundle), "--out", str(tmp_path / "out"), "--", "--variant", "int8", "--file",
                  str(texts), "--fail-below", "0.9")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "pi5: ok (exit 0" in r.stderr and "jetson-orin: ok (exit 0" in r.stderr
    assert "mine.txt" in r.stderr  # shipped to the devices that lacked it, verified there
    for name in ("pi5", "jetson-orin"):
        assert "worst cosine" in (tmp_path / "out" / f"{name}.txt").read_text()
    r = fleet.run("check", str(minilm_bundle), "--devices", "pi5", "--", "--variant", "int8", "--file", str(texts),
                  "--fail-below", "1.01")  # fmt: skip
    assert r.returncode == 1 and "pi5: budget missed (exit 1" in r.stderr  # cosine is never above 1
    assert "mine.txt" not in r.stderr  # pi5 holds it already: not sent again


def test_fleet_eval_on_a_device_equals_eval_here(fleet, minilm_bundle, tmp_path):
    from edgert.eval import EvalOptions, evaluate

    from . import evalsets

    pairs = evalsets.write_pairs(tmp_path / "pairs.csv")
    out = tmp_path / "out"
    r = fleet.run("eval", str(minilm_bundle), "--devices", "jetson*", "--out", str(out), "--", "--data", str(pairs),
                  "--variants", "fp32", "--no-cost")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "jetson-orin" in r.stdout and "fp32 spearman" in r.stdout
    there = json.loads((out / "jetson-orin.json").read_text())
    (here,) = evaluate([minilm_bundle], EvalOptions(data=pairs, variants=("fp32",), cost=False)).results
    (res,) = there["results"]
    got = {m["name"]: m["value"] for m in res["metrics"]}
    assert got["spearman"] == pytest.approx(here.metric("spearman").value, abs=1e-9)
    assert got["pearson"] == pytest.approx(here.metric("pearson").value, abs=1e-9)
