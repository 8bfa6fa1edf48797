"""`edgert bench` and `edgert compare`: budgets, the JSON schema, a bare ONNX model with mixed dtypes,
Ctrl-C, and compare's significance test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgert.bench import budget, compare, records, runner
from edgert.bench.runner import BenchConfig
from edgert.errors import EdgertError

QUICK = dict(min_time=0.2, min_count=20, throughput_time=0.1, warmup=2, energy_time=0.2, batch_sizes=(1, 4))


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory) -> Path:
    """Three inputs of three dtypes (int32, float16 with a dynamic 'seq' axis, float32) and two outputs."""
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", 4])
    b = helper.make_tensor_value_info("half", TensorProto.FLOAT16, ["batch", "seq"])
    c = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("ids_sum", TensorProto.FLOAT, ["batch"])
    z = helper.make_tensor_value_info("half_mean", TensorProto.FLOAT, ["batch"])
    w = helper.make_tensor_value_info("x_sq", TensorProto.FLOAT, ["batch", 3])
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["ids_f", "axes"], ["ids_sum"], keepdims=0),
        helper.make_node("Cast", ["half"], ["half_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["half_f", "axes"], ["half_mean"], keepdims=0),
        helper.make_node("Mul", ["x", "x"], ["x_sq"]),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "mixed", [a, b, c], [y, z, w], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "mixed.onnx"
    onnx.save(model, str(path))
    return path


# budgets


def test_budget_parses_units_into_canonical_ones():
    limits = budget.parse("p95<=20ms, rss<=150MB,energy<=5mJ,cold<=0.5s,throughput>=100/s,p50<800us")
    got = {lim.metric: (lim.op, round(lim.value, 6), lim.unit) for lim in limits}
    assert got == {
        "p95": ("<=", 20.0, "ms"),
        "rss": ("<=", round(150e6 / 2**20, 6), "MiB"),
        "energy": ("<=", 5.0, "mJ"),
        "cold": ("<=", 500.0, "ms"),
        "throughput": (">=", 100.0, "/s"),
        "p50": ("<", 0.8, "ms"),
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        ("p95<=20qs", r"unknown unit 'qs' in 'p95<=20qs'; p95 takes ns, us, µs, ms, s"),
        ("p95<=20ms,latency<=3ms", r"unknown metric 'latency' in 'latency<=3ms'"),
        ("p95=20ms", r"cannot parse 'p95=20ms'"),
        ("rss<=lots", r"cannot parse 'rss<=lots'"),
        ("", "empty"),
    ],
)
def test_bad_budget_points_at_the_token(spec, message):
    with pytest.raises(budget.BudgetError, match=message):
        budget.parse(spec)


def test_budget_toml(tmp_path):
    f = tmp_path / "budget.toml"
    f.write_text('[budget]\np95 = "20ms"\nrss = "<=150MiB"\nthroughput = "50/s"\n')
    limits = {lim.metric: lim for lim in budget.load_file(f)}
    assert limits["p95"].op == "<=" and limits["throughput"].op == ">=" and limits["rss"].value == 150
    f.write_text("[budget\n")
    with pytest.raises(budget.BudgetError, match="not valid TOML"):
        budget.load_file(f)


def test_budget_evaluation():
    rows = budget.evaluate(
        budget.parse("p95<=20ms,energy<=5mJ,throughput>=10/s"), {"p95": 19.0, "energy": None, "throughput": 9.0}
    )
    assert [r["passed"] for r in rows] == [True, False, False]  # not measured fails: a budget must be checked


# runs


@pytest.fixture(scope="module")
def bare_result(mixed_model):
    config = BenchConfig(target=mixed_model, shapes=("half=1x16",), cold_runs=2, **QUICK)
    return runner.run(config)


def test_bench_bare_onnx_with_mixed_dtypes(bare_result):
    r = bare_result
    assert r["complete"] and r["target"]["kind"] == "raw"
    assert "ids 1x4 int32" in r["target"]["description"] and "half 1x16 float16" in r["target"]["description"]
    (c,) = r["configs"]
    assert len(c["latency"]["samples"]) >= 20
    assert [t["batch"] for t in c["throughput"]] == [1, 4]
    assert r["summary"]["p50"] > 0 and r["summary"]["cold"] > 0 and r["summary"]["rss"] > 10
    assert r["energy"]["estimated"] is True and "estimated" in r["energy"]["source"]
    assert r["energy"]["mj_per_inference"] > 0


def test_json_schema_roundtrip(bare_result, tmp_path):
    path = records.save(bare_result, tmp_path / "r.json")
    data = records.load(path)
    assert data["schema"] == "edgert.bench/1"
    for key in ("machine", "software", "settings", "configs", "summary", "cold_start", "memory", "energy", "target"):
        assert key in data, key
    assert {"cpu", "features", "os", "governor", "providers", "kernels"} <= set(data["machine"])
    lat = data["configs"][0]["latency"]
    assert lat["unit"] == "ns" and all(isinstance(x, int) for x in lat["samples"])
    stats = lat["stats_ms"]
    assert list(stats) == list(records.Stats.fields)
    ms = np.array(lat["samples"]) / 1e6
    assert stats["p50"] == pytest.approx(np.percentile(ms, 50)) and stats["max"] == pytest.approx(ms.max())
    assert stats["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean())
    (tmp_path / "bad.json").write_text('{"schema": "other/1"}')
    with pytest.raises(EdgertError, match="not an edgert bench result"):
        records.load(tmp_path / "bad.json")


def test_dynamic_dimension_without_shape_names_the_flag(mixed_model):
    with pytest.raises(EdgertError, match=r"input 'half' has a dynamic dimension 'seq'; pass --shape half="):
        runner.run(BenchConfig(target=mixed_model, cold_runs=0, energy_meter="off", **QUICK))


def test_ctrl_c_keeps_the_samples(mixed_model, monkeypatch):
    real = runner._timed
    calls = {"n": 0}

    def interrupted(call, samples, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the first throughput phase
            samples.extend([1000, 2000, 3000])
            raise KeyboardInterrupt
        return real(call, samples, **kw)

    monkeypatch.setattr(runner, "_timed", interrupted)
    r = runner.run(BenchConfig(target=mixed_model, shapes=("half=1x8",), cold_runs=1, **QUICK))
    assert r["complete"] is False and r["interrupted_in"].startswith("throughput batch 1")
    assert len(r["configs"][0]["latency"]["samples"]) >= 20  # the finished phase is kept
    assert r["configs"][0]["throughput"][0]["run"]["samples"] == [1000, 2000, 3000]
    assert "cold_start" not in r and r["summary"]["p50"] is not None


def _cli(*args, check_rc=None):
    r = subprocess.run(
        [sys.executable, "-m", "edgert.cli.main", *args], capture_output=True, text=True, env={**os.environ}
    )
    if check_rc is not None:
        assert r.returncode == check_rc, r.stderr
    return r


def test_cli_budget_exit_codes(mixed_model, tmp_path):
    common = [
        str(mixed_model),
        "--shape",
        "half=1x8",
        "--quick",
        "--cold-runs",
        "0",
        "--energy-meter",
        "off",
        "--min-time",
        "0.1",
        "--batch-sizes",
        "1",
    ]
    out = tmp_path / "r.json"
    ok = _cli("bench", *common, "--budget", "p99<=10s", "--json", str(out), check_rc=0)
    assert "PASS" in ok.stdout and records.load(out)["budget"][0]["passed"] is True
    bad = _cli("bench", *common, "--budget", "p50<=1ns", check_rc=1)
    assert "FAIL" in bad.stdout and "budget violated: p50<=1ns" in bad.stderr
    usage = _cli("bench", *common, "--budget", "p50<=1parsec", check_rc=2)
    assert usage.stderr.strip().splitlines() == [
        "edgert: error: budget: unknown unit 'parsec' in 'p50<=1parsec'; p50 takes ns, us, µs, ms, s"
    ]
    missing = _cli("bench", str(tmp_path / "nope.onnx"), check_rc=2)
    assert "nope.onnx: no such bundle or model file" in missing.stderr
    noshape = _cli("bench", str(mixed_model), "--quick", check_rc=2)
    assert "pass --shape half=" in noshape.stderr and "Traceback" not in noshape.stderr
    md = _cli("bench", *common, "--markdown", check_rc=0)
    assert "## Latency, batch 1, SingleStream (ms)" in md.stdout and "| threads | n | p50 |" in md.stdout


def test_cli_bench_on_text_bundle_with_plot(minilm_bundle, tmp_path):
    png = tmp_path / "plot.png"
    r = _cli(
        "bench",
        str(minilm_bundle),
        "--quick",
        "--seq-len",
        "32",
        "--batch-sizes",
        "1,2",
        "--threads",
        "1",
        "--cold-runs",
        "1",
        "--plot",
        str(png),
        "--json",
        str(tmp_path / "r.json"),
        check_rc=0,
    )
    assert "text of 32 tokens" in r.stdout and "ESTIMATED" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = records.load(tmp_path / "r.json")
    assert data["target"]["task"] == "sentence-embedding" and abs(data["target"]["mean_tokens"] - 32) <= 2


# compare


def _fake(samples_ms: list[float], cold: list[float]) -> dict:
    ns = [int(x * 1e6) for x in samples_ms]
    return {
        "schema": records.SCHEMA,
        "complete": True,
        "configs": [
            {
                "threads": 1,
                "latency": {"samples": ns},
                "throughput": [{"batch": 8, "items_per_s": 0, "run": {"samples": [x * 8 for x in ns]}}],
            }
        ],
        "cold_start": {"runs": cold},
        "summary": {"rss": 100.0, "energy": 2.0},
    }


def test_compare_flags_a_20_percent_slowdown_and_not_a_rerun(tmp_path):
    rng = np.random.default_rng(0)
    base = list(rng.lognormal(np.log(5.0), 0.05, 500))
    rerun = list(rng.lognormal(np.log(5.0), 0.05, 500))
    slow = [x * 1.2 for x in base]  # the injected slowdown
    a, b, c = _fake(base, [200, 210, 205]), _fake(rerun, [204, 199, 207]), _fake(slow, [240, 250, 246])
    lat = {ch.metric: ch for ch in compare.compare(a, c)}["latency p50 (threads 1)"]
    assert lat.ratio == pytest.approx(1.2, rel=0.02) and lat.significant and lat.regression(0.05)
    assert lat.describe(0.05).startswith("latency p50 (threads 1) 1.20x slower (significant")
    assert not [ch for ch in compare.compare(a, b) if ch.regression(0.05)]
    same = compare.compare(a, a)
    assert all(ch.describe(0.05).endswith(")") and "same" in ch.describe(0.05) for ch in same)

    for name, data in (("a", a), ("b", b), ("c", c)):
        records.save({k: v for k, v in data.items() if k != "schema"}, tmp_path / f"{name}.json")
    assert _cli("compare", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--fail-on", "5%").returncode == 0
    assert _cli("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--fail-on", "5%").returncode == 0
    r = _cli("compare", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--fail-on", "5%")
    assert r.returncode == 1 and "REGRESSION  latency p50 (threads 1) 1.20x slower (significant" in r.stdout
    assert "throughput batch 8 (threads 1) 1.20x lower" in r.stdout
    assert _cli("compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")).returncode == 0  # no --fail-on
    bad = _cli("compare", str(tmp_path / "a.json"), str(tmp_path / "nope.json"))
    assert bad.returncode == 2 and "nope.json: cannot read" in bad.stderr


@pytest.mark.xfail(
    strict=False,
    reason="known defect, issue 11: compare tests raw latency samples of one process, which are autocorrelated, "
    "so two reruns of one build on a busy machine can be flagged (seen here: 0.019 -> 0.046 ms). Fixed by rounds.",
)
def test_compare_real_reruns_are_not_flagged(bare_result, mixed_model):
    # A model that runs in microseconds on a shared machine: the threshold is wide, the point is that the
    # significance test plus threshold does not call a plain rerun a regression.
    again = runner.run(BenchConfig(target=mixed_model, shapes=("half=1x16",), cold_runs=0, **QUICK))
    changes = compare.compare(bare_result, again)
    assert any(ch.metric.startswith("latency p50") for ch in changes)
    assert not [ch.describe(0.5) for ch in changes if ch.regression(0.5)]
    # rss is the cold-start process's peak; with no cold runs it is not measured, so it is not compared
    assert again["summary"]["rss"] is None and "rss" not in {ch.metric for ch in changes}


def test_a_single_value_is_never_a_regression():
    change = compare.Change("energy", 1.0, 3.0, ratio=3.0, p_value=None, higher_is_better=False, unit="mJ")
    assert not change.regression(0.05)
    assert "single value, no test: not judged" in change.describe(0.05)
