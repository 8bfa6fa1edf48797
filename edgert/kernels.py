"""Kernel selector: the compiled Cython kernels when they are built, else the NumPy reference.

``IMPLEMENTATION`` says which one is loaded ("cython" or "numpy"). ``EDGERT_NO_EXTENSIONS=1`` forces NumPy.
Both implementations take the same arguments and return the same results; the wrappers here check and cast
the inputs once so that neither implementation has to.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

from . import _kernels_py

_NAMES = ("pack", "mean_pool", "cls_pool", "l2_normalize", "softmax", "top_k")


def _load_compiled() -> SimpleNamespace | None:
    if os.environ.get("EDGERT_NO_EXTENSIONS") == "1":
        return None
    try:
        from ._kernels import packing, pooling, scores
    except ImportError:
        return None
    return SimpleNamespace(
        pack=packing.pack,
        mean_pool=pooling.mean_pool,
        cls_pool=pooling.cls_pool,
        l2_normalize=pooling.l2_normalize,
        softmax=scores.softmax,
        top_k=scores.top_k,
    )


_REFERENCE = SimpleNamespace(**{name: getattr(_kernels_py, name) for name in _NAMES})
_COMPILED = _load_compiled()

#: Which kernels this process uses: "cython" or "numpy".
IMPLEMENTATION = "cython" if _COMPILED is not None else "numpy"


def implementations() -> dict[str, SimpleNamespace]:
    """Every implementation importable here, by name; tests run each kernel against all of them."""
    found = {"numpy": _REFERENCE}
    if _COMPILED is not None:
        found["cython"] = _COMPILED
    return found


def _impl(name: str | None) -> SimpleNamespace:
    if name is None:
        return _COMPILED if _COMPILED is not None else _REFERENCE
    try:
        return implementations()[name]
    except KeyError:
        raise ValueError(f"kernel implementation {name!r} is not available here") from None


def _float(x: np.ndarray, ndim: int, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{what}: expected {ndim} dimensions, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def pack(
    id_lists: Sequence[Sequence[int]],
    type_lists: Sequence[Sequence[int]] | None = None,
    pad_id: int = 0,
    *,
    impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pads id lists to the longest: (input_ids, attention_mask, token_type_ids or None), all int64."""
    ids = [x if isinstance(x, list) else list(x) for x in id_lists]
    types = None if type_lists is None else [x if isinstance(x, list) else list(x) for x in type_lists]
    if types is not None and [len(t) for t in types] != [len(i) for i in ids]:
        raise ValueError("pack: type_lists must have the same lengths as id_lists")
    return _impl(impl).pack(ids, types, int(pad_id))


def mean_pool(hidden: np.ndarray, mask: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    hidden = _float(hidden, 3, "mean_pool hidden")
    mask = np.ascontiguousarray(mask, dtype=np.int64)
    if mask.shape != hidden.shape[:2]:
        raise ValueError(f"mean_pool: mask shape {mask.shape} does not match hidden {hidden.shape[:2]}")
    return _impl(impl).mean_pool(hidden, mask)


def cls_pool(hidden: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    hidden = _float(hidden, 3, "cls_pool hidden")
    if hidden.shape[1] == 0:
        raise ValueError("cls_pool: sequence length is 0")
    return _impl(impl).cls_pool(hidden)


def l2_normalize(x: np.ndarray, eps: float = 1e-12, *, impl: str | None = None) -> np.ndarray:
    return _impl(impl).l2_normalize(_float(x, 2, "l2_normalize"), eps)


def softmax(x: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    x = _float(x, 2, "softmax")
    if x.shape[1] == 0:
        raise ValueError("softmax: no classes")
    return _impl(impl).softmax(x)


def top_k(x: np.ndarray, k: int, *, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = _float(x, 2, "top_k")
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"top_k: k must be between 1 and {x.shape[1]}, got {k}")
    return _impl(impl).top_k(x, int(k))
