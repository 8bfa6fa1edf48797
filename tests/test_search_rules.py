"""The search's rules that need no model run: which passing recipe it chooses, and the passage it times."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from edgert import quality
from edgert.export import search


def _row(name: str, ms: float, size: int) -> dict:
    return {"recipe": name, "latency_ms": ms, "size_bytes": size}


def test_the_fastest_wins_unless_a_smaller_one_is_within_noise_and_equal_sizes_go_to_the_faster():
    assert search.choose([]) is None
    assert search.choose([_row("a", 10.0, 5), _row("b", 7.0, 9)])["recipe"] == "b"  # 43% faster: speed wins
    # within 5% of the fastest, the smaller one
    assert search.choose([_row("a", 7.3, 5), _row("b", 7.0, 9)])["recipe"] == "a"
    # within 5% and of one size (per-token u8 x u8 and w7 store the same bytes): the faster, in either order
    rows = [_row("u8u8", 7.2, 24_447_826), _row("w7", 7.0, 24_447_826)]
    assert search.choose(rows)["recipe"] == "w7" and search.choose(rows[::-1])["recipe"] == "w7"
    # the edge of the margin is still a tie
    edge = 7.0 * (1 + search.NEAR_FASTEST)
    assert search.choose([_row("a", edge, 5), _row("b", 7.0, 9)])["recipe"] == "a"
    assert search.choose([_row("a", edge + 1e-6, 5), _row("b", 7.0, 9)])["recipe"] == "b"


def _text_model(minilm_dir: Path, max_length: int = 256) -> SimpleNamespace:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return SimpleNamespace(encoder=SimpleNamespace(tokenizer=tokenizer, max_length=max_length))


def test_the_timed_passage_is_the_validation_texts_joined_to_exactly_128_tokens(minilm_dir):
    model = _text_model(minilm_dir)
    texts = quality.builtin_texts("validation")
    passage = search._passage(model, texts)
    assert passage is not None and " ".join(texts).startswith(passage)
    ids = model.encoder.tokenizer.encode(passage).ids
    assert len(ids) == search.PASSAGE_TOKENS == 128
    # one more character would start the 127th word piece's successor: the cut is at a token's end
    longer = " ".join(texts)[: len(passage) + 2]
    assert len(model.encoder.tokenizer.encode(longer).ids) > 128
    # no passage where it cannot be had: a model that takes fewer tokens, too little text, or no text model
    assert search._passage(_text_model(minilm_dir, max_length=64), texts) is None
    assert search._passage(model, texts[:2]) is None
    assert search._passage(SimpleNamespace(), texts) is None
    assert search._passage(model, [b"\x00" * 8]) is None
