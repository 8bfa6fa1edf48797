"""The examples in examples/ run, and give what the library (or sentence-transformers) gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgert

from .conftest import REPO
from .helpers import EMULATED

EXAMPLES = REPO / "examples"


def _run(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """The example in a process of its own, with this Python's environment first on PATH (where `edgert` is)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, **(env or {})}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=600, **kw)


NOTES = {
    "home/network.txt": "To restart the wifi router, unplug it for ten seconds.\n\nThe guest network password is on "
    "the fridge.\n",
    "home/kitchen.md": "# Kitchen\nBake the bread at 220 degrees for forty minutes.\nThe dishwasher salt goes in "
    "the bottom.\n",
    "garden.txt": "Water the tomatoes every morning in summer.\n",
}


def test_semantic_search_finds_the_passage(tmp_path, minilm_bundle):
    for name, text in NOTES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe not text")
    query = "how do I reboot my internet box"
    proc = _run(
        [sys.executable, EXAMPLES / "semantic_search.py", tmp_path, query, "--top", "3", "--bundle", minilm_bundle]
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "binary.txt" in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    score, where, text = lines[0].split("  ", 2)
    assert where == "home/network.txt:1" and text.startswith("To restart the wifi router")
    # the oracle: the same scores from the library directly
    model = edgert.load(minilm_bundle)
    want = float(model.embed([text])[0] @ model.embed(query)[0])
    assert float(score) == pytest.approx(want, abs=1e-3)


def test_semantic_search_agrees_with_sentence_transformers(tmp_path, minilm_bundle, st_model):
    passages = [line for text in NOTES.values() for line in text.splitlines() if line.strip()]
    (tmp_path / "all.txt").write_text("\n".join(passages), encoding="utf-8")
    query = "when should the plants get water"
    proc = _run([sys.executable, EXAMPLES / "semantic_search.py", tmp_path, query, "--bundle", minilm_bundle])
    assert proc.returncode == 0, proc.stderr
    got = [line.split("  ", 2)[2] for line in proc.stdout.splitlines()]
    emb = st_model.encode(passages, normalize_embeddings=True)
    q = st_model.encode([query], normalize_embeddings=True)[0]
    want = [passages[i] for i in np.argsort(-(emb @ q), kind="stable")[:5]]
    assert got[0] == want[0] == "Water the tomatoes every morning in summer."
    assert got[:3] == want[:3]


def test_semantic_search_refuses_an_empty_folder(tmp_path, minilm_bundle):
    proc = _run([sys.executable, EXAMPLES / "semantic_search.py", tmp_path, "anything", "--bundle", minilm_bundle])
    assert proc.returncode == 2 and "no .txt or .md file" in proc.stderr and "Traceback" not in proc.stderr


def test_classify_frame_from_a_bgr_array(tmp_path, vit_bundle):
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    np.save(tmp_path / "frame.npy", frame)
    proc = _run([sys.executable, EXAMPLES / "classify_frame.py", vit_bundle, tmp_path / "frame.npy", "--bgr"])
    assert proc.returncode == 0, proc.stderr
    got = [(line.split("  ")[1], float(line.split("  ")[0])) for line in proc.stdout.splitlines()]
    want = edgert.load(vit_bundle).classify(frame[:, :, ::-1], top_k=3)[0]  # the oracle: RGB by hand
    assert [g[0] for g in got] == [p.label for p in want]
    np.testing.assert_allclose([g[1] for g in got], [p.score for p in want], atol=1e-3)
    synthetic = _run([sys.executable, EXAMPLES / "classify_frame.py", vit_bundle])
    assert synthetic.returncode == 0 and len(synthetic.stdout.splitlines()) == 3, synthetic.stderr


def test_similarity_pipe_and_empty_input(minilm_bundle):
    embed = _run([sys.executable, "-m", "edgert", "embed", str(minilm_bundle), "-t", "a cat", "-t", "a kitten"])
    assert embed.returncode == 0, embed.stderr
    proc = _run([sys.executable, EXAMPLES / "similarity.py"], input=embed.stdout)
    assert proc.returncode == 0, proc.stderr
    vecs = [json.loads(line)["embedding"] for line in embed.stdout.splitlines()]
    assert f"{float(np.dot(vecs[0], vecs[1])):+.3f}" in proc.stdout
    empty = _run([sys.executable, EXAMPLES / "similarity.py"], input="")
    assert empty.returncode != 0 and "need at least two texts" in empty.stderr and "Traceback" not in empty.stderr


@pytest.mark.skipif(EMULATED, reason="too slow under qemu (a bench run starts fresh processes)")
def test_budget_check_passes_and_fails(tmp_path, minilm_bundle):
    script = EXAMPLES / "budget_check.sh"
    ok = _run(["bash", script, minilm_bundle], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert [b["status"] for b in result["budget"]] == ["passed", "passed"]
    tight = _run(["bash", script, minilm_bundle], cwd=tmp_path, env={"EDGERT_BUDGET": "p95<=1us"})
    assert tight.returncode == 1 and "budget violated: p95<=1us" in tight.stderr


@pytest.mark.skipif(EMULATED, reason="end-to-end eval runs take many minutes under qemu")
def test_eval_two_bundles_ships_what_the_library_chooses(tmp_path, minilm_bundle):
    import shutil

    from edgert.eval import EvalOptions, evaluate

    from . import evalsets

    pairs = evalsets.write_pairs(tmp_path / "pairs.csv")
    new = shutil.copytree(minilm_bundle, tmp_path / "minilm-new")
    proc = _run([sys.executable, EXAMPLES / "eval_two_bundles.py", minilm_bundle, new, pairs, "--floor", "0.3",
                 "--variant", "fp32", "--no-cost"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = evaluate([minilm_bundle], EvalOptions(data=pairs, variants=("fp32",), cost=False))
    m = result.results[0].metric("spearman")
    assert f"spearman {m.value:.3f} [{m.low:.3f}, {m.high:.3f}]" in proc.stdout
    assert proc.stdout.strip().endswith(f"ship: {minilm_bundle.name}:fp32")  # both pass, cost unknown: the first
    proc = _run([sys.executable, EXAMPLES / "eval_two_bundles.py", minilm_bundle, new, pairs, "--floor", "0.99",
                 "--variant", "fp32", "--no-cost"])  # fmt: skip
    assert proc.returncode == 1 and "neither reaches spearman >= 0.99" in proc.stdout
