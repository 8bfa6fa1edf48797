"""Text classification: logits to probabilities (softmax, or sigmoid for multi-label) and the top k labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import kernels
from ..bundle import MANIFEST, Bundle, setting
from ..errors import BundleError, TaskError
from ..session import SessionConfig
from .base import Task, positive
from .text import TOKENS_HINT, TextEncoder, check_texts


class Prediction(NamedTuple):
    label: str
    score: float


def probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Sigmoid per label for multi-label models, else softmax over the labels."""
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))
    return kernels.softmax(logits)


def top_predictions(probs: np.ndarray, labels: list[str], top_k: int) -> list[list[Prediction]]:
    k = positive(top_k, "top_k")
    if len(probs) == 0:
        return []
    k = min(k, probs.shape[1])  # more than there are labels: all of them
    indices, values = kernels.top_k(probs, k)
    return [
        [Prediction(labels[int(i)], float(v)) for i, v in zip(row_i, row_v)] for row_i, row_v in zip(indices, values)
    ]


class Classifier(Task):
    """What text and image classification share: the logits output, the labels, and softmax or sigmoid."""

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        post = bundle.post
        where = f"{bundle.path / MANIFEST} post"
        self.output = setting(post, "output", str, "logits", where)
        if self.output not in self.output_names:
            raise BundleError(f"{bundle.path}: model has no output {self.output!r} (has {self.output_names})")
        problem = setting(post, "problem_type", str, None, where)
        self.multi_label = problem == "multi_label_classification"
        #: "probabilities" for a model whose output is already a distribution: softmax is not applied again
        self.output_kind = setting(post, "output_kind", str, "logits", where, choices=("logits", "probabilities"))
        labels = list(setting(post, "labels", list, [], where, items=str))
        width = self.output_width(self.output)
        if labels and width is not None and len(labels) != width:
            raise BundleError(
                f"{where}: labels has {len(labels)} entries, but the model's {self.output} has {width} classes"
            )
        if not labels:
            shape = next(o.shape for o in self.session.get_outputs() if o.name == self.output)
            width = shape[-1] if shape and isinstance(shape[-1], int) and shape[-1] > 0 else None
            if width is None:
                raise BundleError(f"{bundle.path}: no labels in the manifest and the output {self.output} is {shape}")
            labels = [f"LABEL_{i}" for i in range(width)]
        self.labels: list[str] = labels

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        if logits.ndim != 2 or logits.shape[1] != len(self.labels):  # a dynamic output checked at run time
            raise TaskError(
                f"{self.bundle.path}: the model gave {list(logits.shape)} scores for {len(self.labels)} labels; "
                "post.labels in edgert.json does not fit this model"
            )
        if self.output_kind == "probabilities":
            return np.asarray(logits, dtype=np.float32)
        return probabilities(logits, self.multi_label)


class TextClassifier(Classifier):
    """``classify(texts, top_k=1)`` returns, per text, the top_k (label, score) pairs, best first."""

    tasks = ("text-classification",)
    input_kind = "text"
    import_task = "text-classification"
    import_options = frozenset({"labels", "output", "output_kind", "tokenizer", "max_length"})
    labelled = True
    bench_call = "scores"
    eval_kinds = ("classification",)

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        self.encoder = TextEncoder(bundle, self.input_names, self.resource, self._seq_limit())

    def scores(self, texts: Sequence[str] | str, *, batch_size: int = 32) -> np.ndarray:
        """Probabilities, float32 (n, num_labels)."""
        texts = check_texts(texts)
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        encodings = self.encoder.encode(texts)
        for idx, feeds in self.encoder.batches(encodings, batch_size):
            (logits,) = self.run_session([self.output], feeds, TOKENS_HINT)
            out[idx] = self.probabilities(logits)
        return out

    def classify(self, texts: Sequence[str] | str, *, top_k: int = 1, batch_size: int = 32) -> list[list[Prediction]]:
        return top_predictions(self.scores(texts, batch_size=batch_size), self.labels, top_k)

    __call__ = classify
