"""The quantization search judged on the user's own task set (edgert export --eval DATA --eval-budget SPEC): the
task budget replaces the agreement budget, met on the interval's lower bound, and batch invariance is still
required; the card keeps the agreement figures beside the task figures, which equal edgert eval's on the bundle
that comes out. Bad flags are refused before any export work."""

from __future__ import annotations

import json

import pytest

import edgert
from edgert.cli.main import main
from edgert.errors import BudgetError
from edgert.eval import EvalOptions, evaluate
from edgert.eval.judge import TaskJudge

from . import evalsets
from .helpers import EMULATED

SMALL = 40


@pytest.fixture(scope="module")
def task_set(tmp_path_factory):
    return evalsets.write_stdlib_beir(tmp_path_factory.mktemp("judge") / "stdlib", limit=SMALL)


def test_a_task_budget_chooses_a_recipe_the_cosine_budget_refuses(task_set, tmp_path, capsys):
    pytest.importorskip("torch", reason="exporting needs torch")
    pytest.importorskip("optimum", reason="exporting needs optimum")
    out = tmp_path / "minilm"
    chosen = "int8-pertoken-sq+emb8"
    argv = ["export", "minilm", "-o", str(out), "--candidates", f"dynamic-int8,{chosen}", "--accuracy-budget", "0.9999"]
    assert main([*argv, "--eval", str(task_set), "--eval-budget", "ndcg@10>=0.6"]) == 0
    printed = capsys.readouterr().out
    card = json.loads((out / "edgert.json").read_text())["card"]
    search = card["search"]
    assert search["budget"]["task"]["budget"] == "ndcg@10>=0.6" and search["budget"]["task"]["data"]["items"] == SMALL
    fp32_row, dynamic, row = search["candidates"]
    assert row["min_cosine"] < 0.9999  # the agreement budget alone would have refused it
    assert search["chosen"] == chosen and row["meets_budget"] and row["batch_invariance"] >= 0.9999
    # dynamic int8 meets the task budget too, but its vectors depend on their batch-mates: still refused
    assert dynamic["task"]["passed"] and not dynamic["batch_invariant"] and not dynamic["meets_budget"]
    result = evaluate([out], EvalOptions(data=task_set, cost=False))  # the oracle: edgert eval on what came out
    for r, entry in ((result.results[0], fp32_row), (result.results[1], row)):
        m = r.metric("ndcg@10")
        assert (entry["task"]["value"], entry["task"]["low"], entry["task"]["high"]) == pytest.approx(
            (m.value, m.low, m.high)
        )
    assert entry["task"]["low"] >= 0.6 and "int8" in printed


@pytest.mark.skipif(EMULATED, reason="three judges embed the set: minutes under qemu")
def test_a_budget_the_model_cannot_meet_fails_on_the_lower_bound(minilm_bundle, task_set):
    model = edgert.load(minilm_bundle, variant="fp32")
    reachable = TaskJudge(task_set, "ndcg@10>=0.5")("fp32", model)
    assert reachable.passed and reachable.metric == "ndcg@10" and reachable.low >= 0.5
    between = TaskJudge(task_set, f"ndcg@10>={(reachable.low + reachable.value) / 2:.4f}")("fp32", model)
    assert not between.passed  # the mean meets it, the interval's lower bound does not
    both = TaskJudge(task_set, "ndcg@10>=0.5,mrr@10>=0.999")("fp32", model)
    assert not both.passed and both.metric == "ndcg@10"  # every limit must hold; the first one is reported


def test_bad_task_budgets_are_refused_before_any_export_work(task_set, tmp_path, capsys):
    with pytest.raises(BudgetError, match="is a cost limit"):
        TaskJudge(task_set, "ndcg@10>=0.8,p95<=20ms")
    with pytest.raises(BudgetError, match="this set's metrics are ndcg@10, recall@10, mrr@10"):
        TaskJudge(task_set, "accuracy>=0.8")
    base = ["export", "minilm", "-o", str(tmp_path / "out")]
    assert main([*base, "--eval", str(task_set)]) == 2
    assert "--eval and --eval-budget go together" in capsys.readouterr().err
    assert main([*base, "--eval", str(tmp_path / "nothing"), "--eval-budget", "ndcg@10>=0.8"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main([*base, "--quantize", "dynamic", "--eval", str(task_set), "--eval-budget", "ndcg@10>=0.8"]) == 2
    assert "goes with --quantize auto, not dynamic" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
