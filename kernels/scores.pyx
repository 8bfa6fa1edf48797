# cython: language_level=3
"""Softmax and top-k over class scores; the loops run without the GIL."""

import numpy as np
from libc.math cimport exp, expf, isnan

ctypedef fused floating:
    float
    double


def softmax(const floating[:, ::1] x):
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t b, c
    cdef floating m
    cdef floating total, inv
    dtype = np.float32 if floating is float else np.float64
    out = np.empty((B, C), dtype=dtype)
    cdef floating[:, ::1] o = out
    with nogil:
        for b in range(B):
            m = x[b, 0]
            for c in range(1, C):
                if x[b, c] > m or isnan(x[b, c]):
                    m = x[b, c]
            total = 0
            for c in range(C):
                if floating is float:
                    o[b, c] = expf(x[b, c] - m)
                else:
                    o[b, c] = exp(x[b, c] - m)
                total = total + o[b, c]
            inv = 1 / total
            for c in range(C):
                o[b, c] = o[b, c] * inv
    return out


cdef inline bint _ahead(double a, double b) noexcept nogil:
    # a ranks before b: larger first, NaN last
    return not isnan(a) and (isnan(b) or a > b)


def top_k(const floating[:, ::1] x, Py_ssize_t k):
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t b, c, p, filled
    cdef double v
    dtype = np.float32 if floating is float else np.float64
    indices = np.empty((B, k), dtype=np.int64)
    values = np.empty((B, k), dtype=dtype)
    cdef long long[:, ::1] iv = indices
    cdef floating[:, ::1] vv = values
    with nogil:
        for b in range(B):
            filled = 0
            for c in range(C):
                v = x[b, c]
                if filled == k and not _ahead(v, vv[b, k - 1]):
                    continue
                # insertion point: after every entry that v does not rank ahead of (keeps ties stable)
                p = filled if filled < k else k - 1
                while p > 0 and _ahead(v, vv[b, p - 1]):
                    vv[b, p] = vv[b, p - 1]
                    iv[b, p] = iv[b, p - 1]
                    p -= 1
                vv[b, p] = <floating>v
                iv[b, p] = c
                if filled < k:
                    filled += 1
    return indices, values
