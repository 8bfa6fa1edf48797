"""``--quantize auto``: build each candidate recipe, time it on this CPU, score it on held-apart validation data,
and keep the fastest one that meets the accuracy budget and is batch-invariant.

Every candidate is judged the same way, side by side in one process:
- agreement with the fp32 model, each validation item run alone (worst and mean cosine; top-1 for classifiers);
- batch invariance: each item alone versus inside shuffled batches of 32;
- latency: batch 1, one thread, the median over interleaved rounds of the time per item on a spread of lengths;
- with a ``Judge`` (``edgert export --eval DATA --eval-budget ...``): the task metric on the user's own set, whose
  budget, met on its interval's lower bound, replaces the agreement budget (agreement is still measured and kept).

Pruning: a recipe with a costly second stage (static int8 measures every MatMul's error to choose its float
fallback) is first built in its fastest form and timed beside the candidates that already meet the budget; if it
is slower than the fastest of them, it cannot win, and it stops there: its row says ``pruned``, with the times.

The judge is handed in by the caller (the CLI builds it from ``edgert.eval``): export measures with what it is
given and does not import the evaluation room, which stands above it.
"""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import quality, stats
from ..bundle import Bundle, write_manifest
from ..device import U8S8_SATURATES, cpu_features, cpu_model, quantization_target, u8s8_exact
from ..errors import EdgertError, ExportError
from ..session import SessionConfig
from ..tasks import registry
from . import recipes
from .calibration import Data

#: Searches and their reports time each model on one thread, with no optimised-model cache to go stale.
_TIMING = SessionConfig(intra_op_threads=1, cache_optimized=False)
TIMING_ITEMS = 16
TIMING_ROUNDS = 5
#: pruning: a recipe's fastest form, timed beside the candidates that already meet the budget in this many rounds,
#: stops when it is slower than the fastest of them by more than this share (timing noise gets the benefit)
GATE_ROUNDS = 3
PRUNE_MARGIN = 0.05
GATE_FILE, GATE_VARIANT = "candidate-gate.onnx", "gate"
#: A quantized model becomes the default only when it is at least this much faster than fp32 here.
MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class Budget:
    """The worst agreement with fp32 that is acceptable: worst cosine (embeddings) or top-1 share (classifiers)."""

    value: float = 0.99
    invariance: float = quality.INVARIANCE_FLOOR

    def __post_init__(self) -> None:
        if not 0.0 < self.value <= 1.0:
            raise ExportError(f"accuracy budget must be in (0, 1], got {self.value}")


@dataclass(frozen=True)
class TaskScore:
    """A model's task metric on the judge's set, with its interval, and whether the judge's budget holds."""

    metric: str
    value: float
    low: float
    high: float
    passed: bool


class Judge(Protocol):
    """Scores one loaded pipeline on a task set against a quality budget (``edgert.eval.judge.TaskJudge``)."""

    def describe(self) -> dict[str, Any]:
        """The set (name, kind, sha256, items) and the budget, for the card's search record."""
        ...

    def __call__(self, variant: str, model: Any) -> TaskScore: ...


def variant_name(recipe: recipes.Recipe) -> str:
    return f"int{recipe.bits}" if recipe.kind == "nbits" else "int8"


def by_row(candidates: Sequence[recipes.Recipe], row: dict[str, Any]) -> recipes.Recipe:
    return next(r for r in candidates if r.name == row["recipe"])


def _feeds(model: Any, items: Sequence[Any]) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """Calibration feeds, one item per run, as the pipeline itself would build them."""

    def gen() -> Iterator[dict[str, np.ndarray]]:
        if hasattr(model, "encoder"):
            encodings = model.encoder.encode(list(items))
            for _, feeds in model.encoder.batches(encodings, 1):
                yield feeds
        else:
            for item in items:
                yield {model.input_names[0]: model.preprocess([item])}

    return gen


#: recipes this close in latency to the fastest one that passes are a tie, settled by size
NEAR_FASTEST = 0.05


