# cython: language_level=3
"""Pillow-exact resampling passes over uint8 images, and uint8 HWC to normalised float32 CHW; no GIL in the loops.

The weight tables come from edgert._resample (fixed point, 22 fraction bits); see there for why they match Pillow.
Each entry point checks its tables against the image before the loops (bounds checking is compiled out): a window
past the edge, a count wider than the weights or a table of the wrong shape is an error, never a read outside the
image.
"""

import numpy as np
from libc.stdint cimport int32_t, uint8_t
from libc.stdlib cimport free, malloc

cdef enum:
    PRECISION_BITS = 22


cdef int _check_tables(Py_ssize_t size, const int32_t[:, ::1] bounds, const int32_t[:, ::1] weights) except -1:
    cdef Py_ssize_t i, taps = weights.shape[1]
    if bounds.shape[1] != 2 or weights.shape[0] != bounds.shape[0]:
        raise ValueError(
            f"resample: bounds must be (n, 2) and weights (n, k), got ({bounds.shape[0]}, {bounds.shape[1]}) "
            f"and ({weights.shape[0]}, {taps})"
        )
    for i in range(bounds.shape[0]):
        if bounds[i, 0] < 0 or bounds[i, 1] < 0 or bounds[i, 1] > taps or bounds[i, 0] + <Py_ssize_t>bounds[i, 1] > size:
            raise ValueError(
                f"resample: window {i} (first {bounds[i, 0]}, count {bounds[i, 1]}) does not fit an axis of {size} "
                f"with {taps} taps"
            )
    return 0


cdef inline uint8_t clip8(int32_t ss) noexcept nogil:
    ss = ss >> PRECISION_BITS
    if ss < 0:
        return 0
    if ss > 255:
        return 255
    return <uint8_t>ss


def resample_horizontal(const uint8_t[:, :, ::1] img, const int32_t[:, ::1] bounds, const int32_t[:, ::1] weights):
    cdef Py_ssize_t H = img.shape[0], C = img.shape[2], W = bounds.shape[0]
    cdef Py_ssize_t y, xx, x, c
    cdef int32_t xmin, n, w
    cdef int32_t acc[4]
    if C > 4:
        raise ValueError("resample: at most 4 channels")
    _check_tables(img.shape[1], bounds, weights)
    out = np.empty((H, W, C), dtype=np.uint8)
    cdef uint8_t[:, :, ::1] o = out
    with nogil:
        for y in range(H):
            for xx in range(W):
                xmin = bounds[xx, 0]
                n = bounds[xx, 1]
                for c in range(C):
                    acc[c] = 1 << (PRECISION_BITS - 1)
                for x in range(n):
                    w = weights[xx, x]
                    for c in range(C):
                        acc[c] += img[y, xmin + x, c] * w
                for c in range(C):
                    o[y, xx, c] = clip8(acc[c])
    return out


def resample_vertical(const uint8_t[:, :, ::1] img, const int32_t[:, ::1] bounds, const int32_t[:, ::1] weights):
    cdef Py_ssize_t W = img.shape[1], C = img.shape[2], H = bounds.shape[0]
    cdef Py_ssize_t row = W * C
    cdef Py_ssize_t yy, y, i
    cdef int32_t ymin, n, w
    cdef const uint8_t *src
    _check_tables(img.shape[0], bounds, weights)
    out = np.empty((H, W, C), dtype=np.uint8)
    cdef uint8_t[:, :, ::1] o = out
    cdef int32_t *acc = <int32_t *>malloc(max(row, 1) * sizeof(int32_t))
    if acc == NULL:
        raise MemoryError()
    try:
        with nogil:
            for yy in range(H):
                ymin = bounds[yy, 0]
                n = bounds[yy, 1]
                for i in range(row):
                    acc[i] = 1 << (PRECISION_BITS - 1)
                # whole rows at a time: a contiguous multiply-add that the compiler vectorises
                for y in range(n):
                    w = weights[yy, y]
                    src = &img[ymin + y, 0, 0]
                    for i in range(row):
                        acc[i] += src[i] * w
                for i in range(row):
                    (&o[yy, 0, 0])[i] = clip8(acc[i])
    finally:
        free(acc)
    return out


def to_chw(const uint8_t[:, :, :] img, const float[:, ::1] lut, float[:, :, ::1] out):
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1], C = img.shape[2]
    cdef Py_ssize_t c, y, x
    if lut.shape[0] != C or lut.shape[1] != 256:
        raise ValueError(f"to_chw: lut must have shape ({C}, 256), got ({lut.shape[0]}, {lut.shape[1]})")
    if out.shape[0] != C or out.shape[1] != H or out.shape[2] != W:
        raise ValueError(f"to_chw: out must have shape ({C}, {H}, {W}), got ({out.shape[0]}, {out.shape[1]}, {out.shape[2]})")
    with nogil:
        for c in range(C):
            for y in range(H):
                for x in range(W):
                    out[c, y, x] = lut[c, img[y, x, c]]
