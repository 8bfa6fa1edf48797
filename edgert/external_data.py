"""The external-data files an ONNX model makes onnxruntime read, found by walking its protobuf.

onnxruntime opens every ``location`` that a tensor's ``external_data`` names, relative to the model's directory.
To hash every byte that it reads, edgert must know those files without the ``onnx`` package (the runtime does
not depend on it), so this walks the few message fields that can hold a tensor: the graph's initializers and
sparse initializers, tensor-valued node attributes, and subgraphs (If, Loop, Scan) and functions, recursively.
Everything else is skipped by its length, so a 90 MB single-file model costs one pass over its field headers.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from .errors import BundleError

# field numbers from onnx.proto3
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_FUNCTION_NODE = 7
_TENSOR_EXTERNAL_DATA = 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


class _Malformed(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, start, end) of each length-delimited field of a message; other wire types are skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Malformed("field runs past its message")
            yield number, pos, pos + length
            pos += length
        else:
            raise _Malformed(f"wire type {wire}")
    if pos != end:
        raise _Malformed("message runs past its end")


def _tensor(buf, start: int, end: int, out: list[str]) -> None:
    for number, s, e in _fields(buf, start, end):
        if number == _TENSOR_EXTERNAL_DATA:
            entry = {n: bytes(buf[a:b]) for n, a, b in _fields(buf, s, e)}
            if entry.get(_ENTRY_KEY) == b"location":
                out.append(entry.get(_ENTRY_VALUE, b"").decode("utf-8", "replace"))


def _sparse(buf, start: int, end: int, out: list[str]) -> None:
    for number, s, e in _fields(buf, start, end):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES):
            _tensor(buf, s, e, out)


def _node(buf, start: int, end: int, out: list[str]) -> None:
    for number, s, e in _fields(buf, start, end):
        if number != _NODE_ATTRIBUTE:
            continue
        for an, a, b in _fields(buf, s, e):
            if an in (_ATTR_T, _ATTR_TENSORS):
                _tensor(buf, a, b, out)
            elif an in (_ATTR_G, _ATTR_GRAPHS):
                _graph(buf, a, b, out)
            elif an in (_ATTR_SPARSE, _ATTR_SPARSES):
                _sparse(buf, a, b, out)


def _graph(buf, start: int, end: int, out: list[str]) -> None:
    for number, s, e in _fields(buf, start, end):
        if number == _GRAPH_INITIALIZER:
            _tensor(buf, s, e, out)
        elif number == _GRAPH_SPARSE:
            _sparse(buf, s, e, out)
        elif number == _GRAPH_NODE:
            _node(buf, s, e, out)


def locations(model: Path) -> list[str]:
    """Every external-data ``location`` in the model, in order of appearance, duplicates removed."""
    out: list[str] = []
    try:
        with open(model, "rb") as f:
            if f.seek(0, 2) == 0:
                return []
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                for number, s, e in _fields(buf, 0, len(buf)):
                    if number == _MODEL_GRAPH:
                        _graph(buf, s, e, out)
                    elif number == _MODEL_FUNCTIONS:
                        for fn, a, b in _fields(buf, s, e):
                            if fn == _FUNCTION_NODE:
                                _node(buf, a, b, out)
    except _Malformed as exc:
        raise BundleError(f"{model}: not a valid ONNX model ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{model}: cannot read ({exc.strerror})") from None
    return list(dict.fromkeys(out))
