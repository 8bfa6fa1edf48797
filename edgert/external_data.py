"""The external-data files an ONNX model makes onnxruntime read, found the way onnxruntime finds them.

onnxruntime reads a tensor's bytes from a file only when the tensor's ``data_location`` is EXTERNAL; it then opens
the ``location`` its ``external_data`` names, relative to the model's directory, at ``offset`` for ``length`` bytes
(the tensor's size when no length is given). Such tensors can stand in the graph's initializers and sparse
initializers, in tensor-valued node attributes (Constant), in subgraphs (If, Loop, Scan), in the nodes of local
functions and in a function's default attribute values. This walks exactly those fields with edgert.protowire, so
the runtime needs no ``onnx`` package and hashes every byte onnxruntime reads, no more and no less:

- a ``location`` on a tensor whose data is inline is ignored, as onnxruntime ignores it;
- a ``location`` that is not UTF-8 is refused (decoded with replacement characters, a decoy would be hashed while
  onnxruntime opened the raw name);
- nesting deeper than ``MAX_DEPTH`` subgraphs is refused rather than recursed into.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError
from .protowire import LENGTH, VARINT, Buffer, Malformed, fields, messages, packed_varints, signed64

MAX_DEPTH = 64

# field numbers from onnx.proto3
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_FUNCTION_NODE, _FUNCTION_ATTRIBUTE_PROTO = 7, 11
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 1, 2, 8, 13, 14
_EXTERNAL = 1
_ENTRY_KEY, _ENTRY_VALUE = 1, 2

#: bits per element of each TensorProto.DataType that can be stored externally
_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128, 16: 16}
_BITS.update({17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8})


@dataclass(frozen=True)
class ExternalRef:
    """One tensor's bytes in an external file: ``location`` relative to the model's directory, from ``offset``."""

    tensor: str
    location: str
    offset: int
    nbytes: int | None  # the ``length`` entry, else the size the tensor's type and dims give; None if unknown

    @property
    def end(self) -> int | None:
        return None if self.nbytes is None else self.offset + self.nbytes


class _Walk:
    def __init__(self, buf: Buffer, model: Path):
        self.buf, self.model = buf, model
        self.refs: list[ExternalRef] = []

    def tensor(self, start: int, end: int) -> None:
        external, name, dtype = False, "", None
        entries: list[tuple[int, int]] = []
        dims: list[int] = []
        for number, wire, value in fields(self.buf, start, end):
            if number == _TENSOR_DATA_LOCATION and wire == VARINT:
                external = value == _EXTERNAL
            elif number == _TENSOR_EXTERNAL_DATA and wire == LENGTH:
                entries.append(value)
            elif number == _TENSOR_DIMS:
                dims += [value] if wire == VARINT else packed_varints(self.buf, *value)
            elif number == _TENSOR_DATA_TYPE and wire == VARINT:
                dtype = value
            elif number == _TENSOR_NAME and wire == LENGTH:
                name = bytes(self.buf[value[0] : value[1]]).decode("utf-8", "replace")
        if not external:
            return  # inline data: onnxruntime never opens a location written beside it
        info: dict[bytes, bytes] = {}
        for a, b in entries:
            entry = {n: bytes(self.buf[s:e]) for n, s, e in messages(self.buf, a, b)}
            info[entry.get(_ENTRY_KEY, b"")] = entry.get(_ENTRY_VALUE, b"")
        raw = info.get(b"location")
        if not raw:
            raise BundleError(f"{self.model}: tensor {name!r} has external data but no location")
        try:
            location = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(
                f"{self.model}: tensor {name!r} has an external-data location that is not UTF-8 ({raw[:60]!r})"
            ) from None
        try:
            offset = int(info.get(b"offset", b"0") or 0)
            length = int(info[b"length"]) if info.get(b"length") else None
        except ValueError:
            raise BundleError(
                f"{self.model}: tensor {name!r} has a non-numeric external-data offset or length"
            ) from None
        if offset < 0 or (length is not None and length < 0):
            raise BundleError(f"{self.model}: tensor {name!r} has a negative external-data offset or length")
        if length is None and dtype in _BITS:
            count = 1
            for d in dims:
                count *= max(signed64(d), 0)
            length = (count * _BITS[dtype] + 7) // 8
        self.refs.append(ExternalRef(name, location, offset, length))

    def sparse(self, start: int, end: int) -> None:
        for number, s, e in messages(self.buf, start, end):
            if number in (_SPARSE_VALUES, _SPARSE_INDICES):
                self.tensor(s, e)

    def attribute(self, start: int, end: int, depth: int) -> None:
        for number, s, e in messages(self.buf, start, end):
            if number in (_ATTR_T, _ATTR_TENSORS):
                self.tensor(s, e)
            elif number in (_ATTR_G, _ATTR_GRAPHS):
                self.graph(s, e, depth + 1)
            elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
                self.sparse(s, e)

    def node(self, start: int, end: int, depth: int) -> None:
        for number, s, e in messages(self.buf, start, end):
            if number == _NODE_ATTRIBUTE:
                self.attribute(s, e, depth)

    def graph(self, start: int, end: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise BundleError(f"{self.model}: subgraphs nested deeper than {MAX_DEPTH}; refused")
        for number, s, e in messages(self.buf, start, end):
            if number == _GRAPH_INITIALIZER:
                self.tensor(s, e)
            elif number == _GRAPH_SPARSE:
                self.sparse(s, e)
            elif number == _GRAPH_NODE:
                self.node(s, e, depth)

    def model_proto(self) -> None:
        for number, s, e in messages(self.buf, 0, len(self.buf)):
            if number == _MODEL_GRAPH:
                self.graph(s, e, 0)
            elif number == _MODEL_FUNCTIONS:
                for fn, a, b in messages(self.buf, s, e):
                    if fn == _FUNCTION_NODE:
                        self.node(a, b, 1)
                    elif fn == _FUNCTION_ATTRIBUTE_PROTO:
                        self.attribute(a, b, 1)


def references(model: Path) -> list[ExternalRef]:
    """Every tensor whose bytes onnxruntime reads from an external file, in order of appearance."""
    try:
        with open(model, "rb") as f:
            if f.seek(0, 2) == 0:
                return []
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                walk = _Walk(buf, model)
                walk.model_proto()
                return walk.refs
    except Malformed as exc:
        raise BundleError(f"{model}: not a valid ONNX model ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{model}: cannot read ({exc.strerror})") from None


def locations(model: Path) -> list[str]:
    """Every external-data file onnxruntime reads for the model, in order of appearance, duplicates removed."""
    return list(dict.fromkeys(r.location for r in references(model)))


def needed_bytes(refs: list[ExternalRef]) -> dict[str, int | None]:
    """location -> the highest byte any tensor reads from it (None where a tensor's size is unknown)."""
    out: dict[str, int | None] = {}
    for r in refs:
        if r.location in out and out[r.location] is None:
            continue
        out[r.location] = None if r.end is None else max(out.get(r.location) or 0, r.end)
    return out
