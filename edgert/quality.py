"""How far a model's outputs can be trusted: agreement with a reference model, and batch invariance.

Runtime-only (numpy + the task pipelines), so ``edgert check`` works on a device without the export extra.

- **Agreement**: per input, the cosine between a model's output and the reference's (embeddings), or whether
  the top-1 class agrees (classifiers). The card states the worst case, not only the mean.
- **Batch invariance**: the same input, run alone and run inside shuffled batches of 32 with other inputs,
  must give the same output. Dynamic int8 quantization breaks this: it takes one activation scale for the
  whole batch, so an input's vector depends on its batch-mates and their padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any, cast

import numpy as np

#: ``auto`` accepts only recipes at least this batch-invariant (worst cosine, alone vs in a batch).
INVARIANCE_FLOOR = 0.9999
INVARIANCE_BATCH = 32


def builtin_texts(split: str) -> list[str]:
    """The packaged ``calibration`` or ``validation`` texts (``edgert/data``; ``\\n`` and ``\\t`` in a line
    stand for a newline and a tab)."""
    if split not in ("calibration", "validation"):
        raise ValueError(f"split must be calibration or validation, got {split!r}")
    text = resources.files("edgert").joinpath("data").joinpath(f"{split}.txt").read_text(encoding="utf-8")
    return [line.replace("\\n", "\n").replace("\\t", "\t") for line in text.splitlines() if line.strip()]


def outputs(model: Any, items: Sequence[Any], *, batch_size: int) -> np.ndarray:
    """What a pipeline returns for ``items``: embeddings, or class scores for classifiers."""
    if hasattr(model, "embed"):
        return cast(np.ndarray, model.embed(list(items), batch_size=batch_size))
    return cast(np.ndarray, model.scores(list(items), batch_size=batch_size))


def alone(model: Any, items: Sequence[Any]) -> np.ndarray:
    """Each item run on its own (batch of one): the reference for batch invariance."""
    return np.concatenate([outputs(model, [x], batch_size=1) for x in items]) if items else np.empty((0, 0))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine in float64. Two zero rows count as equal (1.0), a zero and a non-zero row as 0."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    both_zero = (na == 0) & (nb == 0)
    cos = np.where(both_zero, 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    return np.clip(cos, -1.0, 1.0)


def agreement(reference: np.ndarray, got: np.ndarray, *, kind: str) -> dict[str, Any]:
    """Worst and mean agreement of ``got`` with ``reference`` over the same inputs, row by row."""
    cos = cosines(reference, got)
    out: dict[str, Any] = {
        "n": int(len(cos)),
        "min_cosine": float(cos.min()) if len(cos) else 1.0,
        "mean_cosine": float(cos.mean()) if len(cos) else 1.0,
        "max_abs_diff": float(np.abs(reference - got).max()) if reference.size else 0.0,
    }
    if kind == "classifier":
        agree = reference.argmax(1) == got.argmax(1)
        out["top1_agreement"] = float(agree.mean()) if len(agree) else 1.0
    return out


def score(stats: dict[str, Any], kind: str) -> float:
    """The one figure a budget is judged on: worst cosine for embeddings, top-1 agreement for classifiers."""
    return float(stats["top1_agreement"] if kind == "classifier" else stats["min_cosine"])


def kind_of(task: str) -> str:
    return "classifier" if task.endswith("classification") else "embedding"


def batch_invariance(
    model: Any, items: Sequence[Any], *, single: np.ndarray | None = None, seed: int = 0
) -> dict[str, Any]:
    """Worst cosine between each item run alone and run in shuffled batches of 32 (so batch-mates and padding
    differ from any natural order)."""
    items = list(items)
    if single is None:
        single = alone(model, items)
    order = np.random.default_rng(seed).permutation(len(items))
    batched = np.empty_like(single)
    for start in range(0, len(order), INVARIANCE_BATCH):
        idx = order[start : start + INVARIANCE_BATCH]
        batched[idx] = outputs(model, [items[i] for i in idx], batch_size=INVARIANCE_BATCH)
    cos = cosines(single, batched)
    worst = int(np.argmin(cos)) if len(cos) else 0
    return {
        "min_cosine": float(cos.min()) if len(cos) else 1.0,
        "batch_size": INVARIANCE_BATCH,
        "n": len(items),
        "invariant": bool(len(cos) == 0 or cos.min() >= INVARIANCE_FLOOR),
        "worst_index": worst,
    }


def long_tail(max_length: int, special_tokens: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Inputs where quantized models tend to drift, each with a label saying what it probes."""
    word = "token "
    cases = [
        ("empty", ""),
        ("whitespace", " \t \n "),
        ("one character", "a"),
        ("one CJK character", "猫"),
        ("at max length", word * max(1, max_length - 2)),
        ("past max length", word * (max_length * 2)),
        ("CJK", "机器学习模型可以在小型设备上运行，但需要仔细测量。东京の天気は晴れです。"),
        ("Arabic", "تعمل النماذج الصغيرة على الأجهزة الطرفية دون الحاجة إلى خادم."),
        ("Hindi", "छोटे मॉडल बिना सर्वर के उपकरणों पर चलते हैं।"),
        ("emoji", "🚀🔥👍🎉😂🙈 💯"),
        ("code", "def f(x):\n    return {k: v for k, v in x.items() if v is not None}"),
        ("numbers", "3.14159 2.71828 1e-9 -42 0x1F 1,000,000 12:30 2026-11-25"),
        ("control characters", "tabs\tand\nnewlines\r\n\x00 nul \x07 bell \x1b[0m escape"),
        ("repeated punctuation", "!!!??? ... ,,, ;;; ---"),
        ("URL", "https://example.com/a/b?c=d&e=f#g"),
        ("mixed scripts", "Edge AI — 边缘计算 — الحوسبة الطرفية — エッジ — 엣지"),
    ]
    for tok in special_tokens:
        cases.append((f"special token {tok}", f"{tok} {tok} text {tok}"))
    return cases


def special_tokens(model: Any) -> list[str]:
    """The tokenizer's special tokens ([CLS], [SEP], [PAD], [MASK], ...), if the pipeline has a tokenizer."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return []
    try:
        added = encoder.tokenizer.get_added_tokens_decoder()
    except AttributeError:
        return []
    return sorted({t.content for t in added.values() if getattr(t, "special", True)})


def check(model: Any, reference: Any, inputs: Sequence[tuple[str, Any]], *, worst: int = 5) -> dict[str, Any]:
    """Runs every labelled input alone through ``model`` and ``reference``; reports the worst-case drift, the
    inputs where it happens, and the model's batch invariance on the same inputs."""
    labels = [label for label, _ in inputs]
    items = [item for _, item in inputs]
    kind = "classifier" if not hasattr(model, "embed") else "embedding"
    ref = alone(reference, items)
    got = alone(model, items)
    cos = cosines(ref, got)
    order = np.argsort(cos, kind="stable")[:worst]
    rows = []
    for i in order:
        row = {"input": labels[i], "cosine": float(cos[i]), "max_abs_diff": float(np.abs(ref[i] - got[i]).max())}
        if kind == "classifier":
            row["top1_agrees"] = bool(ref[i].argmax() == got[i].argmax())
        rows.append(row)
    return {
        **agreement(ref, got, kind=kind),
        "worst_inputs": rows,
        "batch_invariance": {k: v for k, v in batch_invariance(model, items, single=got).items() if k != "worst_index"},
    }
