"""Turning texts into padded model inputs: input checks, tokenizer set-up, length bucketing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from .. import kernels, safepath
from ..bundle import MANIFEST, Bundle, read_json, setting
from ..errors import BundleError, EdgertError, InputError
from .base import positive

MAX_TEXT_FILE = 1 << 30  # 1 GiB: a corpus to embed or calibrate on; /dev/zero or a FIFO is refused, not read


def read_lines(path: str | os.PathLike[str], *, error: type[EdgertError] = EdgertError, hint: str = "") -> list[str]:
    """Every line of a UTF-8 text file, without its line ending; a line that is not UTF-8 refuses the file, named
    with its line number. The one reader of text files (bench --input, check --file, export --calibration)."""
    path = Path(path).expanduser()
    data = safepath.read_bounded(path, MAX_TEXT_FILE, error=error, what="text file")
    lines = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise error(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start}){hint}") from None
    return lines


#: said with an onnxruntime failure on text: the usual cause is a max_length past the model's position table
TOKENS_HINT = "; if the model cannot take that many tokens, lower pre.max_length in edgert.json"
MAX_TOKENS = 1 << 16  # no text model edgert runs takes more; a larger max_length is a broken manifest
CHARS_PER_TOKEN = 16  # a text is cut at 16 characters per token of max_length before tokenizing (then checked)
CUT_MARGIN = 256  # characters between the last token kept and the cut: no word in a vocabulary is that long
MAX_CHARS = 1 << 21  # at most 2 Mi characters of one text are ever tokenized


def _positions(bundle: Bundle, opener: Callable[[str], Path]) -> int | None:
    """max_position_embeddings from the bundle's config.json (an exported Hugging Face model), if it lists one."""
    if "config.json" not in bundle.files:
        return None
    try:
        value = read_json(opener("config.json"), error=BundleError, what="config").get("max_position_embeddings")
    except (BundleError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """A list of str, or TypeError naming the first bad item's index."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be str or a sequence of str, got bytes; decode it first")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    return out


def _check_unicode(texts: list[str]) -> None:
    for i, t in enumerate(texts):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"texts[{i}] is not valid Unicode: a lone surrogate U+{ord(t[exc.start]):04X} at position "
                f"{exc.start} (text decoded with errors='surrogateescape'? decode it with errors='replace')"
            ) from None


class TextEncoder:
    """The bundle's tokenizer with padding off (edgert pads per batch) and truncation at the model's max length.

    The packaged tokenizer.json of all-MiniLM-L6-v2 pads to a fixed 128; used as shipped, a 12-token sentence
    would cost the work of 128 tokens.
    """

    def __init__(
        self,
        bundle: Bundle,
        input_names: Sequence[str],
        resource: Callable[[str], Path] | None = None,
        seq_limit: int | None = None,
    ):
        pre = bundle.pre
        where = f"{bundle.path / MANIFEST} pre"
        name = setting(pre, "tokenizer", str, "tokenizer.json", where)
        opener = resource or bundle.file
        try:
            self.tokenizer = Tokenizer.from_file(str(opener(name)))
        except BundleError:
            raise
        except Exception as exc:
            raise BundleError(f"{bundle.path / name}: cannot read tokenizer ({exc})") from None
        self.max_length = setting(pre, "max_length", int, 512, where, minimum=2)
        self.pad_id = setting(pre, "pad_id", int, 0, where, minimum=0)
        vocab = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if self.pad_id >= vocab:
            raise BundleError(f"{where}: pad_id {self.pad_id} is not a token id (the vocabulary has {vocab})")
        limit = min([MAX_TOKENS, *[n for n in (seq_limit, _positions(bundle, opener)) if n]])
        if self.max_length > limit:
            raise BundleError(
                f"{where}: max_length {self.max_length} is more than the model takes ({limit} tokens); lower it"
            )
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.wants_token_types = "token_type_ids" in input_names

    def encode(self, texts: list[str]) -> list[Encoding]:
        """Token ids of each text, truncated at max_length. A text longer than ``CHARS_PER_TOKEN * max_length``
        characters is cut before tokenizing, so any text costs memory in proportion to max_length (a 50 MB line
        took 6.8 GB): the cut is kept only where the tokens it keeps end at least ``CUT_MARGIN`` characters
        before it, so they are the tokens of the whole text; elsewhere (long runs of characters that make no
        tokens) the cut doubles, up to ``MAX_CHARS``."""
        window = CHARS_PER_TOKEN * self.max_length
        try:
            if all(len(t) <= window for t in texts):
                if len(texts) == 1:
                    return [self.tokenizer.encode(texts[0])]
                return list(self.tokenizer.encode_batch(texts))
            return [self._encode_long(t, window) if len(t) > window else self.tokenizer.encode(t) for t in texts]
        except Exception:
            _check_unicode(texts)  # the tokenizer's own message does not say which text or why
            raise

    def _encode_long(self, text: str, window: int) -> Encoding:
        while True:
            cut = min(window, MAX_CHARS)
            enc = self.tokenizer.encode(text[:cut])
            if cut >= len(text) or cut == MAX_CHARS:
                return enc
            kept = [end for (_, end), special in zip(enc.offsets, enc.special_tokens_mask) if not special]
            if len(enc.ids) >= self.max_length and kept and kept[-1] <= cut - CUT_MARGIN:
                return enc
            window *= 2

    def batches(
        self, encodings: list[Encoding], batch_size: int, max_tokens: int | None = None
    ) -> Iterator[tuple[np.ndarray | slice, dict[str, np.ndarray]]]:
        """Yields (original indices, feeds) for batches of similar length: sorting by length keeps padding small.

        Texts that fit in one batch are padded to their longest whatever their order, so they skip the sort.
        ``max_tokens`` caps a batch's padded size (texts x longest), and with it the activation memory of one
        call: long texts go in smaller batches, a text longer than the cap alone.
        """
        batch_size = positive(batch_size)
        if max_tokens is not None:
            positive(max_tokens, "max_tokens")
        if len(encodings) <= batch_size and (
            max_tokens is None or len(encodings) * max((len(e) for e in encodings), default=0) <= max_tokens
        ):
            yield slice(None), self._feeds(encodings)
            return
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            end = min(start + batch_size, len(order))
            # ascending lengths: the batch's longest is its last
            while (
                max_tokens is not None and end - start > 1 and (end - start) * int(lengths[order[end - 1]]) > max_tokens
            ):
                end -= 1
            idx = order[start:end]
            yield idx, self._feeds([encodings[i] for i in idx])
            start = end

    def _feeds(self, chosen: list[Encoding]) -> dict[str, np.ndarray]:
        ids, mask, types = kernels.pack(
            [e.ids for e in chosen],
            [e.type_ids for e in chosen] if self.wants_token_types else None,
            self.pad_id,
        )
        feeds = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            feeds["token_type_ids"] = types
        return feeds
