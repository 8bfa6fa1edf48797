"""`edgert eval` end to end: the readers' handling of bad rows, the metrics of real bundles against oracles
(sentence-transformers' vectors ranked and scored by trec_eval, scikit-learn on the pipeline's predictions, scipy
on the pairs), the budget's exit codes, the Pareto front and the JSON record."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgert.cli.main import main
from edgert.errors import BudgetError, DataError, RecordError
from edgert.eval import EvalOptions, decide, evaluate
from edgert.eval import slicing as slicing_of
from edgert.eval.data import read_labelled, read_pairs, read_retrieval
from edgert.eval.records import Cost, EvalResult, Evaluated, Metric

from . import evalsets
from .helpers import EMULATED

#: modules in the small retrieval set the CLI tests run on (the full set has 98)
SMALL = 40
#: the end-to-end runs embed hundreds of texts per variant, which takes many minutes under qemu; what they check
#: is NumPy and the CLI, which the x86_64 and Python 3.10 suites run natively
SLOW_UNDER_QEMU = pytest.mark.skipif(EMULATED, reason="end-to-end eval runs take many minutes under qemu")


@pytest.fixture(scope="module")
def stdlib_set(tmp_path_factory) -> Path:
    return evalsets.write_stdlib_beir(tmp_path_factory.mktemp("eval") / "stdlib")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return evalsets.write_stdlib_beir(tmp_path_factory.mktemp("eval") / "small", limit=SMALL)


def test_a_beir_folder_with_bad_rows_is_read_with_each_one_named_and_counted(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "text": "one"}\n{"_id": "d2", "title": "T", "text": "two"}\nnot json\n'
        '{"_id": "d1", "text": "again"}\n["a list"]\n{"_id": 3}\n\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tdx\t1\nqx\td1\t1\nq2\td2\thigh\nq2\td2\n q2\td2\t0\n"
    )
    data = read_retrieval(tmp_path)
    assert data.corpus == {"d1": "one", "d2": "T two"}
    assert data.qrels == {"q1": {"d1": 1}} and list(data.queries) == ["q1"]  # q2 has no relevant document
    shown = [str(p) for p in data.problems.shown]
    assert shown == [
        "corpus.jsonl:3: not JSON (Expecting value)",
        "corpus.jsonl:4: document 'd1' again (the first is kept)",
        "corpus.jsonl:5: a JSON list, not an object",
        "corpus.jsonl:6: no string _id and text",
        "test.tsv:3: document 'dx' is not in corpus.jsonl",
        "test.tsv:4: query 'qx' is not in queries.jsonl",
        "test.tsv:5: score 'high' is not a whole number",
        "test.tsv:6: 2 fields, not query-id, corpus-id, score",
        "test.tsv:7: query ' q2' is not in queries.jsonl",
    ]
    assert data.problems.total == 9
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdx\t1\n")
    with pytest.raises(DataError, match=r"no query with a relevant document \(5 rows skipped; first: corpus"):
        read_retrieval(tmp_path)
    with pytest.raises(DataError, match="not a BEIR folder"):
        read_retrieval(tmp_path / "qrels")


def test_tables_and_pairs_skip_bad_rows_and_refuse_an_empty_set(tmp_path):
    f = tmp_path / "items.csv"
    f.write_text("text,label,group\ngood,positive,a\n,negative,a\nalso good,negative,b\nextra,positive,b,x\n")
    data = read_labelled(f, slice_by="group")
    assert (data.items, data.labels, data.slices) == (["good", "also good"], ["positive", "negative"], ["a", "b"])
    assert [str(p) for p in data.problems.shown] == [
        "items.csv:3: no 'text' and 'label'",
        "items.csv:5: 4 fields, the header has 3",
    ]
    j = tmp_path / "items.jsonl"
    j.write_text('{"text": "x", "label": 1}\n{"text": "y"}\n')
    assert read_labelled(j).labels == ["1"]
    (tmp_path / "empty.csv").write_text("text,label\n,\n")
    with pytest.raises(DataError, match=r"empty.csv: no row with 'text' and 'label' \(1 rows skipped"):
        read_labelled(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="reads .jsonl, .csv and .tsv"):
        read_labelled(tmp_path / "items.txt")
    p = tmp_path / "pairs.tsv"
    p.write_text("sentence1\tsentence2\tscore\na\tb\t1\nc\td\tnan\ne\tf\t2\ng\th\t3.5\n")
    pairs = read_pairs(p)
    assert pairs.scores == [1.0, 2.0, 3.5] and pairs.problems.total == 1
    (tmp_path / "bad.csv").write_bytes(b"text,label\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_labelled(tmp_path / "bad.csv")


def test_retrieval_scores_equal_trec_eval_on_sentence_transformers_vectors(minilm_bundle, st_model, stdlib_set):
    """The oracle ranks the documents with sentence-transformers' own vectors and scores the ranking with
    trec_eval; edgert's fp32 variant must give the same nDCG@10, recall@10 and MRR@10."""
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="the oracle is pytrec-eval-terrier (the dev extra)")
    result = evaluate([minilm_bundle], EvalOptions(data=stdlib_set, variants=("fp32",), cost=False))
    data = read_retrieval(stdlib_set)
    docs, queries = list(data.corpus), list(data.queries)
    d = st_model.encode([data.corpus[x] for x in docs], normalize_embeddings=True)
    q = st_model.encode([data.queries[x] for x in queries], normalize_embeddings=True)
    scores = q @ d.T
    run = {qid: {docs[j]: float(scores[i, j]) for j in range(len(docs))} for i, qid in enumerate(queries)}
    top = {qid: dict(sorted(r.items(), key=lambda kv: -kv[1])[:10]) for qid, r in run.items()}
    oracle = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut_10", "recall_10"}).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(data.qrels, {"recip_rank"}).evaluate(top)
    (fp32,) = result.results
    for ours, theirs in (("ndcg@10", "ndcg_cut_10"), ("recall@10", "recall_10")):
        assert fp32.metric(ours).value == pytest.approx(np.mean([o[theirs] for o in oracle.values()]), abs=2e-3)
    assert fp32.metric("mrr@10").value == pytest.approx(np.mean([o["recip_rank"] for o in rr.values()]), abs=2e-3)
    assert result.dataset.items == 98 and fp32.items == 98
    m = fp32.metric("ndcg@10")
    assert m.low < m.value < m.high and m.high - m.low < 0.2
    worst = fp32.worst_slice()
    assert worst is not None and worst.metric.value == min(s.metric.value for s in fp32.slices)
    by = {s.by for s in fp32.slices}
    assert {"query length", "query vocabulary"} <= by  # the stdlib's queries are all Latin script: one key, not shown
    for slicing in by:  # each slicing cuts the 98 queries into parts, and each part's mean is its queries' mean
        assert sum(s.items for s in fp32.slices if s.by == slicing) == 98
    per_query = np.asarray(fp32.per_item)
    assert per_query.mean() == pytest.approx(m.value)
    keys = [slicing_of.length_bucket(data.queries[q]) for q in sorted(data.qrels)]
    for s in (s for s in fp32.slices if s.by == "query length"):
        assert s.metric.value == pytest.approx(per_query[[k == s.key for k in keys]].mean())


