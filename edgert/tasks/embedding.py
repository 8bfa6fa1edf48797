"""Text embedding: tokenize, bucket by length, run, pool, normalise, restore the caller's order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import kernels
from ..bundle import MANIFEST, Bundle, setting
from ..errors import BundleError, TaskError
from ..session import SessionConfig
from .base import Task
from .text import TOKENS_HINT, TextEncoder, check_texts

POOLINGS = ("mean", "cls", "none")


class TextEmbedder(Task):
    """``embed(texts)`` returns float32 (n, dim), pooled and normalised as the bundle's manifest says."""

    tasks = ("sentence-embedding", "feature-extraction")
    input_kind = "text"
    import_task = "sentence-embedding"
    import_options = frozenset({"output", "tokenizer", "pooling", "normalize", "max_length"})
    bench_call = "embed"
    eval_kinds = ("retrieval", "similarity")

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        post = bundle.post
        where = f"{bundle.path / MANIFEST} post"
        self.output = setting(post, "output", str, self.output_names[0], where)
        self.pooling = setting(post, "pooling", str, "mean", where, choices=POOLINGS)
        self.normalize = setting(post, "normalize", bool, False, where)
        if self.output not in self.output_names:
            raise BundleError(f"{bundle.path}: model has no output {self.output!r} (has {self.output_names})")
        declared = setting(post, "dim", int, None, where, minimum=1)
        self.encoder = TextEncoder(bundle, self.input_names, self.resource, self._seq_limit())
        fixed = self.output_width(self.output) if self.pooling != "none" else None
        self.dim = fixed or int(self._run(["probe"]).shape[1])  # the model says what it gives; the manifest agrees
        if declared is not None and declared != self.dim:
            raise BundleError(f"{where}: dim is {declared}, but the model's {self.output} gives {self.dim} values")

    def embed(
        self,
        texts: Sequence[str] | str,
        *,
        batch_size: int = 32,
        max_tokens: int | None = None,
        norms: np.ndarray | None = None,
    ) -> np.ndarray:
        """Vectors of TEXTS, in order. ``max_tokens`` caps the padded tokens of one model call (texts x longest):
        onnxruntime keeps the buffers of the largest call it has run, so the cap bounds memory on long texts.
        ``norms`` (float32, one per text), when given, is filled with each vector's length before normalisation:
        what ``edgert.monitor`` watches for drift."""
        texts = check_texts(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if norms is not None and norms.shape != (len(texts),):
            raise TaskError(f"norms must have shape ({len(texts)},), got {norms.shape}")
        if texts:
            self._run(texts, batch_size=batch_size, out=out, max_tokens=max_tokens, norms=norms)
        return out

    __call__ = embed

    def _run(
        self,
        texts: list[str],
        *,
        batch_size: int = 32,
        out: np.ndarray | None = None,
        max_tokens: int | None = None,
        norms: np.ndarray | None = None,
    ) -> np.ndarray:
        encodings = self.encoder.encode(texts)
        for idx, feeds in self.encoder.batches(encodings, batch_size, max_tokens):
            (hidden,) = self.run_session([self.output], feeds, TOKENS_HINT)
            if self.pooling == "mean":
                pooled = kernels.mean_pool(hidden, feeds["attention_mask"])
            elif self.pooling == "cls":
                pooled = kernels.cls_pool(hidden)
            else:
                pooled = hidden
            if norms is not None:
                norms[idx] = np.linalg.norm(pooled.reshape(len(pooled), -1), axis=1)
            if self.normalize:
                pooled = kernels.l2_normalize(pooled)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        assert out is not None  # texts is not empty, so one batch ran
        return out
