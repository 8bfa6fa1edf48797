"""An edgert bundle as an mteb model, so mteb users can score bundles with mteb's own tasks on data they have:

    import mteb
    from edgert.eval.encoder import MtebEncoder

    results = mteb.evaluate(MtebEncoder("./minilm-bundle", variant="int8"), tasks=[my_local_task])

``MtebEncoder`` follows mteb's ``EncoderProtocol`` (mteb 2): ``encode`` takes mteb's batches of inputs and
returns a NumPy array, ``similarity`` and ``similarity_pairwise`` are the cosine, and ``mteb_model_meta`` names the
bundle, its variant and the model file's sha256 as the revision. mteb is imported only where its types are needed;
edgert does not depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TaskError


class MtebEncoder:
    def __init__(self, bundle: str | Path, *, variant: str | None = None, batch_size: int = 32, **kw: Any):
        from ..api import load
        from ..bundle import Bundle

        self.bundle = Bundle.open(bundle)
        self.model: Any = load(self.bundle, variant=variant)
        if not hasattr(self.model, "embed"):
            raise TaskError(f"{self.bundle.path}: a {self.bundle.task} bundle is not a text encoder mteb can score")
        self.variant = self.model.variant
        self.batch_size = batch_size

    def encode(self, inputs: Iterable[dict[str, Any]], *, prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        """Vectors of every text in mteb's batches (each a mapping with a "text" list), in order. mteb's
        task_metadata, hf_split, hf_subset and prompt_type are accepted; edgert bundles have no prompts."""
        parts = []
        for batch in inputs:
            texts = batch.get("text") if isinstance(batch, dict) else None
            if texts is None:
                raise TaskError(f"mteb gave a batch without texts (keys {sorted(batch)}); edgert encodes text only")
            parts.append(self.model.embed(list(texts), batch_size=self.batch_size))
        return np.concatenate(parts) if parts else np.empty((0, self.model.dim), np.float32)

    @staticmethod
    def _unit(x: Any) -> np.ndarray:
        a = np.atleast_2d(np.asarray(x, dtype=np.float32))
        norms = np.linalg.norm(a, axis=1, keepdims=True)
        return np.asarray(a / np.maximum(norms, np.finfo(np.float32).tiny))

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine similarity of every pair across the two sets."""
        return np.asarray(self._unit(embeddings1) @ self._unit(embeddings2).T)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Cosine similarity of corresponding rows."""
        return np.asarray(np.einsum("ij,ij->i", self._unit(embeddings1), self._unit(embeddings2)))

    @property
    def mteb_model_meta(self) -> Any:
        from mteb.models.model_meta import ModelMeta

        entry = self.bundle.files[self.bundle.models[self.variant]]
        return ModelMeta.create_empty(
            {
                "name": f"edgert/{self.bundle.path.name}-{self.variant}",
                "revision": entry.sha256[:12],
                "embed_dim": self.model.dim,
                "similarity_fn_name": "cosine",
                "framework": ["ONNX"],
            }
        )
