# cython: language_level=3
"""Softmax and top-k over class scores; the loops run without the GIL.

Each entry point checks the sizes it indexes by (bounds checking is compiled out), so k = 0 or an empty row
is an error, never a write outside the output.
"""

import numpy as np
from libc.math cimport exp, isnan

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    /* exp for float32 without a libm call (Cephes expf: range reduction by ln 2, degree-6 polynomial,
       about 1 ulp), so that gcc can vectorise the loop that calls it. Results below the normal range
       are flushed to 0; softmax only passes values <= 0. */
    static inline float edgert_expf(float x) {
        const float x0 = x;
        x = x < -87.33654f ? -87.33654f : x;
        x = x > 88.37626f ? 88.37626f : x;
        float y = x * 1.44269504088896341f + 0.5f;
        int32_t n = (int32_t)y;
        n -= (y < (float)n);  /* floor for negative y */
        float fn = (float)n;
        x = x - fn * 0.693359375f + fn * 2.12194440e-4f;
        float z = x * x;
        float p = 1.9875691500e-4f;
        p = p * x + 1.3981999507e-3f;
        p = p * x + 8.3334519073e-3f;
        p = p * x + 4.1665795894e-2f;
        p = p * x + 1.6666665459e-1f;
        p = p * x + 5.0000001201e-1f;
        p = p * z + x + 1.0f;
        int32_t bits = (n + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        p *= scale;
        return x0 < -87.33654f ? 0.0f : p;  /* below the normal range: flush to 0, as exp(-inf) must be */
    }
    /* One float32 row of softmax in vectorisable loops. Returns 0, touching nothing, when the row holds a NaN
       or an infinite maximum: the caller's libm path then gives the reference's NaN semantics. */
    static int edgert_softmax_row(const float *restrict x, float *restrict out, Py_ssize_t n) {
        float m = x[0];
        int bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            float v = x[i];
            m = v > m ? v : m;
            bad |= (v != v);
        }
        if (bad || m == INFINITY || m == -INFINITY) return 0;
        for (Py_ssize_t i = 0; i < n; i++) out[i] = edgert_expf(x[i] - m);
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        Py_ssize_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) s[k] += out[i + k];
        for (; i < n; i++) s[0] += out[i];
        float inv = 1.0f / (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
        for (Py_ssize_t j = 0; j < n; j++) out[j] *= inv;
        return 1;
    }
    """
    int edgert_softmax_row(const float* x, float* out, Py_ssize_t n) noexcept nogil


ctypedef fused floating:
    float
    double


def softmax(const floating[:, ::1] x):
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t b, c
    cdef floating m
    cdef floating total
    if C == 0:
        raise ValueError("softmax: no classes")
    dtype = np.float32 if floating is float else np.float64
    out = np.empty((B, C), dtype=dtype)
    cdef floating[:, ::1] o = out
    with nogil:
        for b in range(B):
            if floating is float:
                if edgert_softmax_row(<const float*>&x[b, 0], <float*>&o[b, 0], C):
                    continue
            m = x[b, 0]
            for c in range(1, C):
                if x[b, c] > m or isnan(x[b, c]):
                    m = x[b, c]
            total = 0
            for c in range(C):
                o[b, c] = <floating>exp(x[b, c] - m)
                total = total + o[b, c]
            for c in range(C):
                o[b, c] = o[b, c] / total
    return out


cdef inline bint _ahead(double a, double b) noexcept nogil:
    # a ranks before b: larger first, NaN last
    return not isnan(a) and (isnan(b) or a > b)


def top_k(const floating[:, ::1] x, Py_ssize_t k):
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t b, c, p, filled
    cdef double v
    if not 1 <= k <= C:
        raise ValueError(f"top_k: k must be between 1 and {C}, got {k}")
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
