"""Per-token int8: every MatMul with a constant weight computes in integers, with standard ONNX operators only.

For each input tensor X that feeds such MatMuls (the Q, K and V projections share one: it is quantized once):

- optionally SmoothQuant (Xiao et al., 2023): X is divided channel by channel by
  ``s_j = max|x_j|^alpha / max|W_j|^(1 - alpha)`` (x from the calibration set, W over every weight X feeds) and each
  weight's row j is multiplied by s_j, offline: the product is unchanged in exact arithmetic, and the outliers of a
  few activation channels move into the weights, where per-column scales absorb them;
- X is quantized per row (one scale per token: ``max|x| over the row / 127``, symmetric, round half to even), then
  128 is added and it is cast to uint8, so that one scalar zero point of 128 serves every row;
- each weight is quantized per output column, symmetric, in 8 or 7 bits (``scale = max|w| / 127`` or ``/ 63``);
- ``MatMulInteger`` gives int32, which is cast to float and multiplied by the row scale and the column scale.

A row's quantization depends only on that row: the output does not depend on the batch, by construction.

Which integer types: onnxruntime's u8 x s8 kernel on x86 without VNNI (AVX2, AVX-512 without VNNI) multiplies with
``vpmaddubsw``, which saturates a pair of products at 32767: 255 x 127 x 2 does not fit, and the result is silently
wrong (measured on an AVX2 EPYC with onnxruntime 1.32: random 16x384x384 int8 products differ from NumPy's; u8 x u8
and s8 x s8 equal them). So the weights are either 8 bits stored as uint8
with a zero point of 128 (u8 x u8: exact on every CPU), or 7 bits as int8 (u8 x s8 with |w| <= 63: 255 x 63 x 2 fits,
exact on every CPU, and the fast kernel everywhere). s8 x s8 is exact but has no fast kernel on AVX2 (0.27x fp32).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError

#: a row of zeros still gets a finite scale (its integers are all 0 either way)
EPS = 1e-12
#: SmoothQuant's scales are kept within [1/LIMIT, LIMIT] and away from zero
LIMIT = 1e4


@dataclass(frozen=True)
class Group:
    """The MatMuls that read one activation tensor: quantized once, each with its own weight."""

    tensor: str
    matmuls: tuple[str, ...]  # node names
    weights: tuple[str, ...]  # initializer names


def groups(model: object, keep: Collection[str] = ()) -> list[Group]:
    """Every activation tensor read by MatMuls with a 2-D float constant weight, in graph order; the MatMuls
    named in KEEP stay float."""
    graph = model.graph  # type: ignore[attr-defined]
    inits = {i.name: i for i in graph.initializer}
    by_input: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.name in keep:
            continue
        w = inits[node.input[1]]
        if len(w.dims) == 2 and w.data_type == 1 and node.input[0] not in inits:
            by_input[node.input[0]].append((node.name, node.input[1]))
    return [Group(x, tuple(n for n, _ in ms), tuple(w for _, w in ms)) for x, ms in by_input.items()]


def channel_ranges(
    fp32: Path, tensors: list[str], feeds: Callable[[], Iterable[dict[str, np.ndarray]]]
) -> dict[str, np.ndarray]:
    """max |x_j| per channel (last axis) of each tensor over the calibration feeds, by onnxruntime on the fp32
    graph with those tensors added as outputs."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32))
    known = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 0
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ranges: dict[str, np.ndarray] = {}
    for feed in feeds():
        for name, value in zip(tensors, session.run(tensors, feed)):
            m = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            ranges[name] = m if name not in ranges else np.maximum(ranges[name], m)
    if len(ranges) != len(tensors):
        raise ExportError("per-token quantization: the calibration data produced no activations")
    return ranges


