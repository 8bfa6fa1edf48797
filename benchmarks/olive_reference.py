"""Microsoft Olive's search beside edgert's quantization search, on the same model and data.

    python -m venv /tmp/olv && /tmp/olv/bin/pip install olive-ai==0.13.0 "pydantic>=2.12" torch==2.13.0 \
        onnxruntime==1.32.0 onnx tokenizers numpy scipy optuna requests pytest   # its own venv: Olive is no
        # dependency of edgert; olive-ai 0.13 imports requests without declaring it, the held-out corpus is in tests/
    PYTHONPATH=. /tmp/olv/bin/python benchmarks/olive_reference.py --bundle BUNDLE [--samples 0] [--rounds 5]

BUNDLE is a MiniLM bundle exported by ``edgert export minilm`` (``--quantize auto``): its fp32 model is what Olive
quantizes, and its default int8 model is edgert's choice. Olive gets the same data and the same goals as edgert's
search. Its workflow is the one Olive's own BERT examples use on CPU: ``OrtTransformersOptimization`` (onnxruntime's
transformer fusions), then ``OnnxQuantization`` with Olive's whole search space for it (dynamic or static,
QOperator or QDQ, per-channel or not, reduced range or not, int8 or uint8 types, MinMax, Entropy or Percentile
calibration), sampled by Optuna's TPE (``--samples 0``: every point). Static modes calibrate on edgert's built-in
calibration texts, padded to 128 tokens. Each candidate is judged by one custom metric with two goals: the worst
cosine to fp32 over edgert's built-in validation texts, each embedded alone (>= 0.99, edgert's default budget),
and the median latency of one 128-token text on one thread (at least 50% below the input model's: 2x, issue 21's
goal). Then Olive's choice (if one met both goals), its most accurate and its fastest candidates, and edgert's
choice are measured side by side on benchmarks/quantization.py's held-out corpus: worst/mean cosine, batch
invariance, batch-1 and 128-token latency on one thread (interleaved rounds, medians), size, and each search's
wall time. Writes the table to RESULTS.md. olive-ai 0.13 needs a few patches to run a custom metric at all
(``_run_olive`` says which); none changes what it searches or how a candidate is judged.

This file is also the ``user_script`` Olive imports: the dataset and the evaluation function are defined here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402
from _reference import as_variant, files_size, padded_feeds, side_by_side, working_copy, worst_cosine  # noqa: E402
from _results import write_section  # noqa: E402
from quantization import corpus, text_of_tokens  # noqa: E402

#: what the evaluation function needs, set by main() before Olive runs. Olive imports this file again as its
#: user_script, a module apart from __main__, in the same process: that copy shares __main__'s STATE.
STATE: dict[str, Any] = getattr(sys.modules.get("__main__"), "STATE", None) or {}


def _one_thread() -> Any:
    from edgert.session import SessionConfig

    return SessionConfig(intra_op_threads=1, cache_optimized=False)


def latency_ms(model: Any, text: str, calls: int = 20) -> float:
    model.embed([text])
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        model.embed([text])
        samples.append((time.perf_counter() - t) * 1e3)
    return float(np.median(samples))


def evaluate(model: Any, device: Any = None, execution_providers: Any = None) -> dict[str, float]:
    """Olive's custom metric: worst cosine to fp32 over the validation texts, and median ms of a 128-token text."""
    m = as_variant(STATE["work"], str(model.model_path), "trial", _one_thread())
    worst = worst_cosine(m, STATE["val"], STATE["val_ref"])
    ms = latency_ms(m, STATE["long128"])
    STATE["trials"].append({"worst": worst, "ms": ms, "path": str(model.model_path)})
    print(f"  Olive trial {len(STATE['trials'])}: worst cosine {worst:.4f}, 128 tokens {ms:.2f} ms", flush=True)
    return {"worst_cosine": worst, "latency_ms": ms}


