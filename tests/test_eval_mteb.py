"""An edgert bundle scored by mteb itself (mteb 2's evaluate, with a retrieval task over the standard library's
docstrings built locally, no download): mteb's nDCG@10, recall@10 and MRR@10 of the bundle equal edgert eval's
on the same set, and mteb's own sentence-transformers wrapper of the same model gives the same scores."""

from __future__ import annotations

import pytest

from edgert.eval import EvalOptions, evaluate
from edgert.eval.data import read_retrieval

from . import evalsets
from .helpers import EMULATED

mteb = pytest.importorskip("mteb", reason="mteb (the dev extra) is the oracle")
pytestmark = pytest.mark.skipif(EMULATED, reason="mteb needs torch, which the aarch64 lane has not")


def _task(folder):
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    data = read_retrieval(folder)

    class StdlibRetrieval(AbsTaskRetrieval):
        metadata = TaskMetadata(
            type="Retrieval", name="EdgertStdlibRetrieval", main_score="ndcg_at_10",
            description="Python standard library module summaries against their docstrings",
            reference="https://docs.python.org/3/library/", dataset={"path": "NA", "revision": "NA"},
            category="t2t", eval_splits=["test"], eval_langs=["eng-Latn"], date=("2026-12-01", "2026-12-01"),
            dialect=[], domains=[], task_subtypes=[], license="not specified", annotations_creators="derived",
            modalities=["text"], sample_creation="found", bibtex_citation="",
        )  # fmt: skip

        def load_data(self, num_proc=None, **kwargs):
            split = RetrievalSplitData(
                queries=Dataset.from_list([{"id": q, "text": t} for q, t in data.queries.items()]),
                corpus=Dataset.from_list([{"id": d, "text": t} for d, t in data.corpus.items()]),
                relevant_docs=data.qrels,
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return StdlibRetrieval()


def test_mteb_scores_an_edgert_bundle_as_edgert_eval_does(minilm_bundle, minilm_dir, tmp_path):
    from edgert.eval.encoder import MtebEncoder

    folder = evalsets.write_stdlib_beir(tmp_path / "stdlib", limit=60)
    ours = evaluate([minilm_bundle], EvalOptions(data=folder, variants=("fp32",), cost=False)).results[0]
    encoder = MtebEncoder(minilm_bundle, variant="fp32")
    run = mteb.evaluate(encoder, tasks=[_task(folder)], cache=None, show_progress_bar=False)
    (scores,) = run.task_results[0].scores["test"]
    for theirs, name in (("ndcg_at_10", "ndcg@10"), ("recall_at_10", "recall@10"), ("mrr_at_10", "mrr@10")):
        assert scores[theirs] == pytest.approx(ours.metric(name).value, abs=2e-3), name
    st = pytest.importorskip("sentence_transformers")
    reference = mteb.evaluate(
        st.SentenceTransformer(str(minilm_dir), device="cpu"), tasks=[_task(folder)], cache=None,
        show_progress_bar=False,
    )  # fmt: skip
    assert reference.task_results[0].scores["test"][0]["ndcg_at_10"] == pytest.approx(scores["ndcg_at_10"], abs=2e-3)
    meta = encoder.mteb_model_meta
    assert meta.name == "edgert/minilm-fp32" and meta.embed_dim == 384
