"""NumPy reference kernels. The Cython kernels in kernels/*.pyx must give the same results (tests/test_kernels.py and
tests/fuzz_kernels.py hold them to it).

edgert.kernels does the casting (dtype, C order). The checks that keep a compiled kernel inside its arrays (row
types, shapes, k, table windows) are made here too, with the same errors, so that both implementations refuse the
same inputs.
"""

from __future__ import annotations

import operator
from itertools import chain
from typing import cast

import numpy as np


def _rows(lists: object, what: str) -> list[list[int]]:
    if type(lists) is not list:
        raise TypeError(f"pack: {what} must be a list of lists of int, got {type(lists).__name__}")
    for i, row in enumerate(lists):
        if type(row) is not list:
            raise TypeError(f"pack: {what}[{i}] must be a list of int, got {type(row).__name__}")
    return lists


def _token(x: object) -> int:
    if isinstance(x, (str, bytes, float)):
        raise TypeError(f"pack: token ids must be integers, got {type(x).__name__} {x!r}")
    return operator.index(x)  # type: ignore[arg-type]  # any object: a non-integer raises TypeError


def pack(
    id_lists: list[list[int]], type_lists: list[list[int]] | None, pad_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad token id lists to the longest one: input_ids, attention_mask, token_type_ids (int64)."""
    _rows(id_lists, "id_lists")
    if type_lists is not None:
        _rows(type_lists, "type_lists")
        if len(type_lists) != len(id_lists):
            raise ValueError(f"pack: {len(type_lists)} type rows for {len(id_lists)} id rows")
        if any(len(t) != len(i) for t, i in zip(type_lists, id_lists)):
            raise ValueError("pack: type_lists must have the same lengths as id_lists")
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    width = int(lengths.max()) if len(id_lists) else 0
    valid = np.arange(width)[None, :] < lengths[:, None]
    input_ids = np.full((len(id_lists), width), pad_id, dtype=np.int64)
    total = int(lengths.sum())
    flat = np.fromiter(map(_token, chain.from_iterable(id_lists)), dtype=np.int64, count=total)
    input_ids[valid] = flat
    token_type_ids = None
    if type_lists is not None:
        token_type_ids = np.zeros((len(id_lists), width), dtype=np.int64)
        token_type_ids[valid] = np.fromiter(map(_token, chain.from_iterable(type_lists)), dtype=np.int64, count=total)
    return input_ids, valid.astype(np.int64), token_type_ids


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of hidden[b, t, :] over the positions where mask[b, t] != 0 (zero vector for an empty mask).

    Padded positions are never read: a NaN or inf there does not reach the mean (0 * NaN would)."""
    if mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"mean_pool: mask shape ({mask.shape[0]}, {mask.shape[1]}) does not match hidden "
            f"({hidden.shape[0]}, {hidden.shape[1]})"
        )
    keep = mask != 0
    m = keep.astype(hidden.dtype)
    summed = np.einsum("btd,bt->bd", np.where(keep[:, :, None], hidden, hidden.dtype.type(0)), m)
    counts = np.maximum(m.sum(axis=1, keepdims=True), hidden.dtype.type(1e-9))
    return cast(np.ndarray, summed / counts)


def cls_pool(hidden: np.ndarray) -> np.ndarray:
    if hidden.shape[1] == 0:
        raise ValueError("cls_pool: sequence length is 0")
    return np.ascontiguousarray(hidden[:, 0, :])


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||, eps) per row, as torch.nn.functional.normalize does."""
    norms = np.sqrt(np.einsum("bd,bd->b", x, x, dtype=np.float64))
    return cast(np.ndarray, (x / np.maximum(norms, eps)[:, None]).astype(x.dtype, copy=False))


def softmax(x: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        raise ValueError("softmax: no classes")
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return cast(np.ndarray, e / e.sum(axis=1, keepdims=True))


def top_k(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest per row, largest first; ties go to the lower index, NaN ranks last."""
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"top_k: k must be between 1 and {x.shape[1]}, got {k}")
    order = np.argsort(-x, axis=1, kind="stable")[:, :k].astype(np.int64)
    return order, np.take_along_axis(x, order, axis=1)


def check_tables(size: int, bounds: np.ndarray, weights: np.ndarray) -> None:
    """The windows of a resampling table fit an axis of ``size`` pixels and the weights' width."""
    taps = weights.shape[1]
    if bounds.shape[1] != 2 or weights.shape[0] != bounds.shape[0]:
        raise ValueError(
            f"resample: bounds must be (n, 2) and weights (n, k), got ({bounds.shape[0]}, {bounds.shape[1]}) "
            f"and ({weights.shape[0]}, {taps})"
        )
    first, count = bounds[:, 0].astype(np.int64), bounds[:, 1].astype(np.int64)
    bad = np.flatnonzero((first < 0) | (count < 0) | (count > taps) | (first + count > size))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"resample: window {i} (first {first[i]}, count {count[i]}) does not fit an axis of {size} with {taps} taps"
        )


def resample_horizontal(img: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One Pillow resampling pass along the width of a uint8 (H, W, C) image; tables from edgert.kernels.resample."""
    width_in = img.shape[1]
    if img.shape[2] > 4:
        raise ValueError("resample: at most 4 channels")
    check_tables(width_in, bounds, weights)
    acc = np.full((img.shape[0], len(bounds), img.shape[2]), 1 << 21, dtype=np.int64)
    for j in range(weights.shape[1]):
        idx = np.minimum(bounds[:, 0] + j, width_in - 1)
        w = np.where(j < bounds[:, 1], weights[:, j], 0)  # taps past a window's count are not read
        acc += img[:, idx, :].astype(np.int64) * w[None, :, None]
    return cast(np.ndarray, np.clip(acc >> 22, 0, 255).astype(np.uint8))


def resample_vertical(img: np.ndarray, bounds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The same pass along the height."""
    height_in = img.shape[0]
    check_tables(height_in, bounds, weights)
    acc = np.full((len(bounds), img.shape[1], img.shape[2]), 1 << 21, dtype=np.int64)
    for j in range(weights.shape[1]):
        idx = np.minimum(bounds[:, 0] + j, height_in - 1)
        w = np.where(j < bounds[:, 1], weights[:, j], 0)
        acc += img[idx, :, :].astype(np.int64) * w[:, None, None]
    return cast(np.ndarray, np.clip(acc >> 22, 0, 255).astype(np.uint8))


def to_chw(img: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    """out[c, y, x] = lut[c, img[y, x, c]]: uint8 HWC pixels to normalised float32 CHW through a per-channel table."""
    h, w, c = img.shape
    if lut.shape != (c, 256):
        raise ValueError(f"to_chw: lut must have shape ({c}, 256), got ({lut.shape[0]}, {lut.shape[1]})")
    if out.shape != (c, h, w):
        got = ", ".join(str(d) for d in out.shape)
        raise ValueError(f"to_chw: out must have shape ({c}, {h}, {w}), got ({got})")
    for c in range(img.shape[2]):
        out[c] = lut[c][img[:, :, c]]
