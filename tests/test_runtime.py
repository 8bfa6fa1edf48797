"""edgert.load() pipelines against their oracles: sentence-transformers and transformers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import edgert
from edgert import RawModel, TextClassifier, TextEmbedder
from edgert.errors import TaskError

from .conftest import CORPUS, EMULATED


@pytest.fixture(scope="module")
def fp32(minilm_bundle):
    return edgert.load(minilm_bundle, variant="fp32")


@pytest.fixture(scope="module")
def int8(minilm_bundle):
    return edgert.load(minilm_bundle, variant="int8")


def _cos(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_load_returns_the_manifest_task(fp32, int8):
    assert isinstance(fp32, TextEmbedder) and fp32.variant == "fp32"
    assert isinstance(int8, TextEmbedder) and int8.variant == "int8"
    assert fp32.dim == 384


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_embeddings_match_sentence_transformers(fp32, st_model, batch_size):
    got = fp32.embed(CORPUS, batch_size=batch_size)
    want = st_model.encode(CORPUS, convert_to_numpy=True)
    assert got.dtype == np.float32 and got.shape == (len(CORPUS), 384)
    cos = _cos(got, want)
    assert cos.min() >= 0.9999, {t[:30]: round(float(c), 6) for t, c in zip(CORPUS, cos)}
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_int8_agreement_is_measured(int8, fp32, st_model):
    cos = _cos(int8.embed(CORPUS), st_model.encode(CORPUS, convert_to_numpy=True))
    # int8 is an approximation, chosen by the search for a worst cosine of 0.99 to fp32 on other texts
    assert 0.98 < cos.min() and cos.mean() > 0.995


def test_order_is_restored_after_length_bucketing(fp32):
    # under qemu a 256-token text costs seconds: the short texts still land in buckets of different lengths
    corpus = [t for t in CORPUS if len(t) < 200] if EMULATED else CORPUS
    shuffled = corpus[::-1] + corpus[:5]
    together = fp32.embed(shuffled, batch_size=4)
    alone = np.stack([fp32.embed([t])[0] for t in shuffled])
    np.testing.assert_allclose(together, alone, atol=2e-5)


def test_a_token_cap_bounds_every_batch_and_keeps_the_vectors(fp32, st_model):
    """max_tokens: every model call holds at most max_tokens padded tokens (a longer text alone), every text is in
    exactly one call, and the vectors are sentence-transformers' whatever the cap."""
    corpus = [t for t in CORPUS if len(t) < 200] if EMULATED else CORPUS
    encodings = fp32.encoder.encode(corpus)
    longest = max(len(e) for e in encodings)
    for cap in (1, 64, 200, longest * 3):
        seen = []
        for idx, feeds in fp32.encoder.batches(encodings, 32, max_tokens=cap):
            rows, width = feeds["input_ids"].shape
            assert rows == 1 or rows * width <= cap, (cap, rows, width)
            seen += list(np.arange(len(corpus))[idx])
        assert sorted(seen) == list(range(len(corpus)))
        got = fp32.embed(corpus, max_tokens=cap)
        assert _cos(got, st_model.encode(corpus, convert_to_numpy=True)).min() >= 0.9999
    with pytest.raises(edgert.EdgertError, match="max_tokens must be a whole number >= 1"):
        fp32.embed(["a"], max_tokens=0)


def test_truncates_at_the_model_max_length(fp32):
    long = "word " * 1000
    enc = fp32.encoder.encode([long])[0]
    assert len(enc.ids) == 256
    np.testing.assert_allclose(fp32.embed([long]), fp32.embed(["word " * 600]), atol=1e-6)


def test_dynamic_padding_not_fixed_128(fp32):
    ((_, feeds),) = list(fp32.encoder.batches(fp32.encoder.encode(["a short one"]), 8))
    assert feeds["input_ids"].shape == (1, 5)  # [CLS] a short one [SEP]


def test_bad_inputs(fp32):
    with pytest.raises(TypeError, match=r"texts\[2\] is NoneType, expected str"):
        fp32.embed(["a", "b", None])
    with pytest.raises(TypeError, match=r"texts\[0\] is bytes"):
        fp32.embed([b"bytes"])
    with pytest.raises(TypeError, match="got bytes"):
        fp32.embed(b"bytes")
    empty = fp32.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert fp32.embed("one string").shape == (1, 384)
    with pytest.raises(ValueError, match="batch_size"):
        fp32.embed(["x"], batch_size=0)


