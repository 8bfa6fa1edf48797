"""Resampling tables that reproduce Pillow's ``Image.resize`` exactly, for both kernel implementations.

Pillow resizes 8-bit images in two separable passes (horizontal, then vertical). For each output pixel it weighs
a window of input pixels with a filter stretched by the scale factor (so downscaling antialiases), normalises the
weights, and rounds them to fixed point with 22 fraction bits; each pass rounds its result to uint8. The tables
here follow Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` (src/libImaging/Resample.c) operation by
operation in float64, so the kernels that apply them give Pillow's bytes, not merely close values.
NEAREST follows Pillow's ``ImagingScaleAffine``: positions accumulated in float64, truncated.

The filter ids are Pillow's (and transformers' ``PILImageResampling``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
NAMES = {
    NEAREST: "nearest",
    LANCZOS: "lanczos",
    BILINEAR: "bilinear",
    BICUBIC: "bicubic",
    BOX: "box",
    HAMMING: "hamming",
}
PRECISION_BITS = 22  # 32 - 8 - 2, as in Pillow

_sin: Any = np.frompyfunc(
    math.sin, 1, 1
)  # the C library's sin, as Pillow calls it (NumPy's SIMD sin may differ by an ulp)
_cos: Any = np.frompyfunc(math.cos, 1, 1)
_F054 = float(np.float32(0.54))  # Pillow writes 0.54f and 0.46f: float constants widened to double
_F046 = float(np.float32(0.46))


def _box(x: np.ndarray) -> np.ndarray:
    return np.where((x > -0.5) & (x <= 0.5), 1.0, 0.0)


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _sinc(x: np.ndarray) -> np.ndarray:
    px = x * math.pi
    safe = np.where(x == 0.0, 1.0, px)
    return np.where(x == 0.0, 1.0, _sin(safe).astype(np.float64) / safe)


def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.where((-3.0 <= x) & (x < 3.0), _sinc(x) * _sinc(x / 3), 0.0)


def _hamming(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    px = np.where(x == 0.0, 1.0, x * math.pi)
    v = _sin(px).astype(np.float64) / px * (_F054 + _F046 * _cos(px).astype(np.float64))
    return np.where(x == 0.0, 1.0, np.where(x >= 1.0, 0.0, v))


FILTERS = {
    BOX: (_box, 0.5),
    BILINEAR: (_bilinear, 1.0),
    HAMMING: (_hamming, 1.0),
    BICUBIC: (_bicubic, 2.0),
    LANCZOS: (_lanczos, 3.0),
}


def check_filter(resample: int) -> int:
    if resample not in NAMES:
        raise ValueError(f"resample filter {resample!r} is not one of {sorted(NAMES)} ({', '.join(NAMES.values())})")
    return int(resample)


@lru_cache(maxsize=128)
def coefficients(in_size: int, out_size: int, resample: int) -> tuple[np.ndarray, np.ndarray]:
    """(bounds, weights) for one axis: bounds int32 (out, 2) = first input pixel and count; weights int32 (out, k)
    in fixed point with PRECISION_BITS fraction bits, zero past each count. Read-only: they are cached."""
    fn, base_support = FILTERS[resample]
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    ss = 1.0 / filterscale
    # C's (int) cast truncates toward zero; the clamp at 0 makes that the same as Pillow's for negatives
    xmin = np.maximum(np.trunc(center - support + 0.5), 0.0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - xmin
    taps = np.arange(ksize)
    valid = taps[None, :] < xmax[:, None]
    w = fn(((taps[None, :] + xmin[:, None]).astype(np.float64) - center[:, None] + 0.5) * ss)
    w = np.where(valid, w, 0.0)
    ww = np.zeros(out_size)
    for j in range(ksize):  # summed in Pillow's order, not NumPy's pairwise order
        ww = ww + w[:, j]
    w = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    one = float(1 << PRECISION_BITS)
    fixed = np.where(w < 0, np.trunc(-0.5 + w * one), np.trunc(0.5 + w * one)).astype(np.int32)
    bounds = np.stack([xmin, xmax], axis=1).astype(np.int32)
    bounds.flags.writeable = False
    fixed.flags.writeable = False
    return bounds, fixed


@lru_cache(maxsize=1)
def pillow_major() -> int | None:
    """The installed Pillow's major version (None: not installed), read from its metadata without importing it."""
    from importlib import metadata

    try:
        return int(metadata.version("pillow").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def vertical_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
    width does (python-pillow/Pillow#9549; found to hold on every one of ~2,900 sizes where the order shows).
    The passes round to uint8 in between, so the order changes the bytes. Pillow 12 and older always go
    horizontal first (Pillow 13 needs Python 3.11; on 3.10 it is 12). edgert follows the Pillow that is
    installed, since transformers' preprocessing runs on that one, and Pillow 13's order when there is none."""
    major = pillow_major()
    if major is not None and major < 13:
        return False
    return out_h < in_h and (in_h - out_h) > 2 * (in_w - out_w)


@lru_cache(maxsize=128)
def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel for NEAREST, as Pillow's ImagingScaleAffine tabulates it."""
    step = float(in_size) / out_size
    steps = np.full(out_size, step)
    steps[0] = 0.0 + step * 0.5
    pos = np.add.accumulate(steps)  # sequential, like Pillow's xo += a[0]
    idx = np.clip(np.where(pos < 0.0, -1, np.trunc(pos)), 0, in_size - 1).astype(np.intp)
    idx.flags.writeable = False
    return idx
