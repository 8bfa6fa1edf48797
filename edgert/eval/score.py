"""Scoring one loaded pipeline on one evaluation set: the model's outputs, then the metrics with their intervals and
the slices. Each function returns the fields of an ``Evaluated`` record but its identity and cost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgertError
from . import metrics
from .data import Labelled, Pairs, Problems, Retrieval
from .records import ClassFigures, Metric
from .records import Slice as SliceRecord
from .search import top_k, unit

Echo = Callable[[str], None]
#: items per model call between progress lines, for long sets
CHUNK = 512
#: built-in length slices, in words (whitespace-separated): upper bounds, the last open
WORD_BUCKETS = (3, 7, 15)


def _interval(name: str, iv: metrics.Interval) -> Metric:
    return Metric(name, iv.value, iv.low, iv.high)


def length_bucket(text: str) -> str:
    words = len(text.split())
    low = 1
    for high in WORD_BUCKETS:
        if words <= high:
            return f"{low}-{high} words" if words else "empty"
        low = high + 1
    return f"{low}+ words"


def slices(by: str, keys: Sequence[str], per_item: np.ndarray, metric: str, kw: dict[str, Any]) -> list[SliceRecord]:
    """The mean of PER_ITEM within each key's items, with its interval."""
    out = []
    keyed = np.asarray(keys, dtype=object)
    for key in sorted(set(keys)):
        members = per_item[keyed == key]
        out.append(SliceRecord(by, key, len(members), _interval(metric, metrics.mean_interval(members, **kw))))
    return out


def embed_all(model: Any, texts: list[str], what: str, batch: tuple[int, int], echo: Echo) -> np.ndarray:
    """Vectors of TEXTS in chunks, with progress; BATCH is (batch_size, max_tokens)."""
    parts = []
    for start in range(0, len(texts), CHUNK):
        parts.append(model.embed(texts[start : start + CHUNK], batch_size=batch[0], max_tokens=batch[1]))
        if len(texts) > CHUNK:
            echo(f"    {what} {min(start + CHUNK, len(texts)):,}/{len(texts):,}")
    return np.concatenate(parts) if parts else np.empty((0, 0), np.float32)


def retrieval(
    model: Any, data: Retrieval, k: int, batch: tuple[int, int], kw: dict[str, Any], echo: Echo
) -> dict[str, Any]:
    doc_ids = list(data.corpus)
    query_ids = list(data.queries)
    docs = embed_all(model, [data.corpus[d] for d in doc_ids], "documents", batch, echo)
    queries = embed_all(model, [data.queries[q] for q in query_ids], "queries", batch, echo)
    index, _ = top_k(queries, docs, k)
    ranked = {q: [doc_ids[i] for i in row] for q, row in zip(query_ids, index)}
    per_query = metrics.retrieval_per_query(ranked, data.qrels, k)
    scored = sorted(data.qrels)  # retrieval_per_query's order
    headline = f"ndcg@{k}"
    found = [_interval(name, metrics.mean_interval(values, **kw)) for name, values in per_query.items()]
    keys = [length_bucket(data.queries[q]) for q in scored]
    return {
        "items": len(scored),
        "metrics": tuple(found),
        "slices": tuple(slices("query length", keys, per_query[headline], headline, kw)),
    }


def similarity(model: Any, data: Pairs, batch: tuple[int, int], kw: dict[str, Any], echo: Echo) -> dict[str, Any]:
    a = unit(embed_all(model, data.first, "first sentences", batch, echo))
    b = unit(embed_all(model, data.second, "second sentences", batch, echo))
    cosine: np.ndarray = np.einsum("ij,ij->i", a, b).astype(np.float64)
    gold = np.asarray(data.scores, dtype=np.float64)
    boot = {key: kw[key] for key in ("draws", "level", "seed")}

    def on(f: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray], float]:
        return lambda i: f(cosine[i], gold[i])

    found = [
        _interval(name, metrics.bootstrap(on(f), len(gold), **boot))
        for name, f in (("spearman", metrics.spearman), ("pearson", metrics.pearson))
    ]
    return {"items": len(gold), "metrics": tuple(found)}


