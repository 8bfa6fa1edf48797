"""Schema-valid manifests that lie about their model: each value is checked against what the graph declares and
against sane bounds when a pipeline is built, before any allocation, and refused in one line that names the key.
Before, these ended in a traceback or a multi-GB allocation (dim 1e9, a 1e6 x 1e6 state)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert.errors import EdgertError
from edgert.importer import ImportOptions, ModelImportError, import_model

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _edit(src, dst, section: str, key: str, value):
    shutil.copytree(src, dst)
    m = json.loads((dst / "edgert.json").read_text())
    m.setdefault(section, {})[key] = value
    (dst / "edgert.json").write_text(json.dumps(m))
    return dst


@pytest.mark.parametrize(
    "section, key, value, cause",
    [
        ("pre", "max_length", 100_000, "max_length 100000 is more than the model takes \\(512 tokens\\)"),
        ("pre", "pad_id", 2**40, "pad_id 1099511627776 is not a token id"),
        ("post", "dim", 10**9, "dim is 1000000000, but the model's token_embeddings gives 384 values"),
        ("post", "output", "nope", "no output 'nope'"),
    ],
    ids=["max_length", "pad_id", "dim", "output"],
)
def test_text_manifest_values_are_checked_against_the_model(tmp_path, minilm_bundle, section, key, value, cause):
    bundle = _edit(minilm_bundle, tmp_path / "b", section, key, value)
    with pytest.raises(EdgertError, match=cause):
        edgert.load(bundle, variant="fp32")
    r = subprocess.run(
        [sys.executable, "-m", "edgert", "embed", str(bundle), "-t", "hi"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_deep_nesting_is_refused_by_depth(tmp_path, minilm_bundle):
    bundle = tmp_path / "b"
    shutil.copytree(minilm_bundle, bundle)
    text = (bundle / "edgert.json").read_text()
    deep = '{"card": ' + "[" * 3000 + "]" * 3000 + ","
    (bundle / "edgert.json").write_text(deep + text.lstrip()[1:])
    for command in ("inspect", "bench"):
        r = subprocess.run([sys.executable, "-m", "edgert", command, str(bundle)], capture_output=True, text=True)
        assert r.returncode == 2 and "nests deeper than 32 levels" in r.stderr and "Traceback" not in r.stderr


def _classifier(path, classes=3, *, labels_meta=None):
    """An image classifier on 8x8 NCHW images: channel means times a 3 x classes matrix."""
    w = np.arange(3 * classes, dtype=np.float32).reshape(3, classes) / 10
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
            helper.make_node("MatMul", ["m", "W"], ["y"]),
        ],
        "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", classes])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([2, 3], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    if labels_meta is not None:
        helper.set_model_props(model, {"labels": labels_meta})
    onnx.save(model, str(path))
    return path


def _audio(path, *, length=576, state=(1, 4)):
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=1),
         helper.make_node("Identity", ["state"], ["stateN"]), helper.make_node("Sigmoid", ["m"], ["output"])],
        "a",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, length]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, list(state))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, list(state))],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    return path


def test_labels_must_fit_the_output(tmp_path):
    bundle = import_model(_classifier(tmp_path / "m.onnx"), tmp_path / "c", ImportOptions(task="image-classification"))
    bad = _edit(bundle.path, tmp_path / "bad", "post", "labels", ["a", "b"])
    with pytest.raises(EdgertError, match="labels has 2 entries, but the model's y has 3 classes"):
        edgert.load(bad)
    clf = edgert.load(_edit(bundle.path, tmp_path / "ok", "post", "labels", ["a", "b", "c"]))
    assert clf.labels == ["a", "b", "c"]
    with pytest.raises(EdgertError, match="gave \\[1, 5\\] scores for 3 labels"):  # a dynamic width, at run time
        clf.probabilities(np.ones((1, 5), np.float32))


@pytest.mark.parametrize(
    "meta, want",
    [('["cat", "dog", "owl"]', ["cat", "dog", "owl"]), ('{"0": "cat", "1": "dog", "2": "owl"}', ["cat", "dog", "owl"]),
     ("cat\ndog\nowl", ["cat", "dog", "owl"]), ("cat,dog,owl", ["cat", "dog", "owl"]),
     ("{0: 'cat', 1: 'dog', 2: 'owl'}", ["cat", "dog", "owl"]),
     ('"abc"', "3 classes"), ('{"0": "a", "1": "b", "5": "c"}', "exactly 0..2"), ('{"-1": "a", "0": "b", "1": "c"}',
     "exactly 0..2"), ("7", "3 classes")],
    ids=["json-list", "json-map", "lines", "commas", "python-dict", "json-string", "gap", "negative", "number"],
)  # fmt: skip
def test_label_metadata_follows_one_strict_rule(tmp_path, meta, want):
    """Before: "abc" became the labels a, b, c; {"0","1","5"} shifted them; {"-1": ...} reordered them."""
    model = _classifier(tmp_path / "m.onnx", labels_meta=meta)
    options = ImportOptions(task="image-classification", labels="metadata")
    if isinstance(want, list):
        assert import_model(model, tmp_path / "b", options).post["labels"] == want
    else:
        with pytest.raises(ModelImportError, match=want):
            import_model(model, tmp_path / "b", options)


@pytest.mark.parametrize(
    "key, value, cause",
    [("window", 10**12, "must be at most"), ("sample_rate", 10**9, "must be at most"),
     ("window", 100, "window 100 \\+ context 64 is 164 samples, but the model's input takes 576"),
     ("states", [{"input": "state", "output": "stateN", "shape": [10**6, 10**6]}],
      "does not fit the model's \\[1, 4\\]")],
    ids=["huge-window", "huge-rate", "window-vs-input", "huge-state"],
)  # fmt: skip
def test_audio_manifest_values_are_bounded_by_the_model(tmp_path, key, value, cause):
    opts = ImportOptions(task="audio-stream", sample_rate=16000, window=512, states=(("state", "stateN"),))
    bundle = import_model(_audio(tmp_path / "a.onnx"), tmp_path / "a", opts)
    assert bundle.post["output_kind"] == "probabilities"  # the graph ends in Sigmoid
    bad = _edit(bundle.path, tmp_path / "bad", "pre", key, value)
    with pytest.raises(EdgertError, match=cause):
        edgert.load(bad)
