"""What several test files share: one definition each of the emulation flag, the tiny ONNX models built with
onnx.helper, the flags that import them, and recorded device output. ``onnx`` is imported only by the builders,
so a lane without it can still import this module."""

from __future__ import annotations

import json
import os

import numpy as np

from edgert.importer import ImportOptions

#: Set by the aarch64 lane: each model run costs 20-50x more under qemu, so the heaviest tests are cut there.
EMULATED = os.environ.get("EDGERT_EMULATED") == "1"


def _onnx():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


W = np.array([[1.0, -1.0, 0.5, 0.0], [0.0, 2.0, -0.5, 1.0], [-1.0, 0.0, 1.0, 0.5]], dtype=np.float32) / 50
LABELS = ["north", "east", "south", "west"]


def classifier(path, *, layout="NCHW", size=(8, 8), probabilities=False, channels=3, dtype=None,
               labels=None):  # fmt: skip
    onnx, TensorProto, helper, numpy_helper = _onnx()
    dtype = TensorProto.FLOAT if dtype is None else dtype
    h, w = size
    shape = ["n", channels, h, w] if layout == "NCHW" else ["n", h, w, channels]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes = []
    x = "x"
    if dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes += [
        helper.make_node("ReduceMean", [x, "axes"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["logits"]),
    ]
    out = "logits"
    if probabilities:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1))
        out = "probs"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["n", 4])],
        [
            numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes"),
            numpy_helper.from_array(np.vstack([W, np.zeros((1, 4), np.float32)])[:channels], "W"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if labels is not None:
        helper.set_model_props(model, {"labels": json.dumps(labels)})
    onnx.save(model, str(path))
    return path


RATE, WINDOW, CONTEXT = 16000, 512, 64


def vad_model(path, *, window=WINDOW + CONTEXT):
    """state' = 0.5 state + mean|x| ; p = sigmoid(40 (mean(state') - 0.08)) ; sr enters as 0 * sr."""
    onnx, TensorProto, helper, numpy_helper = _onnx()
    c = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Abs", ["input"], ["a"]),
        helper.make_node("ReduceMean", ["a", "axes1"], ["energy"], keepdims=1),  # (1, 1)
        helper.make_node("Mul", ["state", "half"], ["decayed"]),
        helper.make_node("Add", ["decayed", "energy"], ["stateN"]),  # (1, 4)
        helper.make_node("ReduceMean", ["stateN", "axes1"], ["level"], keepdims=1),
        helper.make_node("Sub", ["level", "bias"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["z"]),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["srf", "zero"], ["nothing"]),
        helper.make_node("Add", ["z", "nothing"], ["z2"]),
        helper.make_node("Sigmoid", ["z2"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"),
        c("half", 0.5),
        c("bias", 0.08),
        c("gain", 40.0),
        c("zero", 0.0),
    ]
    graph = helper.make_graph(
        nodes,
        "vad",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, window]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [1, 4]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


#: The flags that say how vad_model streams (the same as Silero VAD's, whose real model imports with them).
VAD_OPTIONS = ImportOptions(
    task="audio-stream",
    sample_rate=RATE,
    window=WINDOW,
    context=CONTEXT,
    audio_input="input",
    sample_rate_input="sr",
    states=(("state", "stateN"),),
    output="output",
    output_kind="probabilities",
)


# Recorded on a Raspberry Pi 5 (firmware 2024-09), trimmed to a few rails; the format is what matters.
PMIC_OUTPUT = """\
     3V7_WL_SW_A current(0)=0.09026400A
   3V3_SYS_A current(1)=0.06196200A
   1V8_SYS_A current(2)=0.17641000A
   DDR_VDD2_A current(4)=0.02440200A
   VDD_CORE_A current(7)=0.90500000A
   3V7_WL_SW_V volt(8)=3.71232000V
   3V3_SYS_V volt(9)=3.31257600V
   1V8_SYS_V volt(10)=1.80153600V
   DDR_VDD2_V volt(12)=1.11196800V
   VDD_CORE_V volt(15)=0.85000000V
   EXT5V_V volt(24)=5.14520000V
   BATT_V volt(25)=0.00000000V
"""