def _register_dataset() -> None:
    from olive.data.registry import Registry

    @Registry.register_dataset("edgert_calibration")
    def edgert_calibration(**kwargs: Any) -> list[Any]:
        """edgert's built-in calibration texts, tokenized by the bundle's tokenizer, one text per item."""
        import torch

        # padded to one length, as Olive's BERT examples do: its histogram calibrators (Entropy, Percentile)
        # stack every item's activations and fail on items of different lengths
        padded = padded_feeds(STATE["ref"], list(STATE["cal"]), 128)
        return [({k: torch.from_numpy(v[0]) for k, v in feeds.items()}, 0) for feeds in padded]


if "olive" in sys.modules:  # imported by Olive as its user_script
    _register_dataset()


def _run_olive(config: dict[str, Any]) -> Any:
    """Runs Olive's workflow, around two faults of olive-ai 0.13 with custom metrics: serializing the run config
    fails on a custom metric's backend and sub-types (None where it calls model_dump), and the evaluator loses the
    metric's user_config on the way, so it cannot find the evaluation function. None is serialized as None, and
    the evaluator calls ``evaluate`` for it directly, as Olive would with a working
    user_config (its own _evaluate_custom, which turns the returned dict into sub-metric results)."""
    from olive.common.config_utils import CaseInsensitiveEnum
    from olive.engine.footprint import FootprintNode
    from olive.evaluator.metric import Metric, MetricType, SubMetric
    from olive.evaluator.metric_result import MetricResult, SubMetricResult
    from olive.evaluator.olive_evaluator import OliveEvaluator, _OliveEvaluator
    from olive.package_config import OlivePackageConfig
    from olive.workflows.run.config import RunConfig
    from olive.workflows.run.run import run_engine

    original = OliveEvaluator.get_user_config

    def get_user_config(framework: Any, metric: Any) -> Any:
        if metric.type == MetricType.CUSTOM:
            return None, evaluate, None
        return original(framework, metric)

    def evaluate_custom(self: Any, model: Any, metric: Any, *args: Any, **kwargs: Any) -> Any:
        raw = evaluate(model)
        return MetricResult.model_validate(
            {
                t.name: SubMetricResult(value=raw[t.name], priority=t.priority, higher_is_better=t.higher_is_better)
                for t in metric.sub_types
            }
        )

    OliveEvaluator.get_user_config = staticmethod(get_user_config)  # type: ignore[method-assign]
    _OliveEvaluator._evaluate_custom = evaluate_custom  # type: ignore[method-assign]

    def backend(self: Any, value: Any) -> Any:
        return value if value is None or isinstance(value, str) else value.model_dump()

    def metric_config(self: Any, value: Any) -> Any:
        return None if value is None else value.model_dump()

    # the compiled serializers of every model that holds a Metric call these function objects: their code is
    # replaced in place, so that None (a custom metric's backend and sub-type config) serializes as None
    for model, name, fix in (
        (Metric, "serialize_backend", backend),
        (SubMetric, "serialize_metric_config", metric_config),
    ):
        model.__pydantic_decorators__.field_serializers[name].func.__code__ = fix.__code__
    # a dict without a "type" (a custom metric's sub-type config, say) reaches CaseInsensitiveEnum._missing_ as
    # None while Olive looks for file resources in the config: None.lower() raises AttributeError where Olive
    # catches only the ValueError of an unknown value. A value that is no string is now simply no member.
    missing = CaseInsensitiveEnum._missing_.__func__  # type: ignore[attr-defined]

    def no_member(cls: Any, value: Any) -> Any:
        return missing(cls, value) if isinstance(value, str) else None

    CaseInsensitiveEnum._missing_ = classmethod(no_member)  # type: ignore[assignment,method-assign]

    # the engine records each pass's output model as update(model_config=...), the alias of the field
    # model_config_data, and setattr by alias fails under pydantic 2: the alias is turned into the field's name
    by_alias = {f.alias: n for n, f in FootprintNode.model_fields.items() if f.alias}

    def update(self: Any, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            setattr(self, by_alias.get(k, k), v)

    FootprintNode.update = update  # type: ignore[method-assign]
    run_config = RunConfig.parse_file_or_obj(config)
    package = OlivePackageConfig.parse_file_or_obj(OlivePackageConfig.get_default_config_path())
    return run_engine(package, run_config)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", required=True, help="a MiniLM bundle exported by edgert export minilm")
    p.add_argument(
        "--samples", type=int, default=0, help="how many candidates Olive's sampler is asked for (0: its whole space)"
    )
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--calibrate-method",
        choices=["all", "MinMax", "Entropy", "Percentile"],
        default="all",
        help="static quantization's calibration methods Olive searches (all: its three); on 2 cores one Entropy or "
        "Percentile trial took about 13 minutes (a histogram over every activation of 64 texts of 128 tokens), "
        "a MinMax one 10-20 s",
    )
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import olive

    import edgert
    from edgert.bundle import MANIFEST, Bundle
    from edgert.export.calibration import builtin_texts

    src = Path(args.bundle)
    bundle = Bundle.open(src)
    edgert_seconds = json.loads((src / MANIFEST).read_text()).get("provenance", {}).get("export_seconds")
    ref = edgert.load(src, variant="fp32", config=_one_thread())
    texts = corpus()
    work = working_copy(src, "edgert-olive-")  # a copy of the bundle that also holds Olive's models
    val = builtin_texts("validation")
    STATE.update(
        work=work,
        ref=ref,
        cal=builtin_texts("calibration"),
        val=val,
        val_ref=np.stack([ref.embed([t])[0] for t in val]),
        long128=text_of_tokens(src, texts),
        trials=[],
    )
    _register_dataset()
    # the same fp32 graph with ONNX's shape inference run on it: onnxruntime's quantizer needs each MatMul
    # output's type, and after the transformer fusions (com.microsoft Attention, which ONNX cannot infer
    # through) it finds them only where the input model already carried them
    import onnx

    typed = onnx.shape_inference.infer_shapes(onnx.load(str(src / bundle.models["fp32"])))
    onnx.save(typed, str(work / "olive-input.onnx"), save_as_external_data=True, location="olive-input.data")
    here = str(Path(__file__).resolve())
    config = {
        "input_model": {"type": "ONNXModel", "model_path": str(work / "olive-input.onnx")},
        "systems": {
            "local": {
                "type": "LocalSystem",
                "accelerators": [{"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}],
            }
        },
        "data_configs": [
            {
                "name": "edgert_calibration",
                "user_script": here,
                "load_dataset_config": {"type": "edgert_calibration"},
                "dataloader_config": {"batch_size": 1},
            }
        ],
        "evaluators": {
            "goals": {
                "metrics": [
                    {
                        "name": "edgert",
                        "type": "custom",
                        "sub_types": [
                            {
                                "name": "worst_cosine",
                                "priority": 1,
                                "higher_is_better": True,
                                "goal": {"type": "threshold", "value": 0.99},
                            },
                            {
                                "name": "latency_ms",
                                "priority": 2,
                                "higher_is_better": False,
                                "goal": {"type": "percent-min-improvement", "value": 50},
                            },
                        ],
                        "user_config": {"user_script": here, "evaluate_func": "evaluate"},
                    }
                ]
            }
        },
        "passes": {
            "fusion": {
                "type": "OrtTransformersOptimization",
                "model_type": "bert",
                "num_heads": 12,
                "hidden_size": 384,
            },
            "quantization": {
                "type": "OnnxQuantization",
                "data_config": "edgert_calibration",
                **({} if args.calibrate_method == "all" else {"calibrate_method": args.calibrate_method}),
            },
        },
        "search_strategy": {
            "execution_order": "joint",
            "sampler": "tpe",
            # the sampler's own settings; olive-ai 0.13 was seen to go past max_samples in this workflow (73
            # evaluations when asked for 20), so the note says how many it evaluated, counted in evaluate()
            "sampler_config": {"max_samples": args.samples, "seed": 0},
        },
        "evaluator": "goals",
        "host": "local",
        "target": "local",
        "cache_dir": str(work / "olive-cache"),
        "output_dir": str(work / "olive-out"),
        "log_severity_level": 2,
    }
    start = time.perf_counter()
    output = _run_olive(config)
    olive_seconds = time.perf_counter() - start
    trials = [dict(t, settings=settings(Path(t["path"]))) for t in STATE["trials"]]
    (work / "results.json").write_text(json.dumps({"trials": trials, "olive_seconds": olive_seconds}))
    best_path = None
    try:
        best_path = str(output.get_best_candidate().model_path)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - Olive returns None or an empty output when no candidate meets the goals
        print(f"Olive returned no best candidate ({type(exc).__name__}: {exc})", flush=True)
    quantized = [t for t in trials if t["settings"] != "its input (fp32)"]
    distinct = {t["settings"] for t in quantized}
    goals = (
        f"worst cosine >= 0.99 on edgert's {len(val)} validation texts, and a 128-token text at least 50% faster "
        "than the input model"
    )
    summary = (
        "Olive ran onnxruntime's transformer fusions and then its OnnxQuantization search space (Optuna TPE, "
        + (f"asked for {args.samples} samples" if args.samples else "the whole space")
        + ("" if args.calibrate_method == "all" else f", static calibration by {args.calibrate_method} only")
        + f"), judging each candidate against two goals ({goals}). It evaluated {len(quantized)} quantized models "
        f"({len(distinct)} distinct settings) in {olive_seconds:.0f} s, and "
        + ("chose one that meets both." if best_path else "**none** met both goals.")
    )
    picks: dict[str, tuple[str, str]] = {}  # name -> (label, model path)
    if best_path:
        picks["olive"] = (f"Olive's choice ({settings(Path(best_path))})", best_path)
    if quantized:
        top = max(quantized, key=lambda t: (t["worst"], -t["ms"]))
        fast = min(quantized, key=lambda t: t["ms"])
        picks.setdefault("olive-accurate", (f"Olive's most accurate trial ({top['settings']})", top["path"]))
        if fast["path"] != top["path"]:
            picks["olive-fast"] = (f"Olive's fastest trial ({fast['settings']})", fast["path"])
    models = {"fp32": ref, "edgert": edgert.load(src, config=_one_thread())}
    labels = {"fp32": "fp32", "edgert": f"edgert auto -> {bundle.card['search']['default']}"}
    sizes = {
        "fp32": files_size([src / f for f in bundle.model_files("fp32")]),
        "edgert": files_size([src / f for f in bundle.model_files(bundle.default_model)]),
    }
    for name, (label, path) in picks.items():
        models[name], labels[name] = as_variant(work, path, name, _one_thread()), label
        sizes[name] = files_size(list(work.glob(f"model.{name}.*")))
    search_s = {"edgert": f"{edgert_seconds} (whole export)", **{n: f"{olive_seconds:.0f}" for n in picks}}
    table = side_by_side(models, labels, sizes, search_s, texts, STATE["long128"], args.rounds)
    body = (
        f"{machine_line()}; olive-ai {olive.__version__}\n\n{summary} Its most accurate and its fastest trials are "
        f"measured here beside edgert's choice on {len(texts)} held-out texts (benchmarks/quantization.py's "
        f"corpus); one thread; {args.rounds} interleaved rounds, medians. Calibration items are padded to 128 "
        "tokens, as in Olive's BERT examples (its histogram calibrators stack them).\n\n" + table
    )
    print(body)
    write_section("Microsoft Olive beside edgert's search", body, "python benchmarks/olive_reference.py")


def settings(model_path: Path) -> str:
    """The OnnxQuantization settings that made MODEL_PATH, from the run record Olive keeps beside it."""
    record = model_path.parent.parent / "run.json"
    if not record.exists():
        return "its input (fp32)"
    config = json.loads(record.read_text()).get("pass_config", {})
    keys = (
        "quant_mode",
        "precision",
        "quant_format",
        "calibrate_method",
        "per_channel",
        "reduce_range",
        "quant_preprocess",
    )
    parts = []
    for k in keys:
        v = config.get(k)
        if v is None or (config.get("quant_mode") == "dynamic" and k in ("quant_format", "calibrate_method")):
            continue
        parts.append(k.replace("_", " ") if v is True else f"no {k.replace('_', ' ')}" if v is False else str(v))
    return ", ".join(parts)


if __name__ == "__main__":
    main()
