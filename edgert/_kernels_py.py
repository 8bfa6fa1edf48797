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


def resample_horizontal(img: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One Pillow resampling pass along the width of a uint8 (H, W, C) image; tables from edgert._resample."""
    width_in = img.shape[1]
    acc = np.full((img.shape[0], len(bounds), img.shape[2]), 1 << 21, dtype=np.int64)
    for j in range(weights.shape[1]):
        idx = np.minimum(bounds[:, 0] + j, width_in - 1)  # taps past a window's count have weight 0
        acc += img[:, idx, :].astype(np.int64) * weights[:, j][None, :, None]
    return np.clip(acc >> 22, 0, 255).astype(np.uint8)


def resample_vertical(img: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The same pass along the height."""
    height_in = img.shape[0]
    acc = np.full((len(bounds), img.shape[1], img.shape[2]), 1 << 21, dtype=np.int64)
    for j in range(weights.shape[1]):
        idx = np.minimum(bounds[:, 0] + j, height_in - 1)
        acc += img[idx, :, :].astype(np.int64) * weights[:, j][:, None, None]
    return np.clip(acc >> 22, 0, 255).astype(np.uint8)


def to_chw(img: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    """out[c, y, x] = lut[c, img[y, x, c]]: uint8 HWC pixels to normalised float32 CHW through a per-channel table."""
    for c in range(img.shape[2]):
        out[c] = lut[c][img[:, :, c]]