def test_exotic_texts_embed(fp32):
    n = 40 if EMULATED else 1  # under qemu the same kinds of text, shorter: truncation has its own test
    exotic = ["", " ", "\t\n", "\x00\x01\x02", "🙂" * (500 // n), "中" * (2000 // n), "a" * 100_000, "\u200b\u200d"]
    out = fp32.embed(exotic)
    assert np.isfinite(out).all() and out.shape == (len(exotic), 384)


def test_many_threads_share_one_model(int8):
    # under qemu every run costs 20-50x: fewer, shorter texts
    texts = [t for t in CORPUS if len(t) < 60] if EMULATED else CORPUS * 3
    serial = int8.embed(texts, batch_size=8)
    results, errors = {}, []

    def work(i):
        try:
            results[i] = int8.embed(texts, batch_size=8)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    n = 3 if EMULATED else 8  # under qemu still threads racing on one session, fewer of them
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == n
    for r in results.values():
        np.testing.assert_allclose(r, serial, atol=1e-6)


def test_task_mismatch_is_a_clear_error(minilm_bundle, classifier_bundle):
    from edgert import Bundle

    with pytest.raises(TaskError, match="bundle task is 'sentence-embedding', but TextClassifier serves"):
        TextClassifier(Bundle.open(minilm_bundle))
    with pytest.raises(TaskError, match="bundle task is 'text-classification'"):
        TextEmbedder(Bundle.open(classifier_bundle))


def test_raw_session_for_any_bundle(minilm_bundle, fp32):
    raw = edgert.load(minilm_bundle, task="raw", variant="fp32")
    assert isinstance(raw, RawModel)
    ids = np.array([[101, 7592, 2088, 102]])
    out = raw.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    want = fp32.embed(["hello world"])  # 101 hello world 102
    np.testing.assert_allclose(out["sentence_embedding"], want, atol=1e-6)
    with pytest.raises(TaskError, match="missing \\['attention_mask'\\]"):
        raw.run({"input_ids": ids})
    bare = edgert.load(minilm_bundle / "model.onnx")
    assert isinstance(bare, RawModel) and bare.bundle is None


# text classification: a small random BERT classifier, checked against transformers


def _transformers_probs(model_dir, texts):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits
    return torch.softmax(logits, -1).numpy()


def test_classifier_matches_transformers(classifier_bundle, tiny_classifier_dir):
    clf = edgert.load(classifier_bundle, variant="fp32")
    assert isinstance(clf, TextClassifier) and clf.labels == ["negative", "neutral", "positive"]
    probs = clf.scores(CORPUS)
    want = _transformers_probs(tiny_classifier_dir, CORPUS)
    np.testing.assert_allclose(probs, want, atol=1e-5)
    preds = clf.classify(CORPUS, top_k=2)
    for row, p in zip(preds, want):
        order = np.argsort(-p, kind="stable")[:2]
        assert [x.label for x in row] == [clf.labels[i] for i in order]
        assert [x.score for x in row] == pytest.approx(p[order].tolist(), abs=1e-5)
    assert clf.classify([]) == []
    assert len(clf.classify(["x"], top_k=99)[0]) == 3


def test_int8_classifier_agrees_with_fp32(classifier_bundle):
    """The int8 variant by name: the default variant may be fp32, and fp32 against itself would prove nothing."""
    assert "int8" in edgert.Bundle.open(classifier_bundle).models
    fp = edgert.load(classifier_bundle, variant="fp32").scores(CORPUS)
    q = edgert.load(classifier_bundle, variant="int8").scores(CORPUS)
    assert np.abs(fp - q).max() < 0.1


def _linked_copy(src, dst):
    import os

    dst.mkdir(parents=True)
    for f in src.iterdir():
        os.link(f, dst / f.name)
    return dst


def test_load_takes_catalog_names_user_paths_and_opened_bundles(tmp_path, monkeypatch, minilm_bundle, fp32):
    from edgert.bundle import Bundle
    from edgert.catalog import default_bundle_path

    want = fp32.embed(["first contact"])
    monkeypatch.setenv("EDGERT_HOME", str(tmp_path / "home"))
    _linked_copy(minilm_bundle, default_bundle_path("minilm"))  # as if built on first use
    by_name = edgert.load("minilm", variant="fp32")
    assert by_name.bundle.path == default_bundle_path("minilm")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BUNDLES", "bundles")
    _linked_copy(minilm_bundle, tmp_path / "bundles" / "mine")
    by_user_path = edgert.load("~/$BUNDLES/mine", variant="fp32")
    by_bundle = edgert.load(Bundle.open(minilm_bundle), variant="fp32")
    for model in (by_name, by_user_path, by_bundle):
        np.testing.assert_array_equal(model.embed(["first contact"]), want)
