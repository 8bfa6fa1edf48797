"""NumPy reference kernels. The Cython kernels in kernels/*.pyx must give the same results.

Every function takes already-validated, C-contiguous arrays; edgert.kernels does the checking and casting.
"""

from __future__ import annotations

import numpy as np


def pack(
    id_lists: list[list[int]], type_lists: list[list[int]] | None, pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad token id lists to the longest one: input_ids, attention_mask, token_type_ids (int64)."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    width = int(lengths.max()) if len(id_lists) else 0
    valid = np.arange(width)[None, :] < lengths[:, None]
    input_ids = np.full((len(id_lists), width), pad_id, dtype=np.int64)
    total = int(lengths.sum())
    flat = np.fromiter((t for ids in id_lists for t in ids), dtype=np.int64, count=total)
    input_ids[valid] = flat
    token_type_ids = None
    if type_lists is not None:
        token_type_ids = np.zeros((len(id_lists), width), dtype=np.int64)
        token_type_ids[valid] = np.fromiter((t for ts in type_lists for t in ts), dtype=np.int64, count=total)
    return input_ids, valid.astype(np.int64), token_type_ids


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of hidden[b, t, :] over the positions where mask[b, t] != 0 (zero vector for an empty mask)."""
    m = (mask != 0).astype(hidden.dtype)
    summed = np.einsum("btd,bt->bd", hidden, m)
    counts = np.maximum(m.sum(axis=1, keepdims=True), hidden.dtype.type(1e-9))
    return summed / counts


def cls_pool(hidden: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hidden[:, 0, :])


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||, eps) per row, as torch.nn.functional.normalize does."""
    norms = np.sqrt(np.einsum("bd,bd->b", x, x, dtype=np.float64))
    return (x / np.maximum(norms, eps)[:, None]).astype(x.dtype, copy=False)


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def top_k(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest per row, largest first; ties go to the lower index, NaN ranks last."""
    order = np.argsort(-x, axis=1, kind="stable")[:, :k].astype(np.int64)
    return order, np.take_along_axis(x, order, axis=1)
