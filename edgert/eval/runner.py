"""``edgert.evaluate``: each variant of each bundle on one evaluation set, its metrics with intervals and its cost
on this device measured by bench, the Pareto front, and the budget's decision."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import TaskError
from ..options import check
from . import data as datasets
from . import decide, score, signals
from .metrics import TENSOR_METRICS
from .options import EvalOptions
from .records import Cost, Dataset, EvalResult, Evaluated

#: the metric the front and the report lead with (tensors: the first metric asked for, else mse)
HEADLINE = {
    "retrieval": "ndcg@{k}", "similarity": "spearman", "classification": "accuracy", "tensors": "mse",
    "speech": "frame_f1",
}  # fmt: skip
#: every metric a set of each kind is scored on (what a budget may name)
METRICS = {
    "retrieval": ("ndcg@{k}", "recall@{k}", "mrr@{k}"),
    "similarity": ("spearman", "pearson"),
    "classification": ("accuracy", "macro_f1", "ece"),
    "tensors": tuple(TENSOR_METRICS),
    "speech": ("frame_precision", "frame_recall", "frame_f1"),
}
#: texts bench times per variant: the set's own, so cost is measured on the lengths being judged
COST_TEXTS = 256


def _read(path: Path, options: EvalOptions, image: bool) -> tuple[str, Any]:
    reader = datasets.looks_like(path)
    if reader == "retrieval":
        return "retrieval", datasets.read_retrieval(path, options.split)
    if reader == "pairs":
        return "similarity", datasets.read_pairs(path)
    if reader == "images":
        return "classification", datasets.read_image_folder(path)
    if reader == "tensors":
        return "tensors", signals.read_tensors(path)
    if reader == "speech":
        return "speech", signals.read_speech(path)
    column = "image" if image and options.text_column == "text" else options.text_column  # images: "image" by default
    return "classification", datasets.read_labelled(path, column, options.label_column, options.slice_column)


def _sha256(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        inner = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                inner.update(block)
        h.update(f"{f.name} {inner.hexdigest()}\n".encode())
    return h.hexdigest()


def _texts(kind: str, data: Any) -> list[str]:
    if kind == "retrieval":
        return [*data.queries.values(), *data.corpus.values()]
    if kind == "similarity":
        return [*data.first, *data.second]
    return list(data.items) if kind == "classification" else []


def _cost(bundle: Path, variant: str, texts: list[str], echo: score.Echo) -> Cost:
    """bench's quick run on this variant (its default thread setting, batch 1). Text bundles are timed on the set's
    own texts, so that cost is measured on the lengths being judged; image bundles on bench's own input."""
    from ..bench import runner
    from ..bench.config import QUICK, BenchConfig

    spread = texts[:: max(1, len(texts) // COST_TEXTS)][:COST_TEXTS]  # queries and documents alike, say
    lines = [t for t in (" ".join(t.split()) for t in spread) if t]
    echo(
        f"  {bundle.name}:{variant}: cost, edgert bench --quick"
        + (f" on {len(lines)} of the set's texts" if lines else "")
    )
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        given = {"input_file": Path(f.name)} if lines else {}
        config = BenchConfig(target=bundle, variant=variant, batch_sizes=(1,), **given, **QUICK)  # type: ignore[arg-type]
        result = runner.run(config)
    s = result.summary()
    meter = result.energy.meter if result.energy is not None else None
    return Cost(p50=s.p50, p95=s.p95, rss=s.rss, energy=s.energy, throughput=s.throughput, energy_meter=meter)


def evaluate(
    bundles: Sequence[str | Path],
    options: EvalOptions,
    *,
    budget: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> EvalResult:
    """Evaluates every variant (``options.variants``, else all) of every bundle on ``options.data``."""
    from ..api import load
    from ..bundle import Bundle
    from ..device import describe, versions
    from ..tasks import registry

    say = echo or (lambda _: None)
    if not bundles:
        raise TaskError("no bundle to evaluate")
    opened = [Bundle.open(b) for b in bundles]
    names = [b.path.name for b in opened]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # results are named by folder and variant
        raise TaskError(f"two bundles are both named {twice[0]!r}: evaluate bundles in folders of different names")
    image = any(registry.pipeline(b.task).input_kind == "image" for b in opened)
    data_path = Path(options.data)
    kind, data, names = read_set(options, image)
    if budget:  # a budget naming a metric this set has not is refused before any scoring
        decide.check_names(budget, names)
    for b in opened:
        if kind == "tensors":  # every bundle runs raw: its session, fed the set's arrays
            continue
        if kind not in registry.eval_kinds(b.task):
            can = registry.eval_kinds(b.task)
            raise TaskError(
                f"{b.path}: a {b.task} bundle is not scored on a {kind} set"
                + (f" (it is on {', '.join(can)})" if can else " (edgert eval does not score this task yet)")
            )
    size = f"{len(data.corpus):,} documents, " if kind == "retrieval" else ""
    skipped = f"; {data.problems.total} rows skipped" if data.problems.total else ""
    say(f"eval: {kind} set {Path(options.data).name}: {size}{score_items(kind, data):,} items{skipped}")
    folder = (data_path if data_path.is_dir() else data_path.parent) if image else None
    for b in opened:  # every variant asked for exists, before any work
        missing = [v for v in options.variants if v not in b.models]
        if missing:
            raise TaskError(f"{b.path}: has no model variant {missing[0]!r} (has {', '.join(b.models)})")
    results = []
    for b in opened:
        for variant in options.variants or tuple(b.models):
            say(f"  {b.path.name}:{variant}: scoring")
            model: Any = load(b.path, variant=variant, task="raw" if kind == "tensors" else None)
            found = score_model(kind, model, data, options, folder, say)
            del model  # one model, and its run-time buffers, in memory at a time
            entry = b.files[b.models[variant]]
            evaluated = Evaluated(bundle=str(b.path), variant=variant, model_sha256=entry.sha256, **found)
            if options.cost:
                evaluated = replace(evaluated, cost=_cost(b.path, variant, [] if image else _texts(kind, data), say))
            results.append(evaluated)
    headline = names[0] if kind == "tensors" else HEADLINE[kind].format(k=options.k)
    dataset = dataset_record(kind, data, options)
    result = EvalResult(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        machine=describe(),
        software=versions(("edgert", "onnxruntime", "numpy", "tokenizers")),
        dataset=dataset,
        results=tuple(results),
        headline=headline,
        front=decide.front(results, headline),
        decision=decide.decide(budget, results) if budget else None,
        seed=options.seed,
        draws=options.draws,
        level=options.level,
    )
    if options.card:
        from .card import record

        for path in record(result):
            say(f"eval: recorded in {path}'s card")
    return result


def score_model(
    kind: str, model: Any, data: Any, options: EvalOptions, folder: Path | None, echo: score.Echo
) -> dict[str, Any]:
    """One loaded pipeline's fields of an ``Evaluated`` record on a set of KIND (FOLDER: where image paths are
    relative to, for image sets)."""
    kw: dict[str, Any] = {"draws": options.draws, "level": options.level, "seed": options.seed}
    batch = (options.batch_size, options.max_tokens)
    if kind == "retrieval":
        return score.retrieval(model, data, options.k, batch, kw, echo)
    if kind == "similarity":
        return score.similarity(model, data, batch, kw, echo)
    if kind == "tensors":
        return score.tensors(model, data, options.metrics, options.batch_size, kw, echo)
    if kind == "speech":
        return score.speech(model, data, kw, echo, data.problems)
    return score.classification(model, data, folder, options.batch_size, kw, echo, data.problems)


def read_set(options: EvalOptions, image: bool) -> tuple[str, Any, list[str]]:
    """(kind, the set, the metric names a budget may use) of ``options.data``, refused before any work when
    ``options`` do not fit it."""
    unknown = [m for m in options.metrics if m not in TENSOR_METRICS]
    check(not unknown, "metrics", f"{', '.join(unknown)} is not a metric edgert has ({', '.join(TENSOR_METRICS)})")
    kind, data = _read(Path(options.data), options, image)
    mine = f"chooses a raw model's metrics; a {kind} set has its own"
    check(not options.metrics or kind == "tensors", "metrics", mine)
    return kind, data, _metric_names(kind, data, options)


def dataset_record(kind: str, data: Any, options: EvalOptions) -> Dataset:
    problems = data.problems
    return Dataset(
        name=data.name, kind=kind, path=str(options.data), sha256=_sha256(tuple(Path(f) for f in data.files)),
        items=score_items(kind, data), skipped=problems.total, problems=tuple(str(p) for p in problems.shown),
    )  # fmt: skip


def _metric_names(kind: str, data: Any, options: EvalOptions) -> list[str]:
    """The metrics a set of KIND is scored on, as a budget names them; tensors: those asked for (else every one)
    of each reference output, named ``metric_output`` when there are several."""
    if kind != "tensors":
        return [m.format(k=options.k) for m in METRICS[kind]]
    wanted = options.metrics or tuple(TENSOR_METRICS)
    outputs = sorted(data.expected)
    if len(outputs) == 1:
        return list(wanted)
    return [f"{m}_{score.identifier(o)}" for o in outputs for m in wanted]


def score_items(kind: str, data: Any) -> int:
    if kind == "retrieval":
        return len(data.qrels)
    if kind == "speech":
        return len(data.recordings)
    if kind == "tensors":
        return int(data.items)
    return len(data.scores) if kind == "similarity" else len(data.items)
