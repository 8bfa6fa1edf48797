"""Scoring one loaded pipeline on one evaluation set: the model's outputs, then the metrics with their intervals and
the slices. Each function returns the fields of an ``Evaluated`` record but its identity and cost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgertError, TaskError
from ..tasks.audio import read_wav
from . import metrics, slicing
from .data import Labelled, Pairs, Problems, Retrieval
from .records import ClassFigures, Metric, SegmentCounts
from .records import Slice as SliceRecord
from .search import top_k, unit
from .signals import EXPECTED, Speech, Tensors

Echo = Callable[[str], None]
#: items per model call between progress lines, for long sets
CHUNK = 512


def _interval(name: str, iv: metrics.Interval) -> Metric:
    return Metric(name, iv.value, iv.low, iv.high)


def slices(
    by: str, keys: Sequence[str], per_item: np.ndarray, metric: str, kw: dict[str, Any], *, single: bool = True
) -> list[SliceRecord]:
    """The mean of PER_ITEM within each key's items, with its interval; none when every item has one key and
    SINGLE is off (a built-in slicing that does not cut the set only repeats the whole)."""
    out: list[SliceRecord] = []
    if not single and len(set(keys)) < 2:
        return out
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
    texts = [data.queries[q] for q in scored]
    return {
        "items": len(scored),
        "metrics": tuple(found),
        "slices": tuple(text_slices(model, "query ", texts, per_query[headline], headline, kw)),
        "per_item": tuple(float(x) for x in per_query[headline]),
    }


def text_slices(
    model: Any, prefix: str, texts: list[str], per_item: np.ndarray, metric: str, kw: dict[str, Any]
) -> list[SliceRecord]:
    """The built-in text slices: length in words, writing system, and the share of words the model's tokenizer
    splits or does not know (where the model has a tokenizer)."""
    found = slices(prefix + "length", [slicing.length_bucket(t) for t in texts], per_item, metric, kw, single=False)
    found += slices(prefix + "script", [slicing.script(t) for t in texts], per_item, metric, kw, single=False)
    tokenizer = getattr(getattr(model, "encoder", None), "tokenizer", None)
    if tokenizer is not None:
        shares = slicing.oov_shares(tokenizer, texts)
        keys = [slicing.oov_bucket(s) for s in shares]
        found += slices(prefix + "vocabulary", keys, per_item, metric, kw, single=False)
    return found


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
        found_slices += text_slices(model, "text ", [data.items[i] for i in keep], correct, "accuracy", kw)
    else:
        shapes = [slicing.image_shape(items[j]) for j in range(len(items)) if j not in bad_set]
        sizes = [slicing.side_bucket(s) for s in shapes]
        found_slices += slices("image size", sizes, correct, "accuracy", kw, single=False)
        found_slices += slices(
            "image aspect", [slicing.aspect_bucket(s) for s in shapes], correct, "accuracy", kw, single=False
        )
    cm = metrics.confusion(gold, predicted, len(labels))
    return {
        "items": n,
        "metrics": tuple(found),
        "slices": tuple(found_slices),
        "unscored": len(data.items) - n,
        "classes": classes,
        "confusion": tuple(tuple(int(x) for x in row) for row in cm),
        "per_item": tuple(float(x) for x in correct),
    }


def _outputs(model: Any, data: Tensors, batch_size: int, echo: Echo) -> dict[str, np.ndarray]:
    """The model's outputs named in the reference, for every item: in batches of BATCH_SIZE items along the first
    axis, or one item at a time when the model takes a fixed batch (its first batched call fails and one item's
    does not)."""
    missing = sorted(set(model.input_names) - set(data.inputs))
    if missing:
        raise TaskError(f"{data.files[0]}: has no array for the model's input(s) {', '.join(missing)}")
    unknown = sorted(set(data.expected) - set(model.output_names))
    if unknown:
        raise TaskError(
            f"{data.files[0]}: reference {', '.join(unknown)} is not an output of the model "
            f"(it gives {', '.join(model.output_names)})"
        )
    names = sorted(data.expected)
    n = data.items
    step = batch_size
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    start = 0
    while start < n:
        feeds = {k: data.inputs[k][start : start + step] for k in model.input_names}
        try:
            got = model.run(feeds, names)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors are not EdgertErrors
            if step == 1 or start:
                where = f"{data.files[0]}: items {start}-{start + step - 1}"
                raise TaskError(f"{where}: the model refused them ({exc})") from None
            step = 1  # a fixed batch of one: try again item by item
            continue
        for name in names:
            parts[name].append(np.asarray(got[name]))
        start += step
        if n > CHUNK and start % CHUNK < step:
            echo(f"    items {min(start, n):,}/{n:,}")
    out = {name: np.concatenate(parts[name]) for name in names}
    for name in names:
        if out[name].shape != data.expected[name].shape:
            raise TaskError(
                f"{data.files[0]}: output {name} is {out[name].shape} over the items, the reference "
                f"{EXPECTED}{name} is {data.expected[name].shape}"
            )
    return out


def tensors(
    model: Any, data: Tensors, wanted: Sequence[str], batch_size: int, kw: dict[str, Any], echo: Echo
) -> dict[str, Any]:
    """Each metric of WANTED (default: every one that applies) of each reference output, per item with its
    interval; a metric is named plainly for one reference output and ``metric_OUTPUT`` for several."""
    outputs = _outputs(model, data, batch_size, echo)
    found = []
    for output, got in outputs.items():
        reference = data.expected[output]
        for name in wanted or tuple(metrics.TENSOR_METRICS):
            per_item, _ = metrics.TENSOR_METRICS[name]
            try:
                values = per_item(got, reference)
            except ValueError:
                if wanted:
                    why = f"does not apply to output {output} of shape {got.shape[1:]}"
                    raise TaskError(f"metric {name} {why}") from None
                continue  # top1 of a regression output: not asked for, not scored
            label = name if len(outputs) == 1 else f"{name}_{identifier(output)}"
            found.append(_interval(label, metrics.mean_interval(values, **kw)))
    return {"items": data.items, "metrics": tuple(found)}


def identifier(name: str) -> str:
    """An output name as a budget can spell it (lower case letters, digits and _)."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


