# cython: language_level=3
"""Packs tokenizer id lists into padded int64 arrays in one pass, without a Python-level loop per token."""

import numpy as np


def pack(list id_lists, object type_lists, long long pad_id):
    cdef Py_ssize_t batch = len(id_lists)
    cdef Py_ssize_t width = 0
    cdef Py_ssize_t i, j, n
    cdef list row
    for i in range(batch):
        n = len(<list>id_lists[i])
        if n > width:
            width = n
    input_ids = np.full((batch, width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((batch, width), dtype=np.int64)
    cdef long long[:, ::1] ids_v = input_ids
    cdef long long[:, ::1] mask_v = attention_mask
    cdef long long[:, ::1] types_v
    for i in range(batch):
        row = <list>id_lists[i]
        n = len(row)
        for j in range(n):
            ids_v[i, j] = <long long>row[j]
            mask_v[i, j] = 1
    if type_lists is None:
        return input_ids, attention_mask, None
    token_type_ids = np.zeros((batch, width), dtype=np.int64)
    types_v = token_type_ids
    for i in range(batch):
        row = <list>type_lists[i]
        n = len(row)
        for j in range(n):
            types_v[i, j] = <long long>row[j]
    return input_ids, attention_mask, token_type_ids
