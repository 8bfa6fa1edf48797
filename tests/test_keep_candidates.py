"""`edgert export --keep-candidates N`: the bundle keeps fp32 and the N fastest recipes that meet the budget, each
with its own figures in the card, checked here against the test's own measurement of every kept variant on the
held-apart texts; a recipe that misses the budget is never kept."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert import Bundle, quality

CANDIDATES = ("dynamic-int8", "int8-weights-b32-acc4+emb8", "int8-pertoken-sq+emb8")
VALIDATION = quality.builtin_texts("validation")


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    pytest.importorskip("optimum", reason="quantizing needs the export extra (torch, optimum)")
    from edgert import export

    options = export.ExportOptions(candidates=CANDIDATES, accuracy_budget=0.99, keep_candidates=3)
    return export.export_bundle("minilm", tmp_path_factory.mktemp("kept") / "b", options, echo=lambda s: None)


def _cos(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _alone(model, texts):
    return np.stack([model.embed([t])[0] for t in texts])


def test_the_passing_recipes_are_kept_and_the_missing_one_is_not(kept):
    search = kept.card["search"]
    passing = [r["recipe"] for r in search["candidates"] if r["recipe"] != "fp32" and r["meets_budget"]]
    assert "dynamic-int8" not in passing  # it misses on batch invariance
    assert sorted(search["kept"].values()) == sorted(passing) and len(passing) == 2
    assert search["kept"]["int8"] == search["chosen"]  # the chosen one keeps the short name
    (other,) = [v for v in search["kept"] if v != "int8"]
    assert other == search["kept"][other]  # a second int8 recipe is named by its recipe
    assert set(kept.models) == {"fp32", "int8", other}
    assert set(kept.card["candidates"]) == {other}
    for v in kept.models:  # the size of each, on disk
        files = [kept.models[v], kept.model_data[v]]
        assert kept.card["size_bytes"][v] == sum((kept.path / f).stat().st_size for f in files)


def test_each_kept_variant_carries_what_this_test_measures(kept):
    fp32 = _alone(edgert.load(kept.path, variant="fp32"), VALIDATION)
    (other,) = kept.card["candidates"]
    for variant, card in (("int8", kept.card["quantization"]), (other, kept.card["candidates"][other])):
        model = edgert.load(kept.path, variant=variant)
        cos = _cos(fp32, _alone(model, VALIDATION))
        assert card["vs_fp32"]["min_cosine"] == pytest.approx(cos.min(), abs=1e-6)
        assert card["vs_fp32"]["mean_cosine"] == pytest.approx(cos.mean(), abs=1e-6)
        assert cos.min() >= 0.99
        assert kept.card["batch_invariance"][variant] == card["batch_invariance"]["min_cosine"] >= 0.9999
    assert kept.card["candidates"][other]["name"] == other
    shown = subprocess.run([sys.executable, "-m", "edgert.cli.main", "inspect", str(kept.path)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "400"})  # fmt: skip
    assert f"kept {other}" in shown.stdout and "edgert tune measures it here" in shown.stdout, shown.stdout
    Bundle.open(kept.path, verify=True)  # every kept file is in the manifest, with its hash


def test_keep_candidates_is_checked_before_any_work():
    from edgert.errors import ExportOptionError
    from edgert.export import ExportOptions

    with pytest.raises(ExportOptionError, match="between 1 and 8"):
        ExportOptions(keep_candidates=0)
    with pytest.raises(ExportOptionError, match="goes with quantize auto"):
        ExportOptions(quantize="dynamic", keep_candidates=2)
