"""Task metrics in NumPy, each from per-item values so that a bootstrap can resample items, and the bootstrap.

Retrieval follows trec_eval (what pytrec-eval, BEIR and mteb report): nDCG@k with linear gains and a log2 discount
over the ranked run, the ideal ranking taken from the qrels; recall@k over the documents judged relevant (grade
> 0); MRR@k, the reciprocal rank of the first relevant document within the top k. A query with no relevant document
is not scored. Classification follows scikit-learn (macro-F1 over the labels seen in the gold or the predictions,
0 where a class is never predicted); calibration error is the expected calibration error over equal-width bins
of the top probability.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: draws per interval: the interval's ends move by about 0.5% of its width between seeds at this count
BOOTSTRAP_DRAWS = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A metric's value on the whole set and its percentile-bootstrap interval."""

    value: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] is empty")


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = LEVEL,
    seed: int = 0,
) -> Interval:
    """STATISTIC (a function of an index array over N items) on all items, with the percentile interval of its
    values over DRAWS resamples of the items with replacement."""
    if n < 1:
        raise ValueError("no items to evaluate")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(draws)], dtype=np.float64)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(statistic(np.arange(n))), float(low), float(high))


def mean_interval(per_item: np.ndarray, **kw: float | int) -> Interval:
    """The mean of per-item values (accuracy, nDCG, recall, reciprocal rank) with its bootstrap interval, drawn in
    blocks so that memory stays bounded for large sets."""
    x = np.asarray(per_item, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("per-item values must be a non-empty vector")
    draws, level, seed = int(kw.get("draws", BOOTSTRAP_DRAWS)), float(kw.get("level", LEVEL)), int(kw.get("seed", 0))
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // len(x))
    means = np.concatenate(
        [x[rng.integers(0, len(x), (min(block, draws - i), len(x)))].mean(1) for i in range(0, draws, block)]
    )
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(x.mean()), float(low), float(high))


# --- retrieval ---------------------------------------------------------------------------------------------------


def retrieval_per_query(
    ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, np.ndarray]:
    """Per query with at least one relevant document (in sorted id order): ndcg@k, recall@k and mrr@k of the
    ranked document ids RANKED[q] (best first) against graded judgements QRELS[q][doc]. A query missing from RANKED
    scores 0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall, mrr = [], [], []
    for q in sorted(qrels):
        judged = qrels[q]
        relevant = {d for d, g in judged.items() if g > 0}
        if not relevant:
            continue
        top = list(ranked.get(q, ()))[:k]
        gains = np.array([max(judged.get(d, 0), 0) for d in top], dtype=np.float64)
        ideal = np.sort(np.array([g for g in judged.values() if g > 0], dtype=np.float64))[::-1][:k]
        dcg = float(gains @ discounts[: len(gains)])
        ndcg.append(dcg / float(ideal @ discounts[: len(ideal)]))
        recall.append(sum(d in relevant for d in top) / len(relevant))
        first = next((i for i, d in enumerate(top) if d in relevant), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    return {f"ndcg@{k}": np.array(ndcg), f"recall@{k}": np.array(recall), f"mrr@{k}": np.array(mrr)}


# --- classification ----------------------------------------------------------------------------------------------


def confusion(gold: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """classes x classes counts, gold along rows (scikit-learn's layout)."""
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (gold, predicted), 1)
    return out


def per_class(gold: np.ndarray, predicted: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class, 0 where undefined (scikit-learn's zero_division=0)."""
    cm = confusion(gold, predicted, classes)
    tp = np.diag(cm).astype(np.float64)
    predicted_n, gold_n = cm.sum(0).astype(np.float64), cm.sum(1).astype(np.float64)
    precision = np.divide(tp, predicted_n, out=np.zeros(classes), where=predicted_n > 0)
    recall = np.divide(tp, gold_n, out=np.zeros(classes), where=gold_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(classes), where=denom > 0)
    return precision, recall, f1


def macro_f1(gold: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Mean F1 over the classes that occur in the gold labels or the predictions."""
    seen = np.union1d(gold, predicted)
    return float(per_class(gold, predicted, classes)[2][seen].mean())


def calibration_error(probabilities: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: over equal-width bins of the top probability, the item-weighted mean gap
    between the bin's accuracy and its mean confidence."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == gold).astype(np.float64)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)  # a confidence of 1.0 falls in the top bin
    total = 0.0
    for b in np.unique(index):
        members = index == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(gold))


# --- similarity --------------------------------------------------------------------------------------------------


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64) - np.mean(x), np.asarray(y, np.float64) - np.mean(y)
    denom = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / denom if denom > 0 else 0.0


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # ranks start..end-1, 1-based
    out = np.empty(len(x), dtype=np.float64)
    out[order] = np.repeat(average, ends - starts)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


# --- raw models against a reference ------------------------------------------------------------------------------


def _rows(a: np.ndarray) -> np.ndarray:
    """ITEMS x values: each item's output flattened."""
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def squared_error(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per item, the mean squared difference over its values (scikit-learn's mean_squared_error per row)."""
    d = _rows(output) - _rows(reference)
    return np.asarray((d * d).mean(1))


def absolute_error(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per item, the mean absolute difference over its values."""
    return np.asarray(np.abs(_rows(output) - _rows(reference)).mean(1))


def top1_agreement(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per item, the share of its rows (along the last axis: the classes) whose arg-max agrees with the
    reference's; an item of one row of scores is 1 or 0."""
    a, b = np.asarray(output), np.asarray(reference)
    if a.ndim < 2 or a.shape[-1] < 2:
        raise ValueError(f"top1 needs scores along a last axis of 2 or more, got shape {a.shape[1:]} per item")
    agree = a.argmax(-1) == b.argmax(-1)
    return np.asarray(agree.reshape(len(a), -1).mean(1), dtype=np.float64)


#: raw-model metrics by name: (per-item function, lower is better)
TENSOR_METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]] = {
    "mse": (squared_error, True),
    "mae": (absolute_error, True),
    "top1": (top1_agreement, False),
}


# --- speech segments ---------------------------------------------------------------------------------------------


def frames(segments: Sequence[tuple[float, float]], seconds: float, step: float) -> np.ndarray:
    """A boolean per frame of STEP seconds over SECONDS of audio: whether the frame's centre is inside a segment."""
    n = max(0, int(np.ceil(seconds / step - 1e-9)))
    centres = (np.arange(n) + 0.5) * step
    inside = np.zeros(n, dtype=bool)
    for start, end in segments:
        inside |= (centres >= start) & (centres < end)
    return inside


def frame_counts(found: np.ndarray, reference: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) over frames."""
    f, r = np.asarray(found, bool), np.asarray(reference, bool)
    return int((f & r).sum()), int((f & ~r).sum()), int((~f & r).sum())


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts, 0 where undefined."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
