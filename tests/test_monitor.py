"""edgert.monitor in an app: the calls return what the model returns; the rows it records hold the model's own
figures (the pre-normalisation length checked against onnxruntime and NumPy mean pooling, the top-1 against the
classifier's own answer); the report flags inputs in another script and of another length against English ones,
and not two halves of the same English stream; a store that fails never reaches the app."""

from __future__ import annotations

import random
import re

import numpy as np
import onnxruntime as ort
import pytest

import edgert
from edgert.cli.main import main
from edgert.history.store import Store
from edgert.monitor import drift

from .evalsets import stdlib_docstrings
from .helpers import EMULATED

pytestmark = pytest.mark.skipif(EMULATED, reason="hundreds of texts embedded: many minutes under qemu")
pytest.importorskip("scipy")
CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопярстуввхыз")


def english() -> list[str]:
    """Sentences of the standard library's docstrings, shuffled: one English stream."""
    found = []
    for _, first, rest in stdlib_docstrings():
        for s in re.split(r"(?<=[.!?])\s+", f"{first} {rest}"):
            if 4 <= len(s.split()) <= 30:
                found.append(s)
    random.Random(1).shuffle(found)
    return found


@pytest.fixture(scope="module")
def texts():
    found = english()
    assert len(found) >= 400
    return found


def test_recorded_lengths_are_the_models_own_and_the_calls_unchanged(minilm_bundle, tmp_path, texts):
    model = edgert.load(minilm_bundle, variant="fp32")
    store = tmp_path / "h.sqlite"
    with edgert.monitor(model, str(store), sample=1.0) as m:
        got = m.embed(texts[:8])
        assert np.array_equal(got, model.embed(texts[:8]))  # the app gets what the model gives
        assert m(texts[8]).shape == (1, 384) and m.dim == 384  # its call, and its attributes, pass through
    rows = Store(str(store)).observations("minilm")
    assert len(rows) == 9 and {r["call"] for r in rows} == {"embed"} and rows[0]["batch"] == 8
    assert [r["input_size"] for r in rows[:8]] == [float(len(t)) for t in texts[:8]]
    session = ort.InferenceSession(str(minilm_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    tok = model.encoder.tokenizer
    for text, row in zip(texts[:8], rows):
        enc = tok.encode(text)
        feeds = {"input_ids": [enc.ids], "attention_mask": [enc.attention_mask], "token_type_ids": [enc.type_ids]}
        names = {i.name for i in session.get_inputs()}
        hidden = session.run(None, {k: np.array(v, np.int64) for k, v in feeds.items() if k in names})[0][0]
        mask = np.array(enc.attention_mask, np.float32)[:, None]
        pooled = (hidden * mask).sum(0) / mask.sum()
        assert row["norm"] == pytest.approx(float(np.linalg.norm(pooled)), rel=1e-4)
    assert all(r["distance"] is None for r in rows)  # no centroid before `warm` sampled vectors


def test_sampling_keeps_the_share_asked_for(minilm_bundle, tmp_path, texts):
    model = edgert.load(minilm_bundle, variant="int8")
    with edgert.monitor(model, str(tmp_path / "h.sqlite"), sample=0.05, seed=3) as m:
        for t in texts[:200]:
            m.embed(t)
    rng = random.Random(3)
    assert m.calls == 200 and m.sampled == sum(rng.random() < 0.05 for _ in range(200)) == m.recorded


def test_a_shift_in_script_and_length_is_drift_and_the_same_stream_is_not(minilm_bundle, tmp_path, texts, capsys):
    model = edgert.load(minilm_bundle, variant="int8")
    steady, shifted = tmp_path / "steady.sqlite", tmp_path / "shifted.sqlite"
    with edgert.monitor(model, str(steady), sample=1.0, warm=50) as m:
        for i in range(0, 400, 8):
            m.embed(texts[i : i + 8])
    other = [t.lower().translate(CYRILLIC) for t in texts[400:500]]
    longer = [" ".join(texts[i : i + 6]) for i in range(0, 600, 6)]
    with edgert.monitor(model, str(shifted), sample=1.0, warm=50) as m:
        for i in range(0, 200, 8):
            m.embed(texts[i : i + 8])
        mixed = [x for pair in zip(other, longer) for x in pair]
        for i in range(0, 200, 8):
            m.embed(mixed[i : i + 8])
    base = ["monitor", "report", "minilm", "--window", "150"]
    assert main([*base, "--store", str(steady)]) == 0
    out = capsys.readouterr().out
    assert "DRIFT" not in out and "drift: none" in out
    assert main([*base, "--store", str(shifted)]) == 1
    out = capsys.readouterr().out
    flagged = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("DRIFT")}
    assert {"input_size", "distance"} <= flagged
    assert "latency baseline: p50" in out and "drift: YES" in out


def test_psi_equals_its_definition():
    rng = np.random.default_rng(0)
    base, recent = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    edges = np.quantile(base, np.linspace(0, 1, 11)[1:-1])
    b = np.histogram(base, np.r_[-np.inf, edges, np.inf])[0] / 2000
    r = np.histogram(recent, np.r_[-np.inf, edges, np.inf])[0] / 2000
    assert drift.psi(base, recent) == pytest.approx(float(np.sum((r - b) * np.log(r / b))), rel=1e-6)
    assert drift.psi(base, base) == pytest.approx(0.0, abs=1e-12)


def test_the_monitor_never_raises_into_the_app(minilm_bundle, tmp_path, classifier_bundle):
    model = edgert.load(minilm_bundle, variant="int8")
    store = tmp_path / "h.sqlite"
    m = edgert.monitor(model, str(store), sample=1.0)
    store.write_bytes(b"not a database at all" * 200)  # the store breaks after the monitor started
    assert m.embed(["still answered"]).shape == (1, 384)
    assert m.flush() == 0 and m.failed_flushes == 1 and m.dropped == 1 and "not a SQLite store" in m.last_error
    with pytest.raises(TypeError, match="expected str"):  # the model's own errors are the app's to see
        m.embed([123])
    m.close()
    with pytest.raises(edgert.EdgertError, match="does not exist"):  # a bad store is said at start
        edgert.monitor(model, str(tmp_path / "no" / "h.sqlite"))
    clf = edgert.load(classifier_bundle)
    with edgert.monitor(clf, str(tmp_path / "c.sqlite"), sample=1.0) as w:
        answers = w.classify(["great phone", "terrible battery"])
    rows = Store(str(tmp_path / "c.sqlite")).observations(classifier_bundle.name)
    assert [(r["label"], r["confidence"]) for r in rows] == [(a[0].label, pytest.approx(a[0].score)) for a in answers]
