"""Dense image outputs (`--task image-map`): a segmenter-shaped model imported with image preprocessing returns its
map for each image, equal to a reference computed without edgert (Pillow resizes, NumPy does the rest)."""

from __future__ import annotations

import numpy as np
import pytest

import edgert
from edgert.importer import ImportOptions, ModelImportError, import_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("PIL")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

K = np.array([[0.5, -1.0, 0.25], [1.0, 0.5, -0.5]], dtype=np.float32)  # 2 classes from 3 channels, per pixel


def segmenter(path, size=(16, 12)):
    """A 1x1 convolution: (n, 3, H, W) -> (n, 2, H, W) class logits per pixel."""
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "K"], ["mask"])],
        "seg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, *size])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 2, *size])],
        [numpy_helper.from_array(K.reshape(2, 3, 1, 1), "K")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    return path


def reference(image, size=(16, 12), mean=0.5, std=0.25):
    from PIL import Image

    pixels = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)).astype(np.float32)
    x = (pixels * np.float32(1 / 255) - np.float32(mean)) / np.float32(std)  # (H, W, 3)
    return np.einsum("kc,hwc->khw", K, x)


def test_image_map_returns_the_models_map(tmp_path):
    images = [np.random.default_rng(i).integers(0, 256, (30, 41, 3), dtype=np.uint8) for i in range(3)]
    options = ImportOptions(task="image-map", mean=(0.5,), std=(0.25,))
    bundle = import_model(segmenter(tmp_path / "seg.onnx"), tmp_path / "b", options)
    model = edgert.load(bundle.path)
    got = model.maps(images, batch_size=2)
    assert got.shape == (3, 2, 16, 12) and model.image_size == (16, 12)
    np.testing.assert_allclose(got, np.stack([reference(im) for im in images]), rtol=1e-4, atol=1e-5)
    assert "labels" not in bundle.post  # before: "no labels", with a temporary folder in the message


def test_image_map_refuses_label_options(tmp_path):
    with pytest.raises(ModelImportError, match="labels: is not read by task image-map"):
        import_model(segmenter(tmp_path / "seg.onnx"), tmp_path / "b", ImportOptions(task="image-map", labels="a.txt"))
