"""Images: the resize kernels against Pillow byte for byte, preprocessing against transformers' image processors,
and ImageClassifier against transformers end to end, from every kind of input; bench and the CLI on it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import edgert
from edgert import kernels
from edgert.errors import EdgertError
from edgert.kernels import resample as _resample
from edgert.tasks.image import ImagePreprocessor

IMPLS = sorted(kernels.implementations())
impl_param = pytest.mark.parametrize("impl", IMPLS, ids=[f"kernels={i}" for i in IMPLS])
FILTERS = sorted(_resample.NAMES)


def _pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[:, :, 0], "L") if img.shape[2] == 1 else Image.fromarray(img, "RGB")


@impl_param
@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 70),
    oh=st.integers(1, 70),
    ow=st.integers(1, 70),
    channels=st.sampled_from([1, 3]),
    resample=st.sampled_from(FILTERS),
    seed=st.integers(0, 2**16),
)
def test_resize_equals_pillow_byte_for_byte(impl, h, w, oh, ow, channels, resample, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    want = np.asarray(_pil(img).resize((ow, oh), resample=resample)).reshape(oh, ow, channels)
    got = kernels.resize(img, oh, ow, resample, impl=impl)
    assert got.dtype == np.uint8 and got.shape == (oh, ow, channels)
    np.testing.assert_array_equal(got, want)


@impl_param
@pytest.mark.parametrize("resample", FILTERS)
def test_resize_camera_frame_to_model_size(impl, resample):
    # the shape that matters in practice: a 640x480 photo down to 224x224, with smooth content and hard edges
    y, x = np.mgrid[0:480, 0:640]
    img = np.stack([x % 256, y % 256, ((x // 40 + y // 40) % 2) * 255], axis=2).astype(np.uint8)
    want = np.asarray(Image.fromarray(img).resize((224, 224), resample=resample))
    np.testing.assert_array_equal(kernels.resize(img, 224, 224, resample, impl=impl), want)


@impl_param
def test_resize_extreme_values_and_same_size(impl):
    img = np.zeros((9, 9, 3), dtype=np.uint8)
    img[::2] = 255  # stripes make lanczos and bicubic overshoot: results must clip, not wrap
    for resample in (_resample.LANCZOS, _resample.BICUBIC):
        want = np.asarray(Image.fromarray(img).resize((17, 4), resample=resample))
        np.testing.assert_array_equal(kernels.resize(img, 4, 17, resample, impl=impl), want)
    same = kernels.resize(img, 9, 9, impl=impl)
    np.testing.assert_array_equal(same, img)
    assert same is not img


def test_resize_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        kernels.resize(np.zeros((4, 4, 3), dtype=np.float32), 2, 2)
    with pytest.raises(ValueError, match="1 to 4 channels"):
        kernels.resize(np.zeros((4, 4, 5), dtype=np.uint8), 2, 2)
    with pytest.raises(ValueError, match="at least 1x1"):
        kernels.resize(np.zeros((4, 4, 3), dtype=np.uint8), 0, 2)
    with pytest.raises(ValueError, match="resample filter 9"):
        kernels.resize(np.zeros((4, 4, 3), dtype=np.uint8), 2, 2, 9)


@impl_param
def test_to_chw_matches_numpy_on_a_strided_crop(impl):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    lut = rng.standard_normal((3, 256)).astype(np.float32)
    crop = img[3:17, 5:26]  # a view, not contiguous
    got = kernels.to_chw(crop, lut, impl=impl)
    want = np.stack([lut[c][crop[:, :, c]] for c in range(3)])
    np.testing.assert_array_equal(got, want)
    out = np.zeros((2, 3, 14, 21), dtype=np.float32)
    kernels.to_chw(crop, lut, out[1], impl=impl)
    np.testing.assert_array_equal(out[1], want)
    assert not out[0].any()


# preprocessing against transformers' slow (PIL-based) image processors


def _images():
    rng = np.random.default_rng(7)
    sizes = [(480, 640), (640, 480), (224, 224), (17, 300), (300, 17), (20, 20), (2, 3)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


PROCESSORS = (
    "vit-bilinear",
    "vit-bicubic-default-stats",
    "clip-shortest-edge-crop",
    "clip-crop-bigger-than-image",
    "convnext-crop-pct",
    "convnext-384",
)


def _processors():
    pytest.importorskip("transformers", reason="the transformers oracle is not installed (the aarch64 lane)")
    from transformers import CLIPImageProcessor, ConvNextImageProcessor, ViTImageProcessor

    return {
        "vit-bilinear": ViTImageProcessor(size={"height": 32, "width": 48}),
        "vit-bicubic-default-stats": ViTImageProcessor(
            size={"height": 40, "width": 40}, resample=3, image_mean=[0.1, 0.2, 0.3], image_std=[0.9, 0.8, 0.7]
        ),
        "clip-shortest-edge-crop": CLIPImageProcessor(
            size={"shortest_edge": 36}, crop_size={"height": 32, "width": 28}
        ),
        "clip-crop-bigger-than-image": CLIPImageProcessor(size={"shortest_edge": 20}, crop_size=24),
        "convnext-crop-pct": ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875),
        "convnext-384": ConvNextImageProcessor(size={"shortest_edge": 384}),
    }


@pytest.mark.parametrize("name", PROCESSORS)
def test_preprocessing_equals_transformers(name, tmp_path):
    proc = _processors()[name]
    proc.save_pretrained(tmp_path)
    pre = json.loads((tmp_path / "preprocessor_config.json").read_text())
    ours = ImagePreprocessor(pre, tmp_path)
    for img in _images():
        want = proc(images=img, return_tensors="np")["pixel_values"]
        got = ours([img])
        assert got.shape == want.shape, (img.shape, got.shape, want.shape)
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_preprocessor_refuses_what_it_cannot_honour(tmp_path):
    with pytest.raises(edgert.errors.TaskError, match="no fixed output size"):
        ImagePreprocessor({"size": {"shortest_edge": 32}}, tmp_path)
    with pytest.raises(edgert.errors.TaskError, match="not supported"):
        ImagePreprocessor({"size": {"longest_edge": 32}}, tmp_path)
    with pytest.raises(edgert.errors.BundleError, match="resample must be one of 0, 1, 2, 3, 4, 5, got 7"):
        ImagePreprocessor({"size": {"height": 8, "width": 8}, "resample": 7}, tmp_path)


# the pipeline


@pytest.fixture(scope="module")
def vit_reference(vit_dir):
    import torch
    from transformers import ViTForImageClassification, ViTImageProcessor

    model = ViTForImageClassification.from_pretrained(vit_dir).eval()
    proc = ViTImageProcessor.from_pretrained(vit_dir)

    def probs(images):
        pixels = proc(images=images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            return torch.softmax(model(pixel_values=pixels).logits, -1).numpy()

    return probs


def test_classifier_matches_transformers(vit_bundle, vit_reference):
    clf = edgert.load(vit_bundle)
    assert isinstance(clf, edgert.ImageClassifier) and clf.image_size == (32, 32)
    images = _images()[:-1] * 2
    got = clf.scores(images, batch_size=3)
    want = vit_reference(images)
    np.testing.assert_allclose(got, want, atol=2e-6)
    preds = clf.classify(images, top_k=2)
    labels = ["rot0", "rot90", "rot180", "rot270"]
    assert [p[0].label for p in preds] == [labels[i] for i in want.argmax(1)]
    assert all(len(p) == 2 and p[0].score >= p[1].score for p in preds)
    assert clf.classify(images[0])[0][0] == preds[0][0]  # a single image is one item, not a batch of rows


def test_classifier_inputs_of_every_kind(vit_bundle, vit_reference, tmp_path):
    clf = edgert.load(vit_bundle)
    rgb = _images()[0]
    png = tmp_path / "frame.png"
    Image.fromarray(rgb).save(png)
    encoded = png.read_bytes()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, dtype=np.uint8)])
    grey = rgb[:, :, 1]
    got = clf.scores([rgb, str(png), png, encoded, Image.open(io.BytesIO(encoded)), rgba, grey, rgb[None][0:1][0]])
    want = vit_reference([rgb])[0]
    for row in got[:6]:
        np.testing.assert_allclose(row, want, atol=2e-6)
    np.testing.assert_allclose(got[6], vit_reference([np.repeat(grey[:, :, None], 3, axis=2)])[0], atol=2e-6)
    batch = np.stack([rgb, rgb])  # (N, H, W, C) is N images
    assert clf.scores(batch).shape == (2, 4)
    assert clf.scores([]).shape == (0, 4) and clf.classify([]) == []


def test_classifier_bad_input_names_the_item(vit_bundle, tmp_path):
    clf = edgert.load(vit_bundle)
    ok = _images()[0]
    with pytest.raises(TypeError, match=r"image 1: expected uint8 pixels \(0-255\), got a float32 array"):
        clf.scores([ok, ok.astype(np.float32)])
    with pytest.raises(TypeError, match="image 2: expected a uint8 array, a path, bytes or a PIL image, got int"):
        clf.scores([ok, ok, 5])
    with pytest.raises(ValueError, match=r"image 0: expected \(H, W\), \(H, W, 3\) or \(H, W, 4\) pixels"):
        clf.scores(np.zeros((4, 4, 2), dtype=np.uint8))
    with pytest.raises(EdgertError, match="image 1: .*missing.png: no such file"):
        clf.scores([ok, tmp_path / "missing.png"])
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(EdgertError, match="image 0: .*bad.jpg: not a readable image"):
        clf.scores(str(tmp_path / "bad.jpg"))
    with pytest.raises(edgert.errors.TaskError, match="bundle task is 'image-classification'"):
        edgert.TextEmbedder(edgert.Bundle.open(vit_bundle))


def test_image_path_needs_no_torch(vit_bundle):
    code = (
        "import sys, numpy as np, edgert\n"
        f"clf = edgert.load({str(vit_bundle)!r})\n"
        "print(clf.classify(np.zeros((50, 60, 3), dtype=np.uint8))[0][0].label)\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'PIL') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in {"rot0", "rot90", "rot180", "rot270"}


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edgert.cli.main", *args], capture_output=True, text=True, env={**os.environ}
    )


def test_cli_classify_images(vit_bundle, tmp_path):
    paths = []
    for i, img in enumerate(_images()[:3]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    r = _cli("classify", str(vit_bundle), *sum((["-i", str(p)] for p in paths), []), "--top-k", "2")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    want = edgert.load(vit_bundle).classify([str(p) for p in paths], top_k=2)
    assert [row["image"] for row in rows] == [str(p) for p in paths]
    for row, preds in zip(rows, want):
        assert [x["label"] for x in row["labels"]] == [p.label for p in preds]
        np.testing.assert_allclose([x["score"] for x in row["labels"]], [p.score for p in preds], rtol=1e-6)
    wrong = _cli("classify", str(vit_bundle), "-t", "a text")
    assert wrong.returncode == 2 and "classifies images: pass --image PATH" in wrong.stderr
    missing = _cli("classify", str(vit_bundle), "-i", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and "nope.png: no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_bench_drives_images(vit_bundle, tmp_path):
    from edgert.bench import records

    out = tmp_path / "r.json"
    r = _cli(
        "bench", str(vit_bundle), "--quick", "--threads", "1", "--batch-sizes", "1,2", "--cold-runs", "1",
        "--json", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "640x480 RGB frames resized to 32x32" in r.stdout
    data = records.load(out)
    assert data.target is not None and data.target.kind == "image" and data.target.input.model_input == "32x32"
    assert data.configs[0].latency is not None and data.configs[0].latency.samples_ns
