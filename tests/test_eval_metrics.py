"""edgert.eval's metrics, search and bootstrap against independent implementations: trec_eval (pytrec-eval) for
retrieval, scikit-learn for classification, scipy for correlations, a brute-force sort for top-k, and a simulation
for the intervals' coverage."""

from __future__ import annotations

import numpy as np
import pytest

from edgert.eval import metrics, search


def _random_run(rng: np.random.Generator, queries: int = 40, docs: int = 60):
    qrels, run = {}, {}
    for q in range(queries):
        judged = rng.choice(docs, size=int(rng.integers(1, 8)), replace=False)
        grades = rng.integers(0, 4, size=len(judged))
        if q % 7 == 0:
            grades[:] = 0  # no relevant document: not scored, by either
        qrels[f"q{q}"] = {f"d{d}": int(g) for d, g in zip(judged, grades)}
        scores = rng.permutation(docs)[: int(rng.integers(5, 30))]  # distinct: no ties to order differently
        run[f"q{q}"] = {f"d{d}": float(docs - i) for i, d in enumerate(scores)}
    return qrels, run


@pytest.mark.parametrize("k", [1, 5, 10])
def test_retrieval_metrics_equal_trec_eval(k):
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="the oracle is pytrec-eval-terrier (the dev extra)")
    rng = np.random.default_rng(k)
    qrels, run = _random_run(rng)
    ranked = {q: sorted(d, key=lambda x: -d[x]) for q, d in run.items()}
    ours = metrics.retrieval_per_query(ranked, qrels, k)
    top = {q: {d: run[q][d] for d in docs[:k]} for q, docs in ranked.items()}  # recip_rank has no cut-off
    oracle = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut_{k}", f"recall_{k}"}).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)
    scored = sorted(q for q in qrels if any(g > 0 for g in qrels[q].values()))
    assert len(ours[f"ndcg@{k}"]) == len(scored) < len(qrels)
    np.testing.assert_allclose(ours[f"ndcg@{k}"], [oracle[q][f"ndcg_cut_{k}"] for q in scored], atol=1e-4)
    np.testing.assert_allclose(ours[f"recall@{k}"], [oracle[q][f"recall_{k}"] for q in scored], atol=1e-4)
    np.testing.assert_allclose(ours[f"mrr@{k}"], [rr[q]["recip_rank"] for q in scored], atol=1e-4)


def test_classification_metrics_equal_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics", reason="the oracle is scikit-learn (the dev extra)")
    rng = np.random.default_rng(0)
    classes = 5
    gold = rng.integers(0, classes - 1, 300)  # class 4 never gold
    predicted = np.where(rng.random(300) < 0.6, gold, rng.integers(0, classes, 300))
    predicted[predicted == 3] = 2  # class 3 never predicted: precision 0, as zero_division=0 says
    cm = metrics.confusion(gold, predicted, classes)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(gold, predicted, labels=range(classes)))
    p, r, f = metrics.per_class(gold, predicted, classes)
    ps, rs, fs, _ = sk.precision_recall_fscore_support(gold, predicted, labels=range(classes), zero_division=0)
    np.testing.assert_allclose((p, r, f), (ps, rs, fs), atol=1e-12)
    assert metrics.macro_f1(gold, predicted, classes) == pytest.approx(
        sk.f1_score(gold, predicted, average="macro", zero_division=0), abs=1e-12
    )


def test_calibration_error_equals_a_plain_loop():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    gold = np.where(rng.random(500) < 0.98, probs.argmax(1), rng.integers(0, 4, 500))  # a confident model
    probs[0], gold[0] = [1.0, 0, 0, 0], 1  # a confidence of exactly 1 belongs to the last bin (wrong, here)
    bins = [[] for _ in range(15)]
    for p, g in zip(probs, gold):
        c = max(p)
        bins[min(int(c * 15), 14)].append((c, int(np.argmax(p)) == g))
    expected = sum(len(b) * abs(np.mean([x[1] for x in b]) - np.mean([x[0] for x in b])) for b in bins if b) / 500
    assert metrics.calibration_error(probs, gold) == pytest.approx(expected, abs=1e-12)


def test_correlations_equal_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, 80).astype(float)  # many ties
    y = x + rng.normal(size=80)
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    np.testing.assert_array_equal(metrics.ranks(x), stats.rankdata(x))


@pytest.mark.parametrize("block", [search.BLOCK, 50])
def test_top_k_equals_a_full_sort(monkeypatch, block):
    """With blocks of 50 cells the search merges many partial top-k lists; the result is the full sort's."""
    monkeypatch.setattr(search, "BLOCK", block)
    rng = np.random.default_rng(3)
    q, d = rng.normal(size=(23, 16)), rng.normal(size=(101, 16))
    index, scores = search.top_k(q, d, 7)
    cos = search.unit(q) @ search.unit(d).T
    expected = np.argsort(-cos, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(cos, expected, 1), rtol=1e-5)
    assert search.top_k(q, d[:3], 10)[0].shape == (23, 3)  # k capped at the documents there are


def test_bootstrap_intervals_cover_the_true_value_at_about_the_nominal_rate():
    """300 samples of 200 Bernoulli(0.3) items: a 95% interval should hold 0.3 in about 95% of them (the
    percentile bootstrap runs a little under nominal at this size). Seeds are fixed, so this cannot flake."""
    rng = np.random.default_rng(4)
    hits_mean = hits_generic = 0
    for trial in range(300):
        x = (rng.random(200) < 0.3).astype(float)
        iv = metrics.mean_interval(x, draws=400, seed=trial)
        hits_mean += iv.low <= 0.3 <= iv.high
        if trial < 100:
            g = metrics.bootstrap(lambda i, x=x: float(x[i].mean()), 200, draws=400, seed=trial)
            hits_generic += g.low <= 0.3 <= g.high
    assert 0.91 <= hits_mean / 300 <= 0.98
    assert 0.88 <= hits_generic / 100 <= 1.0
    wide = metrics.mean_interval(x[:20], draws=400)
    narrow = metrics.mean_interval(np.tile(x, 10), draws=400)
    assert wide.high - wide.low > 3 * (narrow.high - narrow.low)  # width shrinks with the square root of n


def test_bootstrap_is_reproducible_and_checks_its_inputs():
    x = np.arange(50, dtype=float)
    assert metrics.mean_interval(x, seed=7) == metrics.mean_interval(x, seed=7)
    assert metrics.mean_interval(x, seed=7) != metrics.mean_interval(x, seed=8)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.mean_interval(np.array([]))
    with pytest.raises(ValueError, match="no items"):
        metrics.bootstrap(lambda i: 0.0, 0)