def smoothing(x_max: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """SmoothQuant's per-channel divisor of the activation (one per input channel of the weights)."""
    w_max = np.max(np.stack([np.abs(w).max(axis=1) for w in weights]), axis=0)
    x = np.maximum(x_max.astype(np.float64), 1e-5)
    w = np.maximum(w_max.astype(np.float64), 1e-5)
    s: np.ndarray = np.clip(x**alpha / w ** (1 - alpha), 1 / LIMIT, LIMIT).astype(np.float32)
    return s


def quantize_columns(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per output column in BITS (8 or 7): (int8 weights, float32 scale per column)."""
    top = 2 ** (bits - 1) - 1
    scale = (np.abs(w).max(axis=0) / top).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale), -top, top).astype(np.int8)
    return q, scale


def rewrite(
    model: object,
    ranges: dict[str, np.ndarray] | None = None,
    alpha: float | None = None,
    weight_bits: int = 8,
    keep: Collection[str] = (),
) -> int:
    """Replaces every weight MatMul of MODEL (in place) by the per-token integer form; with ALPHA, SmoothQuant
    from RANGES (channel_ranges). WEIGHT_BITS 8: u8 x u8; 7: u8 x s8 (see the module's note). Returns the number
    of MatMuls rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    if weight_bits not in (7, 8):
        raise ExportError(f"per-token quantization takes 7- or 8-bit weights, not {weight_bits}")

    graph = model.graph  # type: ignore[attr-defined]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)  # type: ignore[attr-defined]
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    done = 0
    consts = [
        numpy_helper.from_array(np.array(128, np.uint8), "pt_zero_u8"),
        numpy_helper.from_array(np.array(0, np.int8), "pt_zero_s8"),
        numpy_helper.from_array(np.array(128, np.uint8), "pt_zero_w8"),
        numpy_helper.from_array(np.array(127.0, np.float32), "pt_127"),
        numpy_helper.from_array(np.array(128.0, np.float32), "pt_128f"),
        numpy_helper.from_array(np.array(EPS, np.float32), "pt_eps"),
    ]
    if opset >= 18:
        consts.append(numpy_helper.from_array(np.array([-1], np.int64), "pt_last_axis"))
    graph.initializer.extend(consts)
    for k, group in enumerate(groups(model, keep)):
        p = f"pt{k}"
        weights = [numpy_helper.to_array(inits[w]).astype(np.float32) for w in group.weights]
        first = min(list(graph.node).index(nodes[n]) for n in group.matmuls)
        new = []
        x = group.tensor
        if alpha is not None:
            if ranges is None or group.tensor not in ranges:
                raise ExportError(f"per-token quantization: no calibration range for {group.tensor!r}")
            s = smoothing(ranges[group.tensor], weights, alpha)
            weights = [w * s[:, None] for w in weights]
            graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), f"{p}_smooth"))
            new.append(helper.make_node("Mul", [x, f"{p}_smooth"], [f"{p}_xs"], name=f"{p}_smooth"))
            x = f"{p}_xs"
        new.append(helper.make_node("Abs", [x], [f"{p}_abs"], name=f"{p}_abs"))
        if opset >= 18:
            new.append(helper.make_node("ReduceMax", [f"{p}_abs", "pt_last_axis"], [f"{p}_amax"], keepdims=1))
        else:
            new.append(helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_amax"], axes=[-1], keepdims=1))
        new += [
            helper.make_node("Max", [f"{p}_amax", "pt_eps"], [f"{p}_amax_e"]),
            helper.make_node("Div", [f"{p}_amax_e", "pt_127"], [f"{p}_scale"]),
            helper.make_node("Div", [x, f"{p}_scale"], [f"{p}_xd"]),
            helper.make_node("Round", [f"{p}_xd"], [f"{p}_xr"]),
            helper.make_node("Add", [f"{p}_xr", "pt_128f"], [f"{p}_xu"]),
            helper.make_node("Cast", [f"{p}_xu"], [f"{p}_q"], to=TensorProto.UINT8),
        ]
        for j, (name, w_name, w) in enumerate(zip(group.matmuls, group.weights, weights)):
            node = nodes[name]
            q, col = quantize_columns(w, weight_bits)
            stored, zero = (
                (q, "pt_zero_s8") if weight_bits == 7 else ((q.astype(np.int16) + 128).astype(np.uint8), "pt_zero_w8")
            )
            graph.initializer.extend(
                [numpy_helper.from_array(stored, f"{w_name}_q"), numpy_helper.from_array(col, f"{w_name}_colscale")]
            )
            y = f"{p}_{j}"
            new += [
                helper.make_node(
                    "MatMulInteger", [f"{p}_q", f"{w_name}_q", "pt_zero_u8", zero], [f"{y}_i"], name=f"{name}_int8",
                ),
                helper.make_node("Cast", [f"{y}_i"], [f"{y}_f"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{y}_f", f"{w_name}_colscale"], [f"{y}_c"]),
                helper.make_node("Mul", [f"{y}_c", f"{p}_scale"], list(node.output), name=f"{name}_rescale"),
            ]  # fmt: skip
            graph.node.remove(node)
            done += 1
        for i, n in enumerate(new):
            graph.node.insert(first + i, n)
    used = {i for n in graph.node for i in n.input}
    for name in [i.name for i in graph.initializer if i.name not in used]:  # the float weights now unused
        graph.initializer.remove(next(i for i in graph.initializer if i.name == name))
    return done


def reference(x: np.ndarray, w: np.ndarray, smooth: np.ndarray | None = None, weight_bits: int = 8) -> np.ndarray:
    """The same arithmetic in NumPy, for one MatMul: what tests hold the ONNX graph to."""
    x = x.astype(np.float32)
    if smooth is not None:
        x = x * (1.0 / smooth).astype(np.float32)
        w = w * smooth[:, None]
    scale = (np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(EPS)) / np.float32(127.0)).astype(np.float32)
    q = np.rint(x / scale).astype(np.int32)
    wq, col = quantize_columns(w.astype(np.float32), weight_bits)
    acc = np.matmul(q.astype(np.int64), wq.astype(np.int64)).astype(np.float32)
    out: np.ndarray = (acc * col * scale).astype(np.float32)
    return out
