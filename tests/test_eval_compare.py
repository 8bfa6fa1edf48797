"""edgert compare on two eval results: the headline is tested item by item (the paired interval is checked against
scipy's bootstrap of the same differences), other metrics only by their own intervals, cost never; different sets
are refused unless --force, and a bench result is not compared with an eval result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgert.cli.main import main
from edgert.device import describe
from edgert.eval import compare as quality
from edgert.eval.metrics import mean_interval
from edgert.eval.records import Cost, Dataset, EvalResult, Evaluated, Metric, load


def _result(per_item: np.ndarray, sha: str = "ab" * 32, p50: float = 5.0, spearman: tuple = ()) -> EvalResult:
    iv = mean_interval(per_item, draws=500, seed=0)
    metrics = [Metric("accuracy", iv.value, iv.low, iv.high)]
    if spearman:
        metrics.append(Metric("spearman", *spearman))
    r = Evaluated(
        bundle="/x/model", variant="int8", model_sha256="cd" * 32, items=len(per_item), metrics=tuple(metrics),
        cost=Cost(p50=p50, p95=p50 * 1.2), per_item=tuple(float(x) for x in per_item),
    )  # fmt: skip
    return EvalResult(
        created="2026-12-04T00:00:00+00:00", machine=describe(), software={"edgert": "0"},
        dataset=Dataset("set", "classification", "/d.csv", sha, len(per_item), 0), results=(r,),
        headline="accuracy",
    )  # fmt: skip


@pytest.fixture
def items() -> np.ndarray:
    rng = np.random.default_rng(5)
    return (rng.random(400) < 0.85).astype(np.float64)


def _flip(x: np.ndarray, n: int) -> np.ndarray:
    y = x.copy()
    y[np.flatnonzero(y == 1)[:n]] = 0
    return y


def test_the_paired_interval_is_scipys_bootstrap_of_the_differences(items):
    stats = pytest.importorskip("scipy.stats")
    worse = _flip(items, 30)
    low, high = quality.paired(items, worse, seed=0, draws=4000)
    theirs = stats.bootstrap(
        ((worse - items),), np.mean, n_resamples=4000, method="percentile", random_state=np.random.default_rng(1)
    ).confidence_interval
    assert low == pytest.approx(theirs.low, abs=0.004) and high == pytest.approx(theirs.high, abs=0.004)
    assert high < 0  # 30 of 400 items got worse, none better


def test_a_real_drop_is_a_regression_and_noise_is_not(items, tmp_path, capsys):
    a, worse, nearly = tmp_path / "a.json", tmp_path / "worse.json", tmp_path / "nearly.json"
    _result(items).save(a)
    _result(_flip(items, 40), p50=4.0).save(worse)
    _result(_flip(items, 1)).save(nearly)
    assert main(["compare", str(a), str(worse), "--fail-on", "5%"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "accuracy" in x)
    assert line.startswith("REGRESSION  model:int8 accuracy worse by") and "paired bootstrap" in line
    assert "model:int8 p50: 5 -> 4 (a single value, no test: not judged)" in out
    assert main(["compare", str(a), str(nearly), "--fail-on", "5%"]) == 0
    out = capsys.readouterr().out
    assert "not significant" in out and "REGRESSION" not in out
    assert main(["compare", str(a), str(a)]) == 0
    assert "model:int8 accuracy: same" in capsys.readouterr().out
    # 40 of 340 correct items lost is 11.8% worse: a 20% threshold is not surely passed
    assert main(["compare", str(a), str(worse), "--fail-on", "20%", "--threshold", "20%"]) == 0
    assert "not surely beyond 20%" in capsys.readouterr().out


def test_a_metric_without_per_item_values_is_judged_only_when_the_intervals_are_apart(items):
    a = _result(items, spearman=(0.80, 0.75, 0.85))
    overlap = _result(items, spearman=(0.78, 0.72, 0.83))
    apart = _result(items, spearman=(0.60, 0.52, 0.68))
    (ch,) = [c for c in quality.compare(a, overlap) if c.metric == "spearman"]
    assert not ch.significant and "not judged: the two results' own intervals overlap" in ch.describe(0.05)
    (ch,) = [c for c in quality.compare(a, apart) if c.metric == "spearman"]
    assert ch.significant and ch.regression(0.05) and ch.worse_by() == pytest.approx(0.25)


def test_different_sets_are_refused_unless_forced_and_kinds_are_not_mixed(items, tmp_path, capsys):
    a, other = tmp_path / "a.json", tmp_path / "other.json"
    _result(items).save(a)
    _result(_flip(items, 40), sha="ef" * 32).save(other)
    assert main(["compare", str(a), str(other)]) == 2
    assert "evaluate different things (data set set (abababababab) vs set (efefefefefef))" in capsys.readouterr().err
    assert main(["compare", str(a), str(other), "--force"]) == 0
    out = capsys.readouterr().out
    assert "nothing is tested item by item" in out and "paired" not in out
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"schema": "edgert.bench/2"}))
    assert main(["compare", str(bench), str(a)]) == 2
    assert "is an eval result and the other is not" in capsys.readouterr().err
    v1 = json.loads(Path(a).read_text())
    v1["schema"] = "edgert.eval/1"
    for r in v1["results"]:
        del r["per_item"], r["segments"]
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(v1))
    changes = quality.compare(_result(items), load(old))
    assert [c.method for c in changes if c.metric == "accuracy"] == ["intervals"]  # v1 kept no per-item values