def choose(passing: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest row; among rows within timing noise of it (NEAR_FASTEST), the smallest, which is what a device
    feels; of equal size, the faster."""
    if not passing:
        return None
    fastest = min(r["latency_ms"] for r in passing)
    near = [r for r in passing if r["latency_ms"] <= fastest * (1 + NEAR_FASTEST)]
    return min(near, key=lambda r: (r["size_bytes"], r["latency_ms"]))


def _timing_items(items: Sequence[Any], n: int = TIMING_ITEMS) -> list[Any]:
    """A spread of the validation items (every k-th), so the latency covers short and long inputs."""
    step = max(1, len(items) // n)
    return list(items[::step][:n])


#: text models are timed on one passage of this many tokens too (validation texts joined): the short texts alone
#: hide what a recipe does to the matrix products of a document-sized input, where int8 gains most
PASSAGE_TOKENS = 128


def _passage(model: Any, texts: Sequence[Any], tokens: int = PASSAGE_TOKENS) -> str | None:
    """The validation texts joined and cut to TOKENS tokens (special tokens counted), or None when the model
    is no text model or takes fewer tokens."""
    encoder = getattr(model, "encoder", None)
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None or not texts or not all(isinstance(t, str) for t in texts):
        return None
    if getattr(encoder, "max_length", 0) < tokens:
        return None
    joined = " ".join(texts)
    enc = tokenizer.encode(joined)
    words = [o for o, sid in zip(enc.offsets, enc.special_tokens_mask) if not sid]
    specials = len(enc.ids) - len(words)
    if len(words) < tokens - specials:
        return None
    text = joined[: words[tokens - specials - 1][1]]
    return text if len(tokenizer.encode(text).ids) == tokens else None


def time_models(models: dict[str, Any], items: Sequence[Any], rounds: int = TIMING_ROUNDS) -> dict[str, float]:
    """Median over interleaved rounds of the milliseconds per item, batch 1: every model sees the same noise."""
    samples: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for name in names:  # one untimed pass each: first-run allocations are not steady state
        quality.outputs(models[name], items[:2], batch_size=1)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            model = models[name]
            start = time.perf_counter()
            for x in items:
                quality.outputs(model, [x], batch_size=1)
            samples[name].append((time.perf_counter() - start) * 1e3 / len(items))
    return {name: stats.median(s) for name, s in samples.items()}


def _task_row(t: TaskScore) -> dict[str, Any]:
    return {"metric": t.metric, "value": t.value, "low": t.low, "high": t.high, "passed": t.passed}


def _task_line(t: TaskScore) -> str:
    return f"{t.metric} {t.value:.4f} [{t.low:.4f}, {t.high:.4f}] {'passes' if t.passed else 'fails'} the task budget"


def _timing_host(target: str) -> dict[str, Any]:
    host_target = quantization_target()
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "features": list(cpu_features()),
        "host_target": host_target,
        "on_target": host_target == target,
        "threads": 1,
        "batch": 1,
    }


def run(
    root: Path,
    manifest: dict[str, Any],
    data: Data,
    candidates: Sequence[recipes.Recipe],
    *,
    target: str,
    budget: Budget | None,
    echo: Callable[[str], None],
    judge: Judge | None = None,
    keep: int = 1,
) -> tuple[recipes.Recipe | None, dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """Builds and judges ``candidates`` in ``root`` (which holds model.onnx). Leaves the chosen model there as
    ``model.<variant>.onnx``, and with KEEP above 1 the next fastest recipes that meet the budget too (KEEP in
    all), each as ``model.<its variant>.onnx``; deletes the rest. Returns (chosen recipe or None, its details, the
    card's ``search`` record, {variant: details} of the others kept). With ``budget=None`` the single candidate is
    kept whatever it scores. With a JUDGE, a
    candidate meets the budget when the judge's task budget holds and it is batch-invariant."""
    task = manifest["task"]
    kind = quality.kind_of(task)
    pipeline = registry.pipeline(task)
    fp32 = root / "model.onnx"
    write_manifest(root, manifest)
    ref_model = pipeline(Bundle.open(root), variant="fp32", config=_TIMING)
    validation = list(data.validation)
    calibration = list(data.calibration)
    timing_items = _timing_items(validation)
    passage = _passage(ref_model, validation)
    if passage is not None:
        timing_items.append(passage)
    host = _timing_host(target)
    if not host["on_target"]:
        echo(
            f"  note: quantizing for {target} on a {host['host_target']} CPU ({host['cpu']}): the latencies "
            "below are this CPU's, not the target's; run the export on the target to search by its timings"
        )

    ref_alone = quality.alone(ref_model, validation)
    fp32_invariance = quality.batch_invariance(ref_model, validation, single=ref_alone)

    built: dict[str, tuple[recipes.Recipe, Path, dict[str, Any], float]] = {}
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {"fp32": ref_model}
    scored: dict[str, dict[str, Any]] = {}
    tasks: dict[str, TaskScore] = {}

    def load(extra: dict[str, str] | None = None) -> None:
        """Every built candidate (and EXTRA: variant -> file) as a variant of the bundle in ROOT, loaded once."""
        files = {n: p.name for n, (_, p, _, _) in built.items()}
        write_manifest(root, {**manifest, "models": {"fp32": "model.onnx", **files, **(extra or {})}})
        bundle = Bundle.open(root)
        for name in [*built, *(extra or {})]:
            if name not in models:
                models[name] = pipeline(bundle, variant=name, config=_TIMING)

    scoring = [0.0]  # seconds spent scoring; the pruning probe scores others inside a build, not counted there

    def score(name: str) -> dict[str, Any]:
        if name not in scored:
            began = time.perf_counter()
            got = quality.alone(models[name], validation)
            stats = quality.agreement(ref_alone, got, kind=kind)
            inv = quality.batch_invariance(models[name], validation, single=got)
            scored[name] = {"stats": stats, "invariance": inv, "details": built[name][2], "seconds": built[name][3]}
            scoring[0] += time.perf_counter() - began
        return scored[name]

    def passes(name: str) -> bool:
        s = score(name)
        return (
            budget is not None
            and quality.score(s["stats"], kind) >= budget.value
            and (s["invariance"]["min_cosine"] >= budget.invariance)
        )

    def gate(fastest: Path) -> str | None:
        """Prunes a recipe whose fastest form is slower than a built candidate that already meets the budget:
        times it beside them and fp32 (batch 1, one thread, interleaved rounds, medians)."""
        if budget is None or judge is not None or not built:
            return None
        load()
        passing = [n for n in built if passes(n)]
        if not passing:
            return None
        echo(
            f"    timing its all-integer form beside {len(passing)} candidate(s) that meet the budget "
            f"({GATE_ROUNDS} interleaved rounds) ..."
        )
        probe = root / GATE_FILE
        shutil.copyfile(fastest, probe)
        try:
            load({GATE_VARIANT: GATE_FILE})
            timed = {n: models[n] for n in ("fp32", *passing, GATE_VARIANT)}
            latency = time_models(timed, timing_items, rounds=GATE_ROUNDS)
        finally:
            models.pop(GATE_VARIANT, None)
            probe.unlink(missing_ok=True)
            load()
        best = min(passing, key=lambda n: latency[n])
        if latency[GATE_VARIANT] <= latency[best] * (1 + PRUNE_MARGIN):
            return None
        return (
            f"its fastest form ran {latency[GATE_VARIANT]:.2f} ms a text against {latency[best]:.2f} ms of {best}, "
            f"which already meets the budget (fp32 {latency['fp32']:.2f} ms; {GATE_ROUNDS} interleaved rounds)"
        )

    for i, recipe in enumerate(candidates, 1):
        path = root / f"candidate-{i}.onnx"
        if recipe.vnni and not u8s8_exact():
            why = f"not measurable here: {U8S8_SATURATES}"
            rows.append({"recipe": recipe.name, "kind": recipe.kind, "error": why})
            echo(f"  [{i}/{len(candidates)}] {recipe.name}: skipped ({why})")
            continue
        echo(f"  [{i}/{len(candidates)}] {recipe.name}: quantizing ...")
        start, scored_before = time.perf_counter(), scoring[0]

        def elapsed(start: float = start, scored_before: float = scored_before) -> float:
            return time.perf_counter() - start - (scoring[0] - scored_before)

        try:
            details = recipes.apply(
                recipe, fp32, path, target=target, calibration=_feeds(ref_model, calibration), gate=gate
            )
        except recipes.Pruned as pruned:
            seconds = round(elapsed(), 2)
            rows.append({"recipe": recipe.name, "kind": recipe.kind, "pruned": str(pruned), "build_seconds": seconds})
            echo(f"  [{i}/{len(candidates)}] {recipe.name}: pruned, cannot win ({pruned})")
            path.unlink(missing_ok=True)
            continue
        except EdgertError:
            raise
        except Exception as exc:  # a recipe onnxruntime cannot apply to this graph is a row, not a failed export
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            rows.append({"recipe": recipe.name, "kind": recipe.kind, "error": f"{type(exc).__name__}: {first}"})
            echo(f"  [{i}/{len(candidates)}] {recipe.name}: failed ({type(exc).__name__}: {first})")
            path.unlink(missing_ok=True)
            continue
        built[recipe.name] = (recipe, path, details, elapsed())

    if built:
        load()
    if judge is not None:
        echo(f"  judging fp32 on {judge.describe()['data']['name']} ...")
        tasks["fp32"] = judge("fp32", ref_model)
        echo(f"  fp32: {_task_line(tasks['fp32'])}")
    for name in built:
        score(name)
        if judge is not None:
            tasks[name] = judge(name, models[name])
    echo(f"  timing fp32 and {len(built)} candidates: batch 1, one thread, {TIMING_ROUNDS} interleaved rounds ...")
    latency = time_models(models, timing_items)
    for name, (recipe, path, _, seconds) in built.items():
        s = scored[name]
        value = quality.score(s["stats"], kind)
        invariant = budget is None or s["invariance"]["min_cosine"] >= budget.invariance
        if judge is not None:
            meets = tasks[name].passed and invariant
        else:
            meets = budget is None or passes(name)
        row = {
            "recipe": name,
            "kind": recipe.kind,
            "latency_ms": round(latency[name], 4),
            "speedup_vs_fp32": round(latency["fp32"] / latency[name], 3),
            "size_bytes": path.stat().st_size,
            "min_cosine": s["stats"]["min_cosine"],
            "mean_cosine": s["stats"]["mean_cosine"],
            "batch_invariance": s["invariance"]["min_cosine"],
            "batch_invariant": s["invariance"]["invariant"],
            "meets_budget": bool(meets),
            "build_seconds": round(seconds, 2),
        }
        if kind == "classifier":
            row["top1_agreement"] = s["stats"]["top1_agreement"]
        if judge is not None:
            row["task"] = _task_row(tasks[name])
        rows.append(row)
        echo(
            f"  {name}: worst {'top-1' if kind == 'classifier' else 'cosine'} {value:.4f}, mean cosine "
            f"{row['mean_cosine']:.4f}, batch invariance {row['batch_invariance']:.6f}, "
            f"{row['speedup_vs_fp32']:.2f}x fp32, {row['size_bytes'] / 1e6:.1f} MB"
            + (f", {_task_line(tasks[name])}" if judge is not None else "")
            + ("" if budget is None else ("  meets the budget" if meets else "  misses"))
        )
    passing = [r for r in rows if r.get("meets_budget")]
    chosen = choose(passing)
    # The fastest model that keeps the accuracy may be fp32 itself: a quantized model that is not clearly
    # faster on this CPU stays in the bundle as a smaller variant, but does not become the default.
    kept_rows = [] if chosen is None else [chosen]
    kept_rows += sorted((r for r in passing if r is not chosen), key=lambda r: r["latency_ms"])[: max(keep - 1, 0)]
    names: dict[str, str] = {}  # recipe -> its variant: int8 or int4 where free, else the recipe's own name
    for r in kept_rows:
        short = variant_name(by_row(candidates, r))
        names[r["recipe"]] = short if short not in names.values() else r["recipe"]
    default = chosen["recipe"] if chosen else "fp32"
    if budget is not None and chosen is not None and chosen["speedup_vs_fp32"] < MIN_SPEEDUP:
        default = "fp32"
        echo(
            f"  {chosen['recipe']} keeps the accuracy but is not faster than fp32 on this CPU "
            f"({chosen['speedup_vs_fp32']:.2f}x): fp32 stays the default model, {chosen['recipe']} is kept as "
            f"the {variant_name(by_row(candidates, chosen))} variant"
        )
    rows.insert(
        0,
        {
            "recipe": "fp32",
            "kind": "none",
            "latency_ms": round(latency["fp32"], 4),
            "speedup_vs_fp32": 1.0,
            "size_bytes": fp32.stat().st_size,
            "min_cosine": 1.0,
            "mean_cosine": 1.0,
            "batch_invariance": fp32_invariance["min_cosine"],
            "batch_invariant": fp32_invariance["invariant"],
            "meets_budget": True if judge is None else tasks["fp32"].passed,
            **({"task": _task_row(tasks["fp32"])} if judge is not None else {}),
        },
    )
    record: dict[str, Any] = {
        "mode": "auto" if budget is not None else "fixed",
        "budget": None
        if budget is None
        else {
            "metric": "top1_agreement" if kind == "classifier" else "min_cosine",
            "value": budget.value,
            "batch_invariance": budget.invariance,
        }
        if judge is None
        else {"task": judge.describe(), "batch_invariance": budget.invariance},
        "target": target,
        "timing": {
            **host,
            "items": len(timing_items),
            "passage_tokens": PASSAGE_TOKENS if passage else None,
            "rounds": TIMING_ROUNDS,
            "fp32_latency_ms": latency["fp32"],
        },
        "data": data.describe(),
        "fp32_batch_invariance": fp32_invariance["min_cosine"],
        "candidates": rows,
        "chosen": chosen["recipe"] if chosen else None,
        "default": default,
        "kept": {names[r["recipe"]]: r["recipe"] for r in kept_rows},
        "min_speedup": MIN_SPEEDUP,
        "met": chosen is not None,
    }
    models.clear()  # the candidates' sessions are released before their files move or go
    del ref_model
    chosen_recipe = None
    result: dict[str, Any] = {}
    others: dict[str, dict[str, Any]] = {}
    for name, (recipe, path, details, _) in built.items():
        if name not in names:
            path.unlink(missing_ok=True)
            continue
        path.replace(root / f"model.{names[name]}.onnx")
        s = scored[name]
        row = next(r for r in kept_rows if r["recipe"] == name)
        facts = {
            "recipe": recipe.as_dict(),
            **details,
            "vs_fp32": {"data": "validation", **s["stats"]},
            "batch_invariance": s["invariance"],
            "speedup_vs_fp32": row["speedup_vs_fp32"],
        }
        if chosen is not None and name == chosen["recipe"]:
            chosen_recipe, result = recipe, facts
        else:
            others[names[name]] = facts
    return chosen_recipe, result, record, others
