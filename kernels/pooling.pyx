# cython: language_level=3
"""Masked mean pooling and L2 normalisation; the loops run without the GIL. (CLS pooling is a slice copy: NumPy's is
as fast, so it has no compiled version.)

Each entry point checks the shapes it indexes by (bounds checking is compiled out): no input reaches memory
outside its arrays. Padded positions (mask 0) are never read, so a NaN there does not leak into the mean.
"""

import numpy as np
from libc.math cimport sqrt

ctypedef fused floating:
    float
    double


def mean_pool(const floating[:, :, ::1] hidden, const long long[:, ::1] mask):
    cdef Py_ssize_t B = hidden.shape[0], T = hidden.shape[1], D = hidden.shape[2]
    cdef Py_ssize_t b, t, d
    cdef floating count, inv
    if mask.shape[0] != B or mask.shape[1] != T:
        raise ValueError(f"mean_pool: mask shape ({mask.shape[0]}, {mask.shape[1]}) does not match hidden ({B}, {T})")
    dtype = np.float32 if floating is float else np.float64
    out = np.zeros((B, D), dtype=dtype)
    cdef floating[:, ::1] o = out
    with nogil:
        for b in range(B):
            count = 0
            for t in range(T):
                if mask[b, t] != 0:
                    count = count + 1
                    for d in range(D):
                        o[b, d] += hidden[b, t, d]
            if count < <floating>1e-9:
                count = <floating>1e-9
            inv = 1 / count
            for d in range(D):
                o[b, d] = o[b, d] * inv
    return out


def l2_normalize(const floating[:, ::1] x, double eps=1e-12):
    cdef Py_ssize_t B = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t b, d
    cdef double acc, v
    cdef floating inv
    dtype = np.float32 if floating is float else np.float64
    out = np.empty((B, D), dtype=dtype)
    cdef floating[:, ::1] o = out
    with nogil:
        for b in range(B):
            acc = 0.0
            for d in range(D):
                v = x[b, d]
                acc += v * v
            acc = sqrt(acc)
            if acc < eps:
                acc = eps
            inv = <floating>(1.0 / acc)
            for d in range(D):
                o[b, d] = x[b, d] * inv
    return out
