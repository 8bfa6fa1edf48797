"""How closely the exported models follow the PyTorch reference, measured on sample inputs at export time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import quality
from ..bundle import Bundle
from ..session import SessionConfig
from ..tasks import RawModel, TextClassifier, TextEmbedder
from .source import Source

#: Varied on purpose: short, long (past 256 tokens), CJK, emoji, accents, code, whitespace, empty.
SAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "Edge devices run small models.",
    "How do I reset my router when the lights keep blinking orange?",
    "A man is playing a guitar on stage while the crowd sings along.",
    "Quantized int8 models trade a little accuracy for speed and size.",
    "東京は日本の首都です。",
    "Das Wetter in München ist heute schön, aber kalt.",
    "I love this! 😍🔥 Best day ever 🎉",
    "def add(a, b):\n    return a + b",
    "   ",
    "",
    "naïve café résumé coöperate",
    "The mitochondria is the powerhouse of the cell. " * 40,
    "Stock prices fell sharply after the quarterly report missed expectations.",
    "Can you recommend a good book about the history of mathematics?",
    "Wh",
]

_NO_CACHE = SessionConfig(cache_optimized=False)


def _compare_vectors(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    cos = quality.cosines(ref, got)
    return {
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "max_abs_diff": float(np.abs(ref - got).max()),
    }


def _compare_scores(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    return {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
    }


def _reference_embeddings(source: Source, task: str) -> tuple[np.ndarray, int]:
    import torch

    if task == "sentence-embedding":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(source.location, device="cpu")
        ref = st.encode(SAMPLES, convert_to_numpy=True, batch_size=8)
        return ref.astype(np.float32), sum(p.numel() for p in st.parameters())
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.location)  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(source.location).eval()
    batch = tok(SAMPLES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return pooled.numpy(), sum(p.numel() for p in model.parameters())


def _reference_text_scores(source: Source) -> tuple[np.ndarray, int]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.location)  # type: ignore[no-untyped-call]
    model = AutoModelForSequenceClassification.from_pretrained(source.location).eval()
    batch = tok(SAMPLES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    if model.config.problem_type == "multi_label_classification":
        return torch.sigmoid(logits).numpy(), sum(p.numel() for p in model.parameters())
    return torch.softmax(logits, -1).numpy(), sum(p.numel() for p in model.parameters())


def _image_inputs(source: Source, n: int = 4) -> np.ndarray:
    config = source.read_json("config.json") or {}
    size = int(config.get("image_size", 224))
    channels = int(config.get("num_channels", 3))
    return np.random.default_rng(0).standard_normal((n, channels, size, size)).astype(np.float32)


def measure(source: Source, task: str, root: Path, variants: list[str]) -> tuple[dict[str, Any], int]:
    """Agreement of each variant with PyTorch (and int8 with fp32), plus the PyTorch parameter count."""
    bundle = Bundle.open(root)
    results: dict[str, Any] = {"samples": len(SAMPLES) if task != "image-classification" else 4}
    outputs: dict[str, np.ndarray] = {}
    if task in ("sentence-embedding", "feature-extraction"):
        ref, params = _reference_embeddings(source, task)
        for v in variants:
            outputs[v] = TextEmbedder(bundle, variant=v, config=_NO_CACHE).embed(SAMPLES, batch_size=4)
        compare = _compare_vectors
    elif task == "text-classification":
        ref, params = _reference_text_scores(source)
        for v in variants:
            outputs[v] = TextClassifier(bundle, variant=v, config=_NO_CACHE).scores(SAMPLES, batch_size=4)
        compare = _compare_scores
    else:
        import torch
        from transformers import AutoModelForImageClassification

        model = AutoModelForImageClassification.from_pretrained(source.location).eval()
        pixels = _image_inputs(source)
        with torch.no_grad():
            ref = model(pixel_values=torch.from_numpy(pixels)).logits.numpy()
        params = sum(p.numel() for p in model.parameters())
        for v in variants:
            raw = RawModel(bundle, variant=v, config=_NO_CACHE)
            outputs[v] = raw.run({raw.input_names[0]: pixels})[raw.output_names[0]]
        compare = _compare_scores
    for v in variants:
        results[f"{v}_vs_pytorch"] = compare(ref, outputs[v])
    if "fp32" in outputs and "int8" in outputs:
        results["int8_vs_fp32"] = compare(outputs["fp32"], outputs["int8"])
    return results, int(params)
