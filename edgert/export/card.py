"""Model-card figures read off an ONNX file: parameters, MACs at a reference shape, opset, quantisation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..session import ORT_DTYPES, SessionConfig, create_session

#: The graph as written: no optimisation, no cache (the card describes the exported model, not a rewrite of it).
_AS_IS = SessionConfig(graph_optimization="disable", cache_optimized=False)

_MAC_OPS = (
    "MatMul",
    "Gemm",
    "Conv",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "ConvInteger",
    "QLinearMatMul",
    "QLinearConv",
)
_QUANT_OPS = (
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "ConvInteger",
    "QLinearMatMul",
    "QLinearConv",
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeMatMul",
    "MatMulNBits",
    "GatherBlockQuantized",
)


def parameter_count(model: onnx.ModelProto) -> int:
    """Elements of the weight initializers (float or quantised integer), skipping scalars such as scales."""
    total = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        if n > 1 and init.data_type != onnx.TensorProto.INT64:
            total += n
    return total


def _dummy(dtype: str, shape: list[int], name: str) -> np.ndarray:
    np_type = ORT_DTYPES.get(dtype, np.float32)
    if np.issubdtype(np_type, np.integer):
        # ones: valid token ids and a full attention mask
        return np.ones(shape, dtype=np_type)
    return np.random.default_rng(0).standard_normal(shape).astype(np_type)


def count_macs(path: Path, dims: dict[str, int]) -> int:
    """Multiply-accumulates of the matrix ops for one run at the reference dims.

    Shapes are taken from a real onnxruntime run with every matrix op's tensors exposed as outputs: ONNX shape
    inference alone leaves attention reshapes unknown.
    """
    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type in _MAC_OPS]
    have = {o.name for o in model.graph.output}
    wanted = dict.fromkeys(name for n in nodes for name in (n.input[0], n.input[1], n.output[0]))
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    for name in wanted:
        if name not in have and name not in inits:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = create_session(model.SerializeToString(), _AS_IS)
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else dims.get(str(d), 1) for d in i.shape]
        feeds[i.name] = _dummy(i.type, shape, i.name)
    names = [o.name for o in session.get_outputs()]
    shapes = {n: list(v.shape) for n, v in zip(names, session.run(names, feeds))}
    shapes.update(inits)
    macs = 0
    for n in nodes:
        out = shapes[n.output[0]]
        if n.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shapes[n.input[3] if n.op_type == "QLinearConv" else n.input[1]]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        else:
            a = shapes[n.input[0]]
            k = a[-1]
            if n.op_type == "Gemm" and any(at.name == "transA" and at.i for at in n.attribute):
                k = a[0]
            macs += int(np.prod(out)) * int(k)
    return macs


def graph_summary(path: Path) -> dict[str, Any]:
    model = onnx.load(str(path))
    ops = Counter(n.op_type for n in model.graph.node)
    return {
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "parameters": parameter_count(model),
        "nodes": sum(ops.values()),
        "quantized_ops": {k: v for k, v in sorted(ops.items()) if k in _QUANT_OPS},
    }


def io_spec(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs with names, dtypes and shapes (symbolic dims as strings)."""
    s = create_session(path, _AS_IS)

    def spec(x: Any) -> dict[str, Any]:  # an onnxruntime NodeArg
        dtype = np.dtype(ORT_DTYPES[x.type]).name if x.type in ORT_DTYPES else x.type
        return {
            "name": x.name,
            "dtype": dtype,
            "shape": [d if isinstance(d, int) else str(d) for d in x.shape],
        }

    return [spec(i) for i in s.get_inputs()], [spec(o) for o in s.get_outputs()]


def externalize(path: Path) -> Path:
    """Rewrites an ONNX file with its weights in ``<name>.data`` beside it. onnxruntime memory-maps external
    weights instead of copying them out of the protobuf, so a session peaks at well under twice the model's size.
    Returns the data file."""
    model = onnx.load(str(path))
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )
    return data
