"""What a graph's top level says about its outputs, read with edgert.protowire: which operator makes each one.

The importer uses it to tell probabilities from logits: a classifier whose output comes out of Softmax (through
ops that only move values, such as Reshape or Identity) already gives a distribution, and applying softmax
again would squash every score towards uniform.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from .errors import BundleError
from .protowire import Buffer, Malformed, messages

_MODEL_GRAPH, _GRAPH_NODE = 7, 1
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_DOMAIN = 1, 2, 4, 7

#: ops that pass values through unchanged (or only reshape or reorder them): looked through to the real producer
PASS_THROUGH = {"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Cast"}
PROBABILITY_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid", "LogSoftmax": "log-softmax"}


def _text(buf: Buffer, a: int, b: int) -> str:
    return bytes(buf[a:b]).decode("utf-8", "replace")


def producers(model: Path) -> dict[str, tuple[str, list[str]]]:
    """output name -> (op type, input names) of every top-level node of the model's graph."""
    out: dict[str, tuple[str, list[str]]] = {}
    try:
        with open(model, "rb") as f:
            if f.seek(0, 2) == 0:
                return out
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                for number, s, e in messages(buf, 0, len(buf)):
                    if number != _MODEL_GRAPH:
                        continue
                    for gn, a, b in messages(buf, s, e):
                        if gn != _GRAPH_NODE:
                            continue
                        op, domain, inputs, outputs = "", "", [], []
                        for nn, x, y in messages(buf, a, b):
                            if nn == _NODE_OP_TYPE:
                                op = _text(buf, x, y)
                            elif nn == _NODE_DOMAIN:
                                domain = _text(buf, x, y)
                            elif nn == _NODE_INPUT:
                                inputs.append(_text(buf, x, y))
                            elif nn == _NODE_OUTPUT:
                                outputs.append(_text(buf, x, y))
                        if domain in ("", "ai.onnx"):
                            for name in outputs:
                                out[name] = (op, inputs)
    except Malformed as exc:
        raise BundleError(f"{model}: not a valid ONNX model ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{model}: cannot read ({exc.strerror})") from None
    return out


def final_activation(model: Path, output: str) -> str | None:
    """ "softmax", "sigmoid" or "log-softmax" when the output comes out of that op, looking through ops that only
    move values; None otherwise (logits, or a producer edgert cannot see, such as a custom op)."""
    nodes = producers(model)
    name, seen = output, set()
    while name in nodes and name not in seen:
        seen.add(name)
        op, inputs = nodes[name]
        if op in PROBABILITY_OPS:
            return PROBABILITY_OPS[op]
        if op not in PASS_THROUGH or not inputs:
            return None
        name = inputs[0]
    return None
