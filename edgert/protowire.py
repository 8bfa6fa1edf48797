"""Protocol-buffer wire format, read in place: just enough to walk an ONNX model without the ``onnx`` package.

The runtime does not depend on ``onnx``, yet edgert must read a few facts from a graph before it trusts it: the
external-data files onnxruntime will open (edgert.external_data) and which operator makes each output
(edgert.graph_facts). Fields are yielded as (number, wire type, value): a varint's value is an int, a
length-delimited field's a (start, end) pair into the buffer, so a 90 MB model costs one pass over its headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import Malformed

__all__ = ["Malformed", "fields", "messages", "packed_varints", "signed64", "varint"]

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

#: bytes, a memoryview or an mmap: anything indexable by position and slice
Buffer = Any


def varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of the message in ``buf[start:end]``."""
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = varint(buf, pos, end)
            yield number, wire, value
        elif wire in (FIXED64, FIXED32):
            pos += 8 if wire == FIXED64 else 4
        elif wire == LENGTH:
            length, pos = varint(buf, pos, end)
            if pos + length > end:
                raise Malformed("field runs past its message")
            yield number, wire, (pos, pos + length)
            pos += length
        else:
            raise Malformed(f"wire type {wire}")
    if pos != end:
        raise Malformed("message runs past its end")


def messages(buf: Buffer, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field: the sub-messages, strings and packed arrays."""
    for number, wire, value in fields(buf, start, end):
        if wire == LENGTH:
            a, b = value
            yield number, a, b


def packed_varints(buf: Buffer, start: int, end: int) -> list[int]:
    out, pos = [], start
    while pos < end:
        value, pos = varint(buf, pos, end)
        out.append(value)
    return out


def signed64(value: int) -> int:
    """An int64 field's varint as a signed number (negative values are encoded in two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value