def test_similarity_equals_scipy_on_sentence_transformers_cosines(minilm_bundle, st_model, tmp_path):
    stats = pytest.importorskip("scipy.stats")
    path = evalsets.write_pairs(tmp_path / "pairs.csv")
    result = evaluate([minilm_bundle], EvalOptions(data=path, variants=("fp32",), cost=False))
    a = st_model.encode([p[0] for p in evalsets.PAIRS], normalize_embeddings=True)
    b = st_model.encode([p[1] for p in evalsets.PAIRS], normalize_embeddings=True)
    gold = [p[2] for p in evalsets.PAIRS]
    cos = np.sum(a * b, axis=1)
    (fp32,) = result.results
    assert fp32.metric("spearman").value == pytest.approx(stats.spearmanr(cos, gold).statistic, abs=2e-3)
    assert fp32.metric("pearson").value == pytest.approx(stats.pearsonr(cos, gold).statistic, abs=2e-3)
    assert result.headline == "spearman"


def test_classification_equals_scikit_learn_on_the_pipelines_own_predictions(classifier_bundle, tmp_path):
    sk = pytest.importorskip("sklearn.metrics", reason="the oracle is scikit-learn (the dev extra)")
    import edgert

    texts = [f"sentence number {i} about {w}" for i, w in enumerate(["cats", "rain", "stocks", "trains"] * 15)]
    model = edgert.load(classifier_bundle, variant="fp32")
    predicted = model.scores(texts).argmax(1)
    rng = np.random.default_rng(0)
    gold = np.where(rng.random(len(texts)) < 0.5, predicted, rng.integers(0, 3, len(texts)))
    rows = [{"text": t, "label": model.labels[g], "group": t.split()[-1]} for t, g in zip(texts, gold)]
    rows.append({"text": "a label it does not have", "label": "sarcastic", "group": "x"})
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate([classifier_bundle], EvalOptions(data=path, slice_column="group", cost=False))
    r = next(x for x in result.results if x.variant == "fp32")
    assert len(result.results) == 2 and result.dataset.skipped == 1  # found by both variants, counted once
    assert r.items == len(texts) and r.unscored == 1
    assert r.metric("accuracy").value == pytest.approx(sk.accuracy_score(gold, predicted))
    assert r.metric("macro_f1").value == pytest.approx(sk.f1_score(gold, predicted, average="macro", zero_division=0))
    np.testing.assert_array_equal(r.confusion, sk.confusion_matrix(gold, predicted, labels=range(3)))
    assert [c.support for c in r.classes] == np.bincount(gold, minlength=3).tolist()
    assert {s.key for s in r.slices if s.by == "column"} == {"cats", "rain", "stocks", "trains"}
    assert (
        "items.jsonl: label 'sarcastic' (1 item) is not one the model has (negative, neutral, positive)"
        in result.dataset.problems
    )


