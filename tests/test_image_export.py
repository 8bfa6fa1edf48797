"""Image classification export: a small random ViT through Optimum, checked against transformers' logits.

edgert has no image pipeline yet, so the bundle runs as a raw session (and bench measures it that way).
"""

from __future__ import annotations

import numpy as np
import pytest

import edgert
from edgert import Bundle, RawModel
from edgert.errors import TaskError


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=4,
        id2label={i: f"rot{90 * i}" for i in range(4)},
        label2id={f"rot{90 * i}": i for i in range(4)},
    )
    out = tmp_path_factory.mktemp("vit")
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vit_bundle(vit_dir, tmp_path_factory):
    from edgert.export import ExportOptions, export_bundle

    out = tmp_path_factory.mktemp("bundles") / "vit"
    return export_bundle(str(vit_dir), out, ExportOptions(quantize="none"), echo=lambda s: None).path


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

    with pytest.raises(TaskError, match="no 'image-classification' pipeline yet"):
        edgert.load(vit_bundle)
    raw = edgert.load(vit_bundle, task="raw")
    assert isinstance(raw, RawModel)
    pixels = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    got = raw.run({"pixel_values": pixels})["logits"]
    with torch.no_grad():
        want = ViTForImageClassification.from_pretrained(vit_dir).eval()(torch.from_numpy(pixels)).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