def _probabilities(model: Any, items: list[Any], batch_size: int, echo: Echo) -> tuple[np.ndarray, list[int]]:
    """Scores of every item the model can take, and the positions of those it could not (an unreadable image):
    a batch that fails is retried item by item, so one bad file costs only itself."""
    width = len(model.labels)
    rows: list[np.ndarray] = []
    bad: list[int] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        try:
            rows.append(model.scores(batch, batch_size=batch_size))
        except EdgertError:
            for j, item in enumerate(batch):
                try:
                    rows.append(model.scores([item], batch_size=1))
                except EdgertError:
                    bad.append(start + j)
        if len(items) > CHUNK and (start // batch_size) % max(1, CHUNK // batch_size) == 0:
            echo(f"    items {min(start + batch_size, len(items)):,}/{len(items):,}")
    return (np.concatenate(rows) if rows else np.empty((0, width), np.float32)), bad


def classification(
    model: Any, data: Labelled, folder: Path | None, batch_size: int, kw: dict[str, Any], echo: Echo, problems: Problems
) -> dict[str, Any]:
    """Accuracy, macro-F1 and calibration error with intervals; per-class figures and the confusion matrix.
    Items whose gold label the model does not have are not scored (counted, and named once per label)."""
    if getattr(model, "multi_label", False):
        raise EdgertError(f"{model.bundle.path}: a multi-label classifier is not scored by edgert eval yet")
    labels = list(model.labels)
    known = {label: i for i, label in enumerate(labels)}
    unknown = sorted({g for g in data.labels if g not in known})
    has = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
    for g in unknown:
        n = data.labels.count(g)
        problems.add(data.source, 0, f"label {g!r} ({n} item{'s' * (n > 1)}) is not one the model has ({has})")
    keep = [i for i, g in enumerate(data.labels) if g in known]
    items: list[Any] = [data.items[i] for i in keep]
    if folder is not None:  # image paths are relative to the data file
        items = [str(p if Path(p).is_absolute() else folder / p) for p in items]
    probs, bad = _probabilities(model, items, batch_size, echo)
    for j in bad[:5]:
        problems.add(data.source, 0, f"item {data.items[keep[j]]!r} could not be scored")
    bad_set = set(bad)
    keep = [i for j, i in enumerate(keep) if j not in bad_set]
    if not keep:
        raise EdgertError(f"{data.source}: no item could be scored (labels the model has: {', '.join(labels)})")
    gold = np.array([known[data.labels[i]] for i in keep])
    predicted = probs.argmax(1)
    correct = (predicted == gold).astype(np.float64)
    boot = {key: kw[key] for key in ("draws", "level", "seed")}
    n = len(gold)
    found = [
        _interval("accuracy", metrics.mean_interval(correct, **kw)),
        _interval(
            "macro_f1", metrics.bootstrap(lambda i: metrics.macro_f1(gold[i], predicted[i], len(labels)), n, **boot)
        ),
        _interval("ece", metrics.bootstrap(lambda i: metrics.calibration_error(probs[i], gold[i]), n, **boot)),
    ]
    precision, recall, f1 = metrics.per_class(gold, predicted, len(labels))
    support = np.bincount(gold, minlength=len(labels))
    classes = tuple(
        ClassFigures(label, float(precision[c]), float(recall[c]), float(f1[c]), int(support[c]))
        for c, label in enumerate(labels)
    )
    found_slices: list[SliceRecord] = []
    if data.slices is not None:
        found_slices += slices("column", [data.slices[i] for i in keep], correct, "accuracy", kw)
    if folder is None:
        found_slices += slices("text length", [length_bucket(data.items[i]) for i in keep], correct, "accuracy", kw)
    cm = metrics.confusion(gold, predicted, len(labels))
    return {
        "items": n,
        "metrics": tuple(found),
        "slices": tuple(found_slices),
        "unscored": len(data.items) - n,
        "classes": classes,
        "confusion": tuple(tuple(int(x) for x in row) for row in cm),
    }
