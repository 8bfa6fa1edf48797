"""A text far longer than the model takes is cut before tokenizing, so its memory is bounded by max_length; the
tokens kept are exactly those of the whole text (the tokenizer on the uncut text is the oracle)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import edgert
from edgert.tasks import text

from .helpers import EMULATED

random.seed(0)
LONG = {
    "english": "The quick brown fox jumps over the lazy dog. " * 400,
    "cjk": "我喜欢在周末去公园散步。" * 2000,
    "one-long-word": "abcdefghij" * 3000,
    "emoji": "🚀🔥👍 " * 3000,
    "spaces-then-text": " " * 20000 + "hello world " * 10,  # characters that make no tokens: the cut doubles
    "mixed": "".join(random.choice(["word ", "日本 ", "🚀", "x" * 50 + " ", "\n"]) for _ in range(5000)),
}


@pytest.fixture(scope="module")
def embedder(minilm_bundle):
    return edgert.load(minilm_bundle, variant="fp32")


@pytest.mark.parametrize("name", list(LONG))
def test_the_cut_keeps_the_tokens_of_the_whole_text(embedder, name):
    t = LONG[name]
    enc = embedder.encoder
    assert len(t) > text.CHARS_PER_TOKEN * enc.max_length  # the cut path runs
    (got,) = enc.encode([t])
    assert got.ids == enc.tokenizer.encode(t).ids


def test_long_texts_embed_as_their_uncut_tokens_in_a_batch(embedder):
    long = list(LONG.values())[:2] if EMULATED else list(LONG.values())  # each model run costs 20-50x under qemu
    texts = long + ["short one", ""]
    got = embedder.embed(texts, batch_size=3)
    for t, v in zip(texts, got):
        ids = embedder.encoder.tokenizer.encode(t).ids
        feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), np.int64)}
        if "token_type_ids" in embedder.input_names:
            feeds["token_type_ids"] = np.zeros((1, len(ids)), np.int64)
        (hidden,) = embedder.session.run([embedder.output], feeds)
        want = hidden.mean(axis=1)[0]
        want /= np.linalg.norm(want) if embedder.normalize else 1
        np.testing.assert_allclose(v, want, atol=2e-5)


def test_text_past_the_hard_cap_reads_only_the_cap(embedder, monkeypatch):
    monkeypatch.setattr(text, "MAX_CHARS", 4096)
    t = " " * 10_000 + "hello"
    (got,) = embedder.encoder.encode([t])
    assert got.ids == embedder.encoder.tokenizer.encode(t[:4096]).ids  # documented: only the cap is tokenized
