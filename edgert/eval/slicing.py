"""The built-in slices an evaluation is cut into, so that a model whose average is fine and whose rare inputs are
not shows it at a glance: for text, its length in words, its writing system and its share of words the tokenizer
does not know whole; for images, their size and shape.

Each function gives one key per item; ``score.slices`` reports the headline metric per key. The writing system is
the Unicode script of most of a text's letters (Python's ``unicodedata`` names it): a proxy for the language that
needs no language model, and the one that matters to a tokenizer.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: built-in length slices, in words (whitespace-separated): upper bounds, the last open
WORD_BUCKETS = (3, 7, 15)
#: out-of-vocabulary share slices: upper bounds of the share of words split into pieces or unknown
OOV_BUCKETS = (0.0, 0.2, 0.5)
#: image size slices: upper bounds of the longer side, in pixels
SIDE_BUCKETS = (64, 256, 1024)
#: an image within this ratio of 1 (width / height) is square
SQUARE = 1.1
#: names Unicode gives letters of one script under several first words
_SAME_SCRIPT = {"CJK": "Han", "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana", "HANGUL": "Hangul"}


def length_bucket(text: str) -> str:
    words = len(text.split())
    low = 1
    for high in WORD_BUCKETS:
        if words <= high:
            return f"{low}-{high} words" if words else "empty"
        low = high + 1
    return f"{low}+ words"


def script(text: str) -> str:
    """The script of most of TEXT's letters ("Latin", "Cyrillic", "Han", ...); "no letters" for digits and
    punctuation only."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            first = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
            counts[_SAME_SCRIPT.get(first, first.title())] += 1
    return counts.most_common(1)[0][0] if counts else "no letters"


def oov_shares(tokenizer: Any, texts: Sequence[str]) -> list[float]:
    """Per text, the share of its words that the tokenizer does not have whole: a word it splits into pieces, or
    maps to its unknown token. Words are the tokenizer's own pre-tokenized words (its ``word_ids``)."""
    unk = _unknown_id(tokenizer)
    shares = []
    for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        pieces: Counter[int] = Counter()
        unknown: set[int] = set()
        for word, token in zip(enc.word_ids, enc.ids):
            if word is None:
                continue
            pieces[word] += 1
            if token == unk:
                unknown.add(word)
        split = sum(1 for w, n in pieces.items() if n > 1 or w in unknown)
        shares.append(split / len(pieces) if pieces else 0.0)
    return shares


def _unknown_id(tokenizer: Any) -> int | None:
    model = tokenizer.model
    token = getattr(model, "unk_token", None)
    return tokenizer.token_to_id(token) if isinstance(token, str) else None


def oov_bucket(share: float) -> str:
    if share <= OOV_BUCKETS[0]:
        return "no split words"
    low = 0.0
    for high in OOV_BUCKETS[1:]:
        if share <= high:
            return f"{low:.0%}-{high:.0%} split words"
        low = high
    return f"over {low:.0%} split words"


def image_shape(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the image's header, or None where Pillow cannot read it (the item is then scored, or
    counted as unreadable, by the model's own decoding)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception:  # noqa: BLE001 - any unreadable file: the slice is "unreadable", scoring says why
        return None


def side_bucket(shape: tuple[int, int] | None) -> str:
    if shape is None:
        return "unreadable"
    side = max(shape)
    low = 1
    for high in SIDE_BUCKETS:
        if side <= high:
            return f"{low}-{high} px"
        low = high + 1
    return f"{low}+ px"


def aspect_bucket(shape: tuple[int, int] | None) -> str:
    if shape is None:
        return "unreadable"
    ratio = shape[0] / max(shape[1], 1)
    if ratio > SQUARE:
        return "landscape"
    return "portrait" if ratio < 1 / SQUARE else "square"