def _evaluated(label: str, ndcg: tuple[float, float, float], p50: float | None) -> Evaluated:
    cost = Cost(p50=p50, rss=100.0) if p50 is not None else None
    return Evaluated(label, "v", "0" * 64, 10, (Metric("ndcg@10", *ndcg),), cost=cost)


def test_the_front_and_the_budget_judge_on_the_interval_and_pick_the_cheapest():
    a = _evaluated("a", (0.85, 0.80, 0.90), 10.0)  # best quality, slowest
    b = _evaluated("b", (0.84, 0.78, 0.89), 6.0)  # a little worse, faster: on the front
    c = _evaluated("c", (0.80, 0.70, 0.88), 7.0)  # worse and slower than b: dominated
    assert decide.front([a, b, c], "ndcg@10") == ("a:v", "b:v")
    assert decide.front([a, _evaluated("d", (0.9, 0.8, 0.95), None)], "ndcg@10") == ()  # no cost: no front
    d = decide.decide("ndcg@10>=0.79,p50<=12ms", [a, b, c])
    assert d.chosen == "a:v"  # b's mean meets 0.79, but its lower bound 0.78 does not
    checks = {(x.variant, x.limit): (x.measured, x.passed) for x in d.checks}
    assert checks[("b:v", "ndcg@10>=0.79")] == (0.78, False) and checks[("b:v", "p50<=12ms")] == (6.0, True)
    assert decide.decide("ndcg@10>=0.79,p50<=9ms", [a, b, c]).chosen is None  # a is too slow
    d = decide.decide("ndcg@10>=0.75", [a, b, c])
    assert d.chosen == "b:v"
    assert decide.decide("ndcg@10>=0.95", [a, b]).chosen is None
    with pytest.raises(BudgetError, match="this set's metrics are ndcg@10"):
        decide.decide("accuracy>=0.9", [a])
    with pytest.raises(BudgetError, match="cannot parse"):
        decide.split("ndcg@10 is high")
    quality, cost = decide.split("macro_f1>=0.5, ece<=0.1,rss<=150MB")
    assert [(q.metric, q.op, q.value) for q in quality] == [("macro_f1", ">=", 0.5), ("ece", "<=", 0.1)]
    assert [c.metric for c in cost] == ["rss"]


