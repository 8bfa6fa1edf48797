# cython: language_level=3
"""Packs tokenizer id lists into padded int64 arrays in one pass, without a Python-level loop per token.

The entry point checks every row's type and length itself: it is reachable from Python through
``edgert.kernels.implementations()``, and no input may make it write outside its arrays.
"""

import numpy as np


cdef list _rows(object lists, str what):
    if type(lists) is not list:
        raise TypeError(f"pack: {what} must be a list of lists of int, got {type(lists).__name__}")
    for i, row in enumerate(<list>lists):
        if type(row) is not list:
            raise TypeError(f"pack: {what}[{i}] must be a list of int, got {type(row).__name__}")
    return <list>lists


def pack(object id_lists, object type_lists, long long pad_id):
    cdef list ids = _rows(id_lists, "id_lists")
    cdef list types = None
    cdef Py_ssize_t batch = len(ids)
    cdef Py_ssize_t width = 0
    cdef Py_ssize_t i, j, n
    cdef list row
    if type_lists is not None:
        types = _rows(type_lists, "type_lists")
        if len(types) != batch:
            raise ValueError(f"pack: {len(types)} type rows for {batch} id rows")
        for i in range(batch):
            if len(<list>types[i]) != len(<list>ids[i]):
                raise ValueError("pack: type_lists must have the same lengths as id_lists")
    for i in range(batch):
        n = len(<list>ids[i])
        if n > width:
            width = n
    input_ids = np.full((batch, width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((batch, width), dtype=np.int64)
    cdef long long[:, ::1] ids_v = input_ids
    cdef long long[:, ::1] mask_v = attention_mask
    cdef long long[:, ::1] types_v
    for i in range(batch):
        row = <list>ids[i]
        # the length is read again: converting an item runs its __index__, which may change the list
        for j in range(min(len(row), width)):
            ids_v[i, j] = _token(row[j])
            mask_v[i, j] = 1
    if types is None:
        return input_ids, attention_mask, None
    token_type_ids = np.zeros((batch, width), dtype=np.int64)
    types_v = token_type_ids
    for i in range(batch):
        row = <list>types[i]
        for j in range(min(len(row), width)):
            types_v[i, j] = _token(row[j])
    return input_ids, attention_mask, token_type_ids


cdef inline long long _token(object x) except? -1:
    # integers only, as the NumPy reference takes them: a str or a float is a caller's bug, not a token
    if isinstance(x, (str, bytes, float)):
        raise TypeError(f"pack: token ids must be integers, got {type(x).__name__} {x!r}")
    return x
