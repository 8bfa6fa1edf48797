"""Kernel selector: for each kernel, the compiled Cython version when it is built, else the NumPy reference.

``EDGERT_EXTENSIONS`` is a three-state switch, as in PyYAML's build: unset tries each compiled module and falls
back to the reference for any that does not import; ``1`` requires every compiled module (an import error
otherwise); ``0`` uses the reference everywhere. ``IMPLEMENTATIONS`` says, per kernel, which one is loaded, and
``IMPLEMENTATION`` sums it up ("cython", "numpy", or "mixed"). Both implementations take the same arguments,
return the same results and refuse the same inputs; the wrappers here check and cast inputs once.

Only kernels that beat NumPy on a real device are compiled (benchmarks/kernels.py measures them); ``cls_pool`` is a
slice copy, which NumPy does as fast, so it has only the reference.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import SimpleNamespace
from typing import cast

import numpy as np

from . import reference
from . import resample as _resample

#: kernel -> the compiled module (built from kernels/<module>.pyx into edgert.kernels._<module>) that holds it
COMPILED = {
    "pack": "packing",
    "mean_pool": "pooling",
    "l2_normalize": "pooling",
    "softmax": "scores",
    "top_k": "scores",
    "resample_horizontal": "image",
    "resample_vertical": "image",
    "to_chw": "image",
}
_NAMES = (*COMPILED, "cls_pool")


def _switch() -> str | None:
    value = os.environ.get("EDGERT_EXTENSIONS")
    if value in (None, ""):
        return None
    if value not in ("0", "1"):
        raise ImportError(f"EDGERT_EXTENSIONS must be 0 (NumPy only), 1 (compiled only) or unset, got {value!r}")
    return value


def _load_compiled() -> dict[str, object]:
    """Each compiled kernel that imports here, by kernel name."""
    switch = _switch()
    if switch == "0":
        return {}
    found: dict[str, object] = {}
    for module in sorted(set(COMPILED.values())):
        try:
            mod = importlib.import_module(f"{__name__}._{module}")
        except ImportError as exc:
            if switch == "1":
                raise ImportError(
                    f"EDGERT_EXTENSIONS=1 but the compiled kernel module {module} does not import ({exc}); "
                    "rebuild edgert with a C compiler, or unset EDGERT_EXTENSIONS to fall back to NumPy"
                ) from None
            continue
        for kernel, owner in COMPILED.items():
            if owner == module:
                found[kernel] = getattr(mod, kernel)
    return found


_REFERENCE = SimpleNamespace(**{name: getattr(reference, name) for name in _NAMES})
_FOUND = _load_compiled()
_SELECTED = SimpleNamespace(**{name: _FOUND.get(name, getattr(reference, name)) for name in _NAMES})

#: Per kernel, which implementation this process uses: "cython" or "numpy".
IMPLEMENTATIONS = {name: "cython" if name in _FOUND else "numpy" for name in _NAMES}
#: "cython" when every compiled kernel is loaded, "numpy" when none is, else "mixed".
IMPLEMENTATION = "cython" if len(_FOUND) == len(COMPILED) else "numpy" if not _FOUND else "mixed"


def implementations() -> dict[str, SimpleNamespace]:
    """Every implementation importable here, by name; tests run each kernel against all of them. "cython" holds
    the compiled kernels that loaded, and the reference for the others (cls_pool has no compiled version)."""
    found = {"numpy": _REFERENCE}
    if _FOUND:
        found["cython"] = SimpleNamespace(**{name: _FOUND.get(name, getattr(reference, name)) for name in _NAMES})
    return found


def _impl(name: str | None) -> SimpleNamespace:
    if name is None:
        return _SELECTED
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
    return cast(tuple[np.ndarray, np.ndarray, np.ndarray | None], _impl(impl).pack(ids, types, int(pad_id)))


def mean_pool(hidden: np.ndarray, mask: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    hidden = _float(hidden, 3, "mean_pool hidden")
    mask = np.ascontiguousarray(mask, dtype=np.int64)
    if mask.shape != hidden.shape[:2]:
        raise ValueError(f"mean_pool: mask shape {mask.shape} does not match hidden {hidden.shape[:2]}")
    return cast(np.ndarray, _impl(impl).mean_pool(hidden, mask))


def cls_pool(hidden: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    hidden = _float(hidden, 3, "cls_pool hidden")
    if hidden.shape[1] == 0:
        raise ValueError("cls_pool: sequence length is 0")
    return cast(np.ndarray, _impl(impl).cls_pool(hidden))


def l2_normalize(x: np.ndarray, eps: float = 1e-12, *, impl: str | None = None) -> np.ndarray:
    return cast(np.ndarray, _impl(impl).l2_normalize(_float(x, 2, "l2_normalize"), eps))


#: Rows longer than this go to NumPy's softmax when no implementation is asked for: NumPy's SIMD exp wins on long
#: rows in batches (0.74x for 32x1000 compiled against NumPy), the compiled loop on the short rows of most
#: classifiers (2.5x to 3x up to 10 classes). The choice depends on the row length only, never on the batch, so a
#: text's probabilities do not depend on its batch-mates.
SOFTMAX_COMPILED_MAX_CLASSES = 256


def softmax(x: np.ndarray, *, impl: str | None = None) -> np.ndarray:
    x = _float(x, 2, "softmax")
    if x.shape[1] == 0:
        raise ValueError("softmax: no classes")
    if impl is None and x.shape[1] > SOFTMAX_COMPILED_MAX_CLASSES:
        return reference.softmax(x)
    return cast(np.ndarray, _impl(impl).softmax(x))


def top_k(x: np.ndarray, k: int, *, impl: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = _float(x, 2, "top_k")
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"top_k: k must be between 1 and {x.shape[1]}, got {k}")
    return cast(tuple[np.ndarray, np.ndarray], _impl(impl).top_k(x, int(k)))


def _uint8_image(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"{what}: expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what}: expected an (H, W) or (H, W, C) image with 1 to 4 channels, got shape {image.shape}")
    return image


def resize(
    image: np.ndarray, height: int, width: int, resample: int = _resample.BILINEAR, *, impl: str | None = None
) -> np.ndarray:
    """Resizes a uint8 (H, W[, C]) image to (height, width, C) with Pillow's algorithm; the bytes equal
    ``Image.resize((width, height), resample)`` for modes L and RGB. Channels are filtered independently."""
    image = _uint8_image(image, "resize")
    resample = _resample.check_filter(resample)
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"resize: output size must be at least 1x1, got {height}x{width}")
    h, w = image.shape[:2]
    if resample == _resample.NEAREST:
        rows = _resample.nearest_index(h, height) if height != h else slice(None)
        cols = _resample.nearest_index(w, width) if width != w else slice(None)
        return np.ascontiguousarray(image[rows][:, cols])
    if (height, width) == (h, w):
        return cast(np.ndarray, image.copy())  # C order
    image = np.ascontiguousarray(image)
    kern = _impl(impl)
    passes = [
        (width != w, kern.resample_horizontal, (w, width)),
        (height != h, kern.resample_vertical, (h, height)),
    ]
    if _resample.vertical_first(h, w, height, width):
        passes.reverse()
    for needed, run, sizes in passes:
        if needed:
            image = run(image, *_resample.coefficients(*sizes, resample))
    return image


def to_chw(image: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None, *, impl: str | None = None) -> np.ndarray:
    """uint8 (H, W, C) pixels to float32 (C, H, W) through a per-channel table ``lut`` (C, 256): one lookup folds
    rescaling and mean/std normalisation. ``out`` may be a slot of a batch array; the input may be a strided view."""
    image = _uint8_image(image, "to_chw")
    lut = np.ascontiguousarray(lut, dtype=np.float32)
    h, w, c = image.shape
    if lut.shape != (c, 256):
        raise ValueError(f"to_chw: lut must have shape ({c}, 256), got {lut.shape}")
    if out is None:
        out = np.empty((c, h, w), dtype=np.float32)
    elif out.shape != (c, h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"to_chw: out must be a C-contiguous float32 array of shape {(c, h, w)}")
    _impl(impl).to_chw(image, lut, out)
    return out
