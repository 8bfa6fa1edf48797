"""`edgert bench` and `edgert compare`: budgets, the JSON schema, a bare ONNX model with mixed dtypes,
Ctrl-C, and compare's significance test."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgert.bench import budget, compare, records, report, runner
from edgert.bench.noise import Noise
from edgert.bench.runner import BenchConfig
from edgert.bench.spec import ColdParts
from edgert.device import Description
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


def test_budget_evaluation_judges_every_configuration():
    one = records.Summary(p95=19.0, energy=None, throughput=9.0)
    two = records.Summary(p95=25.0, energy=None, throughput=30.0)
    rows = budget.evaluate(budget.parse("p95<=20ms,energy<=5mJ,throughput>=10/s"), {"threads=1": one, "threads=2": two})
    got = [(r.budget, r.config, r.passed) for r in rows]
    assert got == [
        ("p95<=20ms", "threads=1", True),
        ("p95<=20ms", "threads=2", False),  # the slower configuration fails even though the first passes
        ("energy<=5mJ", "threads=1", False),  # not measured fails: a budget must be checked
        ("energy<=5mJ", "threads=2", False),
        ("throughput>=10/s", "threads=1", False),  # the best of all configurations does not rescue this one
        ("throughput>=10/s", "threads=2", True),
    ]
    assert [r.status for r in rows[2:4]] == ["not measured", "not measured"] and rows[1].status == "violated"


def test_every_budget_metric_is_a_summary_figure():
    assert set(budget.METRICS) == set(records.Summary.names())


# runs


@pytest.fixture(scope="module")
def bare_result(mixed_model):
    config = BenchConfig(target=mixed_model, shapes=("half=1x16",), cold_runs=2, **QUICK)
    return runner.run(config)


def test_bench_bare_onnx_with_mixed_dtypes(bare_result):
    r = bare_result
    assert r.complete and r.target is not None and r.target.kind == "raw"
    assert "ids 1x4 int32" in r.target.description and "half 1x16 float16" in r.target.description
    (c,) = r.configs
    assert c.latency is not None and len(c.latency.samples_ns) >= 20
    assert [t.batch for t in c.throughput] == [1, 4]
    s = r.summary()
    assert s.p50 is not None and s.cold is not None and s.rss is not None and s.rss > 10
    # the summary is computed from the samples the run recorded
    assert s.p50 == pytest.approx(np.percentile(np.array(c.latency.samples_ns) / 1e6, 50))
    assert r.cold_start is not None and s.cold == pytest.approx(np.median(r.cold_start.runs_ms))
    assert s.throughput == max(np.median(t.rounds_items_per_s) for t in c.throughput)
    assert r.energy is not None and r.energy.estimated is True and "estimated" in r.energy.source
    assert s.energy == pytest.approx(r.energy.joules * 1e3 / r.energy.inferences) and r.energy.inferences >= 10


def test_json_round_trip(bare_result, tmp_path):
    path = records.save(bare_result, tmp_path / "r.json")
    assert records.load(path) == bare_result  # every field back, with its type
    data = json.loads(path.read_text())
    assert data["schema"] == records.SCHEMA == "edgert.bench/2"
    for key in ("machine", "software", "settings", "configs", "summary", "cold_start", "memory", "energy", "target"):
        assert key in data, key
    assert {"cpu", "features", "os", "governor", "providers", "kernels"} <= set(data["machine"])
    lat = data["configs"][0]["latency"]
    assert all(isinstance(x, int) for x in lat["samples_ns"])
    # the derived figures written for readers are the ones computed from the samples in the file
    stats = lat["stats_ms"]
    ms = np.array(lat["samples_ns"]) / 1e6
    assert stats["p50"] == pytest.approx(np.percentile(ms, 50)) and stats["max"] == pytest.approx(ms.max())
    assert stats["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean())
    assert data["summary"]["p95"] == pytest.approx(np.percentile(ms, 95))
    t = data["configs"][0]["throughput"][0]
    assert t["items_per_s"] == pytest.approx(np.median(t["rounds_items_per_s"]))
    (tmp_path / "bad.json").write_text('{"schema": "other/1"}')
    with pytest.raises(EdgertError, match="not an edgert bench result"):
        records.load(tmp_path / "bad.json")


V1 = Path(__file__).parent / "data" / "bench"


def test_a_file_written_by_the_first_format_still_loads():
    """tests/data/bench/v1_*.json were written by `edgert bench` of edgert 423de09 (format edgert.bench/1,
    see the README there). They load into today's records, and the figures recomputed from their samples
    are the ones that version wrote in its own summary."""
    for name in ("v1_a.json", "v1_b.json"):
        raw = json.loads((V1 / name).read_text())
        r = records.load(V1 / name)
        assert raw["schema"] == "edgert.bench/1" and r.complete
        assert [c.threads for c in r.configs] == [1, 2] and r.settings.rounds == 4
        (c1, _) = r.configs
        assert c1.latency is not None and list(c1.latency.samples_ns) == raw["configs"][0]["latency"]["samples"]
        assert r.target is not None and r.target.input.inputs == raw["target"]["inputs"]
        assert r.cold_start is not None and list(r.cold_start.runs_ms) == raw["cold_start"]["runs"]
        for key, value in raw["summary"].items():
            assert r.summary().get(key) == pytest.approx(value), key
        assert [(b.budget, b.config, b.status) for b in r.budget] == [
            (b["budget"], b["config"], b["status"]) for b in raw["budget"]
        ]
        assert records.BenchResult.from_json(r.to_json()) == r  # and it is saved in today's format


def test_compare_reads_files_of_the_first_format_beside_new_ones(tmp_path):
    a, b = records.load(V1 / "v1_a.json"), records.load(V1 / "v1_b.json")
    changes = {ch.metric: ch for ch in compare.compare(a, b)}
    assert set(changes) >= {"latency p50 (threads 1)", "throughput batch 4 (threads 2)", "cold start", "rss"}
    lat = changes["latency p50 (threads 1)"]
    xa, xb = a.configs[0].latency.rounds_p50_ms, b.configs[0].latency.rounds_p50_ms  # type: ignore[union-attr]
    assert lat.ratio == pytest.approx(np.exp(np.mean(np.log(xb)) - np.mean(np.log(xa))))
    records.save(b, tmp_path / "b2.json")  # the same run, saved again in today's format
    r = _cli("compare", str(V1 / "v1_a.json"), str(tmp_path / "b2.json"))
    assert r.returncode == 0 and "latency p50 (threads 1)" in r.stdout, r.stderr


def test_dynamic_dimension_without_shape_names_the_flag(mixed_model):
    with pytest.raises(EdgertError, match=r"input 'half' has a dynamic dimension 'seq'; pass --shape half="):
        runner.run(BenchConfig(target=mixed_model, cold_runs=0, energy_meter="off", **QUICK))


def test_ctrl_c_keeps_the_samples(mixed_model, monkeypatch):
    real = runner._round
    calls = {"n": 0}

    def interrupted(spec):
        calls["n"] += 1
        if calls["n"] == 3:  # during the third round
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(runner, "_round", interrupted)
    r = runner.run(BenchConfig(target=mixed_model, shapes=("half=1x8",), cold_runs=1, **{**QUICK, "rounds": 5}))
    assert r.complete is False and r.interrupted_in is not None
    assert r.interrupted_in.startswith("latency and throughput")
    latency = r.configs[0].latency
    assert latency is not None and len(latency.rounds_p50_ms) == 2  # the finished rounds are kept
    assert len(latency.samples_ns) >= 2 * 4  # min_count 20 over 5 rounds: at least 4 each
    assert [len(t.rounds_items_per_s) for t in r.configs[0].throughput] == [2, 2]
    assert r.cold_start is None and r.summary().p50 is not None
    assert records.BenchResult.from_json(r.to_json()) == r  # an interrupted run saves and loads whole


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
    assert "PASS" in ok.stdout and records.load(out).budget[0].passed is True
    bad = _cli("bench", *common, "--budget", "p50<=1ns", check_rc=1)
    assert "FAIL" in bad.stdout and "budget violated: p50<=1ns (threads=auto)" in bad.stderr
    usage = _cli("bench", *common, "--budget", "p50<=1parsec", check_rc=2)
    assert usage.stderr.strip().splitlines() == [
        "edgert: error: budget: unknown unit 'parsec' in 'p50<=1parsec'; p50 takes ns, us, µs, ms, s"
    ]
    missing = _cli("bench", str(tmp_path / "nope.onnx"), check_rc=2)
    assert "nope.onnx: no such bundle or model file" in missing.stderr
    noshape = _cli("bench", str(mixed_model), "--quick", check_rc=2)
    assert "pass --shape half=" in noshape.stderr and "Traceback" not in noshape.stderr
    md = _cli("bench", *common, "--markdown", check_rc=0)
    assert "## Latency, batch 1, SingleStream (ms)" in md.stdout and "| threads | n | rounds | p50 |" in md.stdout


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
    target = records.load(tmp_path / "r.json").target
    assert target is not None and target.task == "sentence-embedding"
    assert target.input.mean_tokens is not None and abs(target.input.mean_tokens - 32) <= 2


# true throughput, raw inputs, threads


def _save(model, path: Path) -> Path:
    import onnx

    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def fixed_model(tmp_path_factory) -> Path:
    """x is 1x3, fixed (a model exported with batch 1); sr is a scalar whose value matters."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["y"])], "fixed", [x, sr], [y])
    return _save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path_factory.mktemp("m") / "f.onnx"
    )


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory) -> Path:
    """y = x * x on a dynamic batch; a and b broadcast only when their lengths agree (a run-time failure)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", "n"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", "m"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "k"])
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"]), helper.make_node("Add", ["a", "b"], ["z"])]
    graph = helper.make_graph(nodes, "dyn", [x, a, b], [y, z])
    return _save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path_factory.mktemp("m") / "d.onnx"
    )


def test_a_fixed_batch_is_refused_not_multiplied(fixed_model):
    config = BenchConfig(
        target=fixed_model, values=("sr=16000",), cold_runs=0, energy_meter="off", **{**QUICK, "rounds": 1}
    )
    r = runner.run(config)
    (c,) = r.configs
    assert c.refused == ("batch 4 refused: input 'x' has a fixed batch of 1",)
    (t,) = c.throughput  # only the batch that ran
    assert t.batch == 1 and t.items_per_call == 1
    # one round: items/s is exactly the one item per call over the median call time of that round's samples
    assert t.items_per_s == pytest.approx(1e9 / np.median(t.samples_ns))
    assert r.target is not None and "sr scalar int64=16000" in r.target.description
    shown = report.markdown(r)
    assert "batch 4 refused: input 'x' has a fixed batch of 1" in shown and "| 1 | 4 |" not in shown


def test_an_input_file_is_tiled_to_the_batch_for_real(dynamic_model, tmp_path):
    from edgert.bench.workload import open_target

    data = tmp_path / "in.npz"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.savez(data, x=x, a=np.ones((2, 4), np.float32), b=np.ones((2, 4), np.float32))
    target = open_target(dynamic_model, variant=None, threads=1, seq_len=128, shapes={}, input_file=data)
    out = target.make_call(5)()
    # five items really ran: the file's two rows, repeated in order
    np.testing.assert_array_equal(out["y"], (x * x)[[0, 1, 0, 1, 0]])
    assert target.refusal(32) is None
    r = runner.run(
        BenchConfig(target=dynamic_model, input_file=data, cold_runs=0, energy_meter="off", **{**QUICK, "rounds": 2})
    )
    assert [t.items_per_call for t in r.configs[0].throughput] == [1, 4]


def test_a_scalar_needs_a_value_and_a_failing_model_is_one_line(fixed_model, dynamic_model, tmp_path):
    with pytest.raises(EdgertError, match=r"input 'sr' is a scalar \(int64\).*pass --value sr=N"):
        runner.run(BenchConfig(target=fixed_model, cold_runs=0, **QUICK))
    r = _cli("bench", str(fixed_model), "--quick", "--value", "sr=oops", check_rc=2)
    assert r.stderr.strip().splitlines() == [
        "edgert: error: --value 'sr=oops': expected NAME=NUMBER, e.g. sample_rate=16000"
    ]
    fail = _cli(
        "bench", str(dynamic_model), "--quick", "--shape", "a=1x3", "--shape", "b=1x4", "--shape", "x=1x3", check_rc=2
    )
    lines = fail.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgert: error: the model failed while running:"), fail.stderr
    assert "Add" in lines[0] and "Traceback" not in fail.stderr


def test_the_thread_count_reported_is_the_one_that_ran(mixed_model, tmp_path, monkeypatch):
    from edgert.bench.workload import open_target

    def session_threads() -> int:
        t = open_target(mixed_model, variant=None, threads=2, seq_len=8, shapes={"half": (1, 4)}, input_file=None)
        return t.model.session.get_session_options().intra_op_num_threads

    monkeypatch.delenv("EDGERT_THREADS", raising=False)
    assert runner.threads_in_effect(2) == (2, "--threads") and session_threads() == 2
    monkeypatch.setenv("EDGERT_THREADS", "1")
    assert runner.threads_in_effect(2) == (1, "EDGERT_THREADS") and session_threads() == 1
    common = ["bench", str(mixed_model), "--shape", "half=1x4", "--quick", "--cold-runs", "0", "--energy-meter", "off"]
    out = tmp_path / "r.json"
    r = _cli(*common, "--threads", "2", "--batch-sizes", "1", "--json", str(out), check_rc=0)
    assert r.stderr.count("warning: EDGERT_THREADS=1 overrides --threads 2") == 1
    (c,) = records.load(out).configs
    assert (c.threads, c.threads_requested, c.threads_source) == (1, 2, "EDGERT_THREADS")
    assert "1 (EDGERT_THREADS)" in r.stdout


# reports


@pytest.mark.parametrize("width", [60, 80, 120])
def test_reports_never_cut_a_number(bare_result, width):
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None, file=open(os.devnull, "w"))
    report.print_rich(bare_result, console)
    text = console.export_text()
    assert "…" not in text
    for _, header, rows in report.sections(bare_result):
        for cell in [h for h in header if h] + [c for row in rows for c in row]:
            assert " ".join(cell.split()) in " ".join(text.split()), (width, cell)
    # and against the JSON itself, not only against what sections() formatted
    samples = np.array(bare_result.configs[0].latency.samples_ns) / 1e6
    for q in (50, 90, 99, 100):
        assert f"{np.percentile(samples, q):.3f}" in text
    for t in bare_result.configs[0].throughput:
        assert f"{np.median(t.rounds_items_per_s):.1f}" in text


def test_markdown_escapes_a_pipe_in_a_cell(bare_result):
    import dataclasses
    import re

    target = dataclasses.replace(bare_result.target, description="random inputs: a|b 1x4 float")
    r = dataclasses.replace(bare_result, target=target)
    md = report.markdown(r)
    table = None
    for line in md.splitlines():
        if line.startswith("| "):
            cells = [c for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if table is None:
                table = len(cells)
            assert len(cells) == table, line
        else:
            table = None
    assert "a\\|b 1x4" in md


# compare


def _fake(rounds_ms: list[float], cold: list[float], noise: Noise | None = None) -> records.BenchResult:
    """A result with five rounds' latency medians (and 20 samples each) and throughput at batch 8."""
    rng = np.random.default_rng(len(rounds_ms))
    ns = tuple(int(m * 1e6 * f) for m in rounds_ms for f in rng.lognormal(0, 0.02, 20))
    parts = ColdParts(1.0, 1.0, 1.0)
    return records.BenchResult(
        created="2026-12-02T00:00:00+00:00",
        machine=Description(cpu="test cpu", machine="x86_64"),
        software={},
        settings=BenchConfig(target=Path("m.onnx"), batch_sizes=(8,)),
        complete=True,
        target=records.TargetInfo("m.onnx", "raw", "raw", "fp32", "random inputs", 1, {"m.onnx": "ab" * 32}),
        configs=(
            records.ThreadRun(
                1, 1, "--threads",
                latency=records.Latency(1, ns, tuple(rounds_ms)),
                throughput=(records.Throughput(8, 8, ns[:5], tuple(8e3 / m for m in rounds_ms)),),
            ),
        ),
        cold_start=records.ColdStart(tuple(cold), (parts,) * len(cold), (100.0,) * len(cold)),
        energy=records.Energy("estimate", "estimated", True, 1000, 1.0, 2.0),
        noise=noise,
    )  # fmt: skip