#: the frames speech is counted over, in seconds
FRAME = 0.01


def speech(model: Any, data: Speech, kw: dict[str, Any], echo: Echo, problems: Problems) -> dict[str, Any]:
    """Frame precision, recall and F1 (frames of FRAME seconds, pooled over the recordings) of the segments the
    model's ``detect`` finds against the reference, with intervals over recordings; and the segment counts. A
    recording whose sample rate is not the model's is skipped (resample it first)."""
    counts: list[tuple[int, int, int]] = []
    totals = {"reference": 0, "detected": 0, "matched": 0}
    for i, (name, path) in enumerate(data.recordings.items(), 1):
        try:
            samples, rate = read_wav(path)
        except EdgertError as exc:
            problems.add(path, 0, str(exc).removeprefix(f"{path}: "))
            continue
        if rate != model.sample_rate:
            problems.add(path, 0, f"{rate} Hz, the model takes {model.sample_rate} Hz (resample it, e.g. with sox)")
            continue
        found = model.detect(samples)
        reference = data.segments[name]
        seconds = len(samples) / rate
        framed = metrics.frames(found, seconds, FRAME), metrics.frames(reference, seconds, FRAME)
        counts.append(metrics.frame_counts(*framed))
        totals["reference"] += len(reference)
        totals["detected"] += len(found)
        totals["matched"] += sum(any(a < e and s < b for a, b in found) for s, e in reference)
        if len(data.recordings) > 20 and i % 20 == 0:
            echo(f"    recordings {i:,}/{len(data.recordings):,}")
    if not counts:
        raise TaskError(f"{data.name}: no recording could be scored ({problems.total} skipped)")
    c = np.asarray(counts, dtype=np.float64)
    boot = {key: kw[key] for key in ("draws", "level", "seed")}

    def pooled(j: int) -> Callable[[np.ndarray], float]:
        return lambda i: metrics.prf(*c[i].sum(0))[j]

    found_metrics = [
        _interval(name, metrics.bootstrap(pooled(j), len(c), **boot))
        for j, name in enumerate(("frame_precision", "frame_recall", "frame_f1"))
    ]
    return {
        "items": len(counts),
        "metrics": tuple(found_metrics),
        "segments": SegmentCounts(**totals),
        "unscored": len(data.recordings) - len(counts),
    }
