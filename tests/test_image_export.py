"""Image classification export: a small random ViT through Optimum, checked against transformers' logits."""

from __future__ import annotations

import numpy as np

import edgert
from edgert import Bundle, RawModel


def test_image_bundle_manifest(vit_bundle):
    b = Bundle.open(vit_bundle, verify=True)
    assert b.task == "image-classification"
    assert b.pre["kind"] == "image" and b.pre["size"] == {"height": 32, "width": 32}
    assert b.post["labels"] == ["rot0", "rot90", "rot180", "rot270"]
    assert b.card["agreement"]["fp32_vs_pytorch"]["top1_agreement"] == 1.0
    assert b.card["agreement"]["fp32_vs_pytorch"]["max_abs_diff"] < 1e-4
    assert b.card["reference_input"] == {"batch_size": 1, "num_channels": 3, "height": 32, "width": 32}
    # analytic count: patch conv + 2 layers over 17 tokens (16 patches + CLS) + the head on CLS
    t, h, i = 17, 32, 64
    patches = 16 * 32 * (3 * 8 * 8)
    layers = 2 * (4 * t * h * h + 2 * t * h * i + 2 * t * t * h)
    assert b.card["macs"] == patches + layers + 32 * 4


def test_image_bundle_runs_raw_and_matches_transformers(vit_bundle, vit_dir):
    import torch
    from transformers import ViTForImageClassification

    assert isinstance(edgert.load(vit_bundle), edgert.ImageClassifier)
    raw = edgert.load(vit_bundle, task="raw")
    assert isinstance(raw, RawModel)
    pixels = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    got = raw.run({"pixel_values": pixels})["logits"]
    with torch.no_grad():
        want = ViTForImageClassification.from_pretrained(vit_dir).eval()(torch.from_numpy(pixels)).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