def test_compare_judges_rounds_with_an_interval(tmp_path):
    from scipy.stats import ttest_ind

    base = [5.0, 5.2, 4.9, 5.1, 5.05]
    rerun = [5.1, 4.95, 5.15, 5.0, 5.2]
    slow = [x * 1.2 for x in [5.05, 4.95, 5.1, 5.0, 5.15]]  # an injected slowdown
    a, b, c = _fake(base, [200, 210, 205]), _fake(rerun, [204, 199, 207]), _fake(slow, [240, 250, 246])
    lat = {ch.metric: ch for ch in compare.compare(a, c)}["latency p50 (threads 1)"]
    oracle = ttest_ind(np.log(slow), np.log(base), equal_var=False)
    assert lat.p_value == pytest.approx(oracle.pvalue) and lat.rounds == (5, 5)
    ci = oracle.confidence_interval(0.95)
    assert (lat.low, lat.high) == pytest.approx((np.exp(ci.low), np.exp(ci.high)))
    assert lat.low < 1.2 < lat.high and lat.ratio == pytest.approx(np.exp(np.log(slow).mean() - np.log(base).mean()))
    assert lat.significant and lat.regression(0.05) and not lat.regression(0.25)
    assert lat.describe(0.05).startswith("latency p50 (threads 1) 1.20x slower (significant, p=")
    assert not [ch for ch in compare.compare(a, b) if ch.regression(0.05)]
    same = compare.compare(a, a)
    assert all("same" in ch.describe(0.05) for ch in same)

    noisy = _fake(slow, [240, 250, 246], noise=Noise(noisy=True, reasons=("other processes used 1.00 cores",)))
    base_run = _fake(base, [200, 210, 205])
    assert base_run.target is not None
    other = dataclasses.replace(
        base_run, target=dataclasses.replace(base_run.target, model_sha256={"m.onnx": "cd" * 32})
    )
    for name, data in (("a", a), ("b", b), ("c", c), ("n", noisy), ("o", other)):
        records.save(data, tmp_path / f"{name}.json")

    def run(x, y, *flags):
        return _cli("compare", str(tmp_path / f"{x}.json"), str(tmp_path / f"{y}.json"), *flags)

    assert run("a", "a", "--fail-on", "5%").returncode == 0
    assert run("a", "b", "--fail-on", "5%").returncode == 0
    r = run("a", "c", "--fail-on", "5%")
    assert r.returncode == 1 and "REGRESSION  latency p50 (threads 1) 1.20x slower (significant" in r.stdout
    assert "throughput batch 8 (threads 1) 1.20x lower" in r.stdout and "95% CI, 5 vs 5 rounds" in r.stdout
    assert run("a", "c").returncode == 0  # no --fail-on
    busy = run("a", "n", "--fail-on", "5%")
    assert busy.returncode == 0 and "B was measured on a busy machine: other processes used 1.00 cores" in busy.stdout
    assert "too noisy to judge" in busy.stdout and "REGRESSION" in busy.stdout
    assert run("a", "n", "--fail-on", "5%", "--strict").returncode == 1
    refused = run("a", "o")
    assert (
        refused.returncode == 2
        and "measure different things (model: m.onnx@abababababab vs m.onnx@cdcdcdcdcdcd)" in refused.stderr
    )
    forced = run("a", "o", "--force")
    assert forced.returncode == 0 and forced.stdout.startswith("note: --force: comparing different runs (model:")
    bad = run("a", "nope")
    assert bad.returncode == 2 and "nope.json: cannot read" in bad.stderr


