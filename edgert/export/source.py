"""What is being exported: resolve SOURCE, pick the task, and read the pre/post-processing it needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import CATALOG, model_dir
from ..errors import ExportError

#: edgert task -> (Optimum task, Optimum library)
OPTIMUM_TASKS = {
    "sentence-embedding": ("feature-extraction", "sentence_transformers"),
    "feature-extraction": ("feature-extraction", "transformers"),
    "text-classification": ("text-classification", "transformers"),
    "image-classification": ("image-classification", "transformers"),
}
TASK_CHOICES = ("auto", *OPTIMUM_TASKS)


@dataclass(frozen=True)
class Source:
    """A model to export: a local directory (catalog names resolve to one) or a hub id for Optimum."""

    spec: str  # what the user typed
    location: str  # a directory path, or a hub id
    local: bool
    catalog: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.location)

    def read_json(self, name: str) -> dict[str, Any] | None:
        if not self.local:
            return None
        p = self.path / name
        if not p.is_file():
            return None
        try:
            data: dict[str, Any] | None = json.loads(p.read_text(encoding="utf-8"))
            return data
        except (OSError, json.JSONDecodeError) as exc:
            raise ExportError(f"{p}: unreadable JSON ({exc})") from None


def resolve(spec: str) -> Source:
    if spec in CATALOG:
        return Source(spec, str(model_dir(spec)), local=True, catalog=spec)
    p = Path(spec).expanduser()
    looks_like_path = p.is_absolute() or spec.startswith((".", "~")) or p.exists() or spec.count("/") != 1
    if p.exists():
        if not p.is_dir():
            raise ExportError(f"{spec}: not a directory; SOURCE is a Hugging Face model directory")
        if not (p / "config.json").is_file():
            raise ExportError(f"{spec}: no config.json here; not a Hugging Face model directory")
        return Source(spec, str(p.resolve()), local=True)
    if looks_like_path:
        raise ExportError(f"{spec}: no such directory (and not a catalog name: {', '.join(CATALOG)})")
    return Source(spec, spec, local=False)  # "org/name": a hub id, handled by Optimum


def detect_task(source: Source) -> str:
    if source.catalog:
        return CATALOG[source.catalog].task
    if not source.local:
        raise ExportError(f"{source.spec}: give --task for a hub model")
    if (source.path / "modules.json").is_file():
        return "sentence-embedding"
    config = source.read_json("config.json") or {}
    archs = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "text-classification"
    if any(a.endswith("ForImageClassification") for a in archs):
        return "image-classification"
    return "feature-extraction"


def _max_length(source: Source, fallback: int = 512) -> int:
    st = source.read_json("sentence_bert_config.json") or {}
    if st.get("max_seq_length"):
        return int(st["max_seq_length"])
    config = source.read_json("config.json") or {}
    tok = source.read_json("tokenizer_config.json") or {}
    candidates = [config.get("max_position_embeddings"), tok.get("model_max_length")]
    sane = [int(c) for c in candidates if isinstance(c, (int, float)) and 0 < c < 1_000_000]
    return min(sane) if sane else fallback


def text_pre(source: Source, tokenizer: dict[str, Any]) -> dict[str, Any]:
    padding = tokenizer.get("padding") or {}
    pad_id = padding.get("pad_id")
    if pad_id is None:
        vocab = (tokenizer.get("model") or {}).get("vocab") or {}
        pad_id = vocab.get("[PAD]", vocab.get("<pad>", 0)) if isinstance(vocab, dict) else 0
    return {
        "kind": "text",
        "tokenizer": "tokenizer.json",
        "files": ["tokenizer.json"],
        "max_length": _max_length(source),
        "pad_id": int(pad_id) if isinstance(pad_id, (int, float)) else 0,
        "padding": "dynamic",
    }


def embedding_post(source: Source, task: str, outputs: list[str], dim: int) -> dict[str, Any]:
    if task == "sentence-embedding":
        pooling_cfg = {}
        listed = source.read_json("modules.json")
        modules: list[dict[str, Any]] = [m for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                pooling_cfg = source.read_json(f"{m.get('path', '')}/config.json") or {}
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        if pooling_cfg.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif pooling_cfg.get("pooling_mode_mean_tokens", True):
            pooling = "mean"
        else:
            raise ExportError(f"{source.spec}: pooling {pooling_cfg} is not supported (mean or cls)")
        output = "token_embeddings" if "token_embeddings" in outputs else outputs[0]
        return {"output": output, "pooling": pooling, "normalize": normalize, "dim": dim}
    output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
    return {"output": output, "pooling": "mean", "normalize": False, "dim": dim}


def labels(source: Source) -> list[str]:
    config = source.read_json("config.json") or {}
    id2label = config.get("id2label") or {}
    return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