@SLOW_UNDER_QEMU
def test_budget_exit_codes_and_one_line_errors(minilm_bundle, small_set, tmp_path, capsys):
    out = tmp_path / "eval.json"
    base = ["eval", str(minilm_bundle), "--data", str(small_set), "--no-cost", "--draws", "200"]
    assert main([*base, "--budget", "ndcg@10>=0.5", "--json", str(out)]) == 0
    assert "chosen:" in capsys.readouterr().out
    result = EvalResult.from_json(json.loads(out.read_text()))
    assert result.decision is not None and result.decision.chosen is not None
    assert {r.variant for r in result.results} == set(json.loads((minilm_bundle / "edgert.json").read_text())["models"])
    assert main([*base, "--budget", "ndcg@10>=0.99"]) == 1
    assert "no variant meets it" in capsys.readouterr().out
    assert main([*base, "--budget", "p95<=20ms"]) == 2
    assert "--no-cost turns off" in capsys.readouterr().err
    assert main([*base, "--budget", "accuracy>=0.9"]) == 2
    err = capsys.readouterr().err
    assert "this set's metrics are ndcg@10, recall@10, mrr@10" in err and "scoring" not in err  # before any work
    assert main(["eval", str(minilm_bundle), "--data", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@SLOW_UNDER_QEMU
def test_the_result_record_round_trips_and_a_bad_file_is_one_line(minilm_bundle, small_set, tmp_path):
    result = evaluate([minilm_bundle], EvalOptions(data=small_set, variants=("fp32",), cost=False, draws=200))
    data = result.to_json()
    assert data["schema"] == "edgert.eval/2"
    assert EvalResult.from_json(json.loads(json.dumps(data))) == result
    v1 = {k: v for k, v in json.loads(json.dumps(data)).items()}
    for r in v1["results"]:  # version 1 had neither field
        del r["segments"], r["per_item"]
    assert EvalResult.from_json({**v1, "schema": "edgert.eval/1"}) == replace(
        result, results=tuple(replace(r, per_item=()) for r in result.results)
    )
    data["results"][0]["metrics"][0]["value"] = "high"
    with pytest.raises(RecordError, match=r"eval result: .*results.*metrics.*value"):
        EvalResult.from_json(data)
    with pytest.raises(RecordError, match="schema 'edgert.bench/2'"):
        EvalResult.from_json({"schema": "edgert.bench/2"})


@SLOW_UNDER_QEMU
def test_a_task_the_set_does_not_fit_is_refused_naming_both(classifier_bundle, small_set):
    from edgert.errors import TaskError

    with pytest.raises(TaskError, match="a text-classification bundle is not scored on a retrieval set"):
        evaluate([classifier_bundle], EvalOptions(data=small_set, cost=False))


def test_an_image_folder_tree_is_scored_like_scikit_learn_and_a_bad_file_costs_only_itself(vit_bundle, tmp_path):
    """One folder per label (ImageFolder); an undecodable .png and a README are skipped and counted, the rest
    scored. The oracle is scikit-learn on the pipeline's own predictions for the same files."""
    sk = pytest.importorskip("sklearn.metrics", reason="the oracle is scikit-learn (the dev extra)")
    Image = pytest.importorskip("PIL.Image")
    import edgert

    model = edgert.load(vit_bundle, variant="fp32")
    rng = np.random.default_rng(5)
    files, gold = [], []
    for c, label in enumerate(model.labels):
        (tmp_path / "set" / label).mkdir(parents=True)
        for i in range(6):
            path = tmp_path / "set" / label / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
            files.append(path)
            gold.append(c)
    (tmp_path / "set" / model.labels[0] / "broken.png").write_bytes(b"not a png")
    (tmp_path / "set" / model.labels[0] / "README.txt").write_text("notes")
    result = evaluate([vit_bundle], EvalOptions(data=tmp_path / "set", variants=("fp32",), cost=False, batch_size=4))
    (r,) = result.results
    predicted = model.scores([str(f) for f in files]).argmax(1)
    order = sorted(range(len(files)), key=lambda i: (gold[i], files[i].name))  # the reader's order
    assert r.items == len(files) and r.unscored == 1
    assert r.metric("accuracy").value == pytest.approx(sk.accuracy_score(gold, predicted))
    np.testing.assert_array_equal(r.confusion, sk.confusion_matrix(np.array(gold)[order], predicted[order]))
    assert result.dataset.skipped == 2
    assert any("README.txt: in" in p for p in result.dataset.problems)
    assert any("broken.png' could not be scored" in p for p in result.dataset.problems)


@pytest.mark.skipif(EMULATED, reason="bench's timed runs take minutes under qemu and mean nothing there")
def test_cost_comes_from_a_real_bench_run_and_the_report_says_how_energy_was_had(
    minilm_bundle, small_set, capsys, tmp_path
):
    """With cost on, each variant carries bench's quick figures; the report names the energy meter, and says
    ESTIMATED when there is none; the Markdown report has the tables, and the plot is a real image of two panels."""
    md, png = tmp_path / "eval.md", tmp_path / "eval.png"
    argv = ["eval", str(minilm_bundle), "--data", str(small_set), "--variants", "int8", "--draws", "200"]
    assert main([*argv, "--markdown", str(md), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    result = evaluate([minilm_bundle], EvalOptions(data=small_set, variants=("int8",), draws=200))
    (r,) = result.results
    c = r.cost
    assert c is not None and c.p50 is not None and c.p95 is not None and 0 < c.p50 <= c.p95
    assert c.rss is not None and c.rss > 0 and c.throughput is not None and c.throughput > 0
    assert result.front == (r.label,)  # one variant: nothing beats it
    if c.energy_meter == "estimate":
        assert "energy per item: ESTIMATED from CPU time" in printed
    else:
        assert f"energy per item: measured ({c.energy_meter})" in printed
    text = md.read_text()
    assert (
        text.startswith("# edgert eval: retrieval set small")
        and "## Quality" in text
        and "## Cost on this device" in text
    )
    row = next(line for line in text.splitlines() if line.startswith(f"| {r.label} |") and "[" in line)
    assert row.count("|") == 5  # variant and the three retrieval metrics, each with its interval
    from PIL import Image

    with Image.open(png) as im:  # quality against p50, and against energy
        assert im.format == "PNG" and im.size[0] == 1300 and abs(im.size[1] - 460) <= 2  # matplotlib rounds
    assert main([*argv, "--markdown"]) == 0  # to stdout, instead of the tables
    shown = capsys.readouterr().out
    assert shown.startswith("# edgert eval") and "┃" not in shown


@SLOW_UNDER_QEMU
def test_card_writes_each_variant_into_the_card_replacing_only_its_own_entry(minilm_bundle, small_set, tmp_path):
    """--card keeps every file hash (the bundle still verifies), writes one entry per variant with the metrics
    the result holds, replaces that entry on a second run of the same set, and edgert inspect shows it."""
    import shutil

    from edgert import Bundle
    from edgert.cli.render import card_rows

    copy = Path(shutil.copytree(minilm_bundle, tmp_path / "minilm"))
    before = json.loads((copy / "edgert.json").read_text())
    result = evaluate([copy], EvalOptions(data=small_set, cost=False, draws=200, card=True))
    after = Bundle.open(copy, verify=True)  # every file hash still holds
    entries = after.card["evaluations"]
    assert {e["variant"] for e in entries} == set(before["models"])
    for r in result.results:
        (e,) = [e for e in entries if e["variant"] == r.variant]
        assert e["metrics"]["ndcg@10"] == {"value": r.metric("ndcg@10").value, "low": r.metric("ndcg@10").low,
                                           "high": r.metric("ndcg@10").high}  # fmt: skip
        assert e["dataset_sha256"] == result.dataset.sha256 and e["model_sha256"] == r.model_sha256
    assert json.loads((copy / "edgert.json").read_text())["files"] == before["files"]
    evaluate([copy], EvalOptions(data=small_set, variants=("fp32",), cost=False, draws=200, seed=1, card=True))
    again = Bundle.open(copy).card["evaluations"]
    assert len(again) == len(entries)  # the fp32 entry replaced, the other kept
    assert [e for e in again if e["variant"] != "fp32"] == [e for e in entries if e["variant"] != "fp32"]
    rows = dict(card_rows(Bundle.open(copy)))
    assert rows["eval fp32"].startswith("ndcg@10 ") and "on small (40 items" in rows["eval fp32"]