def test_compare_decisions_follow_from_the_changes_on_real_reruns(minilm_bundle):
    """Real reruns of one build: every pair yields a tested latency change, and compare's exit code is exactly
    what its changes and noise notes imply. How often reruns are called regressions on this machine (the false
    alarm rate) and how large a slowdown is caught are measured by benchmarks/bench_integrity.py, not here."""
    config = BenchConfig(
        target=minilm_bundle, variant="fp32", threads=(1,), batch_sizes=(1,), seq_len=16, min_time=0.5, min_count=20,
        throughput_time=0.2, warmup=2, cold_runs=0, energy_meter="off",
    )  # fmt: skip
    runs = [runner.run(config) for _ in range(3)]
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            changes = compare.compare(runs[i], runs[j])
            assert any(ch.metric.startswith("latency p50") and ch.p_value is not None for ch in changes)
            code, notes = compare.decide(runs[i], runs[j], changes, 0.10, strict=False)
            regressed = any(ch.regression(0.10) for ch in changes)
            busy = bool(compare.noisy(runs[i]) or compare.noisy(runs[j]))
            assert code == (1 if regressed and not busy else 0), (code, [ch.describe(0.10) for ch in changes])
            assert any("too noisy to judge" in n for n in notes) == (regressed and busy)


def test_compare_on_two_real_runs_computes_its_figures_from_the_recorded_rounds(minilm_bundle, tmp_path):
    """Two real bench runs of different inputs: compare refuses them without --force, says what differs with it,
    and every figure and the verdict follow from the rounds the two files recorded (scipy is the oracle). How
    large a slowdown compare detects on this machine is measured in benchmarks/, not asserted here: a test that
    asserts a timing fails whenever CI shares its CPU."""
    from scipy.stats import ttest_ind

    common = ["bench", str(minilm_bundle), "--variant", "fp32", "--threads", "1", "--batch-sizes", "1"]
    common += ["--min-time", "0.5", "--min-count", "20", "--cold-runs", "0", "--energy-meter", "off"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _cli(*common, "--seq-len", "32", "--json", str(a), check_rc=0)
    _cli(*common, "--seq-len", "64", "--json", str(b), check_rc=0)
    assert _cli("compare", str(a), str(b)).returncode == 2  # different inputs: refused
    r = _cli("compare", str(a), str(b), "--force", "--fail-on", "10%")
    assert "seq_len: 32 vs 64" in r.stdout
    ra, rb = records.load(a), records.load(b)
    (lat,) = [ch for ch in compare.compare(ra, rb) if ch.metric.startswith("latency")]
    xa, xb = ra.configs[0].latency.rounds_p50_ms, rb.configs[0].latency.rounds_p50_ms  # type: ignore[union-attr]
    assert lat.rounds == (len(xa), len(xb)) and min(lat.rounds) >= 3
    assert lat.ratio == pytest.approx(np.exp(np.mean(np.log(xb)) - np.mean(np.log(xa))))
    oracle = ttest_ind(np.log(xb), np.log(xa), equal_var=False)
    assert lat.p_value == pytest.approx(oracle.pvalue)
    ci = oracle.confidence_interval(0.95)
    assert (lat.low, lat.high) == pytest.approx((np.exp(ci.low), np.exp(ci.high)))
    # the exit code is the decision those figures imply, whatever this machine's speed was
    regressed = lat.p_value < compare.ALPHA and lat.low - 1 > 0.10
    busy = bool(compare.noisy(ra) or compare.noisy(rb))
    assert r.returncode == (1 if regressed and not busy else 0), r.stdout
    assert ("REGRESSION  latency p50 (threads 1)" in r.stdout) == regressed, r.stdout
    assert ("was measured on a busy machine" in r.stdout) == busy, r.stdout
