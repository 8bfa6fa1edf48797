"""``export_bundle``: Optimum's exporter and ORTQuantizer, then a manifest and model card, written atomically."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..bundle import MANIFEST, Bundle, write_manifest
from ..device import U8S8_SATURATES, cpu_features, quantization_target, u8s8_exact, versions
from ..errors import BudgetMissError, EdgertError, ExportError, require
from . import card, place, search
from .calibration import for_task as calibration_data
from .options import ExportOptions
from .source import OPTIMUM_TASKS, Source, detect_task, embedding_post, labels, resolve, text_pre

REFERENCE_DIMS = {"batch_size": 1, "sequence_length": 128}
SEED = 0


class Steps:
    """Progress for a long export: one line per step on stderr, with its time."""

    def __init__(self, total: int, echo: Callable[[str], None] | None = None):
        self.total, self.n, self.echo = total, 0, echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self.start = time.perf_counter()
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {label} ...")
        t = time.perf_counter()
        yield
        self.times[label] = round(time.perf_counter() - t, 3)
        self.echo(f"[{self.n}/{self.total}] {label}: done in {self.times[label]:.1f}s")


def _versions() -> dict[str, str | None]:
    dists = ("optimum", "optimum-onnx", "onnxruntime", "onnx", "torch", "transformers", "sentence-transformers")
    return {"edgert": __version__, "python": platform.python_version(), **versions((*dists, "tokenizers"))}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optimum and torch tracing are chatty; keep their warnings out of the progress lines."""
    loggers = [logging.getLogger(n) for n in ("optimum", "transformers", "sentence_transformers", "torch")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, old):
            lg.setLevel(level)


def _check_dependencies(task: str, quantize: bool) -> None:
    """Fails before any work starts when the export stack is missing."""
    require("torch", "export")
    require("optimum.exporters.onnx", "export")
    if quantize:
        require("optimum.onnxruntime", "export")
    if OPTIMUM_TASKS[task][1] == "sentence_transformers":
        require("sentence_transformers", "export")


def _optimum_export(source: Source, task: str, out: Path, opset: int | None) -> None:
    import torch
    from optimum.exporters.onnx import main_export

    optimum_task, library = OPTIMUM_TASKS[task]

    torch.manual_seed(SEED)
    err = io.StringIO()
    try:
        with _quiet(), contextlib.redirect_stdout(err):
            main_export(
                source.location,
                output=out,
                task=optimum_task,
                library_name=library,
                opset=opset,
                do_validation=True,
                local_files_only=source.local,
            )
    except EdgertError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(
            f"{source.spec}: Optimum could not export it as {task} ({type(exc).__name__}: {first})"
        ) from None


def _fix_tokenizer(root: Path, max_length: int) -> dict[str, Any]:
    """Turns off the tokenizer's fixed padding and sets truncation to the model's max length."""
    path = root / "tokenizer.json"
    if not path.is_file():
        raise ExportError(f"{path}: Optimum wrote no tokenizer.json; edgert needs a fast tokenizer")
    tok: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    tok["padding"] = None
    tok["truncation"] = {"direction": "Right", "max_length": max_length, "strategy": "LongestFirst", "stride": 0}
    path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    return tok


def _reference_dims(source: Source, task: str) -> dict[str, int]:
    """The input shape the card's MACs are counted at: 1x128 tokens, or one image at the model's size."""
    if task != "image-classification":
        return dict(REFERENCE_DIMS)
    config = source.read_json("config.json") or {}
    size = int(config.get("image_size", 224))
    return {"batch_size": 1, "num_channels": int(config.get("num_channels", 3)), "height": size, "width": size}


def _image_pre(root: Path) -> dict[str, Any]:
    pre = root / "preprocessor_config.json"
    cfg = json.loads(pre.read_text()) if pre.is_file() else {}
    return {
        "kind": "image",
        "files": ["preprocessor_config.json"] if pre.is_file() else [],
        **{
            k: cfg[k]
            for k in (
                "size",
                "crop_size",
                "do_resize",
                "do_center_crop",
                "do_normalize",
                "image_mean",
                "image_std",
                "resample",
                "rescale_factor",
                "do_rescale",
                "crop_pct",
                "do_convert_rgb",
                "image_processor_type",
            )
            if k in cfg
        },
    }


def _text_invariance(bundle_root: Path, task: str, variant: str, texts: list[str]) -> dict[str, Any]:
    from .. import quality
    from ..tasks import registry

    model = registry.pipeline(task)(Bundle.open(bundle_root), variant=variant, config=search._TIMING)
    return quality.batch_invariance(model, texts)


def export_bundle(
    source_spec: str,
    out: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    echo: Callable[[str], None] | None = None,
    judge: search.Judge | None = None,
) -> Bundle:
    """Exports SOURCE to a bundle at OUT. Built in a temporary sibling directory and renamed into place.

    With ``quantize="auto"`` and no recipe meeting the budget, the bundle is still written, with fp32 as its
    default model and the search in its card, and ``BudgetMissError`` is raised unless ``allow_miss``.
    A ``judge`` (``edgert.eval.judge.TaskJudge``: a task set and a quality budget) makes the search keep the
    fastest recipe whose task metric meets that budget, instead of the agreement budget.
    """
    options = options or ExportOptions()
    if judge is not None and options.quantize != "auto":
        raise ExportError(
            f"a task budget (--eval) chooses among recipes: it goes with --quantize auto, not {options.quantize}"
        )
    out = Path(out).expanduser().absolute()
    out = out.parent.resolve() / out.name  # a symlink at OUT itself is not followed: check_output refuses it
    source = resolve(source_spec)
    place.recover(out, echo)
    place.check_output(
        out, source.path if source.local else None, options.force, discard_unlisted=options.discard_unlisted
    )
    task = detect_task(source) if options.task == "auto" else options.task
    target = quantization_target() if options.target == "auto" else options.target
    quantize = options.quantize != "none"
    _check_dependencies(task, quantize)
    candidates = options.recipes_for(target) if quantize else ()
    if options.quantize != "auto" and any(r.vnni for r in candidates) and not u8s8_exact():
        raise ExportError(
            f"--quantize {options.quantize}: {U8S8_SATURATES}, so its accuracy cannot be measured here; export on a "
            "CPU with VNNI, AMX or arm64, or use int8-pertoken"
        )
    data = calibration_data(task, options.calibration) if quantize else None
    if any(r.kind == "nbits" for r in candidates):
        require("onnx_ir", "export")  # MatMulNBitsQuantizer needs it; onnxruntime does not pull it in
    steps = Steps(5 if quantize else 4, echo)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = place.work_dir(out)
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    try:
        with steps.step(f"export {source.spec} as {task} with Optimum (validated against PyTorch)"):
            _optimum_export(source, task, tmp, options.opset)
        with steps.step("measure the model card (parameters, MACs, opset)"):
            inputs, outputs = card.io_spec(tmp / "model.onnx")
            graph = card.graph_summary(tmp / "model.onnx")
            dims = _reference_dims(source, task)
            macs = card.count_macs(tmp / "model.onnx", dims)
            models = {"fp32": "model.onnx"}
            if task == "image-classification":
                pre = _image_pre(tmp)
                config = source.read_json("config.json") or {}
                post: dict[str, Any] = {
                    "output": outputs[0]["name"],
                    "labels": labels(source),
                    "problem_type": config.get("problem_type") or "single_label_classification",
                }
            else:
                pre = text_pre(source, json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8")))
                _fix_tokenizer(tmp, pre["max_length"])
                out_names = [o["name"] for o in outputs]
                if task == "text-classification":
                    config = source.read_json("config.json") or {}
                    post = {
                        "output": "logits",
                        "labels": labels(source),
                        "problem_type": config.get("problem_type") or "single_label_classification",
                    }
                else:
                    dim = next(o["shape"][-1] for o in outputs if o["name"] in out_names)
                    post = embedding_post(source, task, out_names, dim)
                    if not isinstance(post["dim"], int):
                        post.pop("dim")
            manifest: dict[str, Any] = {
                "task": task,
                "models": models,
                "default_model": "fp32",
                "inputs": inputs,
                "outputs": outputs,
                "pre": pre,
                "post": post,
            }
            write_manifest(tmp, manifest)  # provisional, so the runtime can load the bundle to measure it
        quant: dict[str, Any] = {"mode": "none"}
        record: dict[str, Any] | None = None
        if quantize:
            assert data is not None  # calibration data is read whenever there is something to quantize
            auto = options.quantize == "auto"
            agreement_on = "top-1" if task.endswith("classification") else "worst cosine"
            budget_text = (
                f"{judge.describe()['budget']} on {judge.describe()['data']['name']}"
                if judge is not None
                else f"{options.accuracy_budget} {agreement_on} vs fp32"
            )
            what = (
                f"search {len(candidates)} recipes for {target} (budget {budget_text}, batch-invariant)"
                if auto
                else f"quantize with {candidates[0].name} for {target} and measure it"
            )
            with steps.step(what):
                with _quiet():
                    chosen, details, record, others = search.run(
                        tmp,
                        manifest,
                        data,
                        candidates,
                        target=target,
                        budget=search.Budget(options.accuracy_budget) if auto else None,
                        echo=steps.echo,
                        judge=judge,
                        keep=options.keep_candidates,
                    )
            if chosen is not None:
                variant = search.variant_name(chosen)
                models[variant] = f"model.{variant}.onnx"
                manifest["default_model"] = "fp32" if record["default"] == "fp32" else variant
                quant = {"mode": chosen.kind, "name": chosen.name, "target": target, "variant": variant, **details}
                for v in others:
                    models[v] = f"model.{v}.onnx"
            write_manifest(tmp, manifest)
        with steps.step("measure agreement with the PyTorch reference on sample inputs"):
            from .agreement import measure

            with _quiet():
                agreement, torch_params = measure(source, task, tmp, list(models))
        invariance: dict[str, Any] = {}
        if record is not None:
            invariance["fp32"] = record["fp32_batch_invariance"]
            for v in models:
                if v != "fp32":
                    facts = others.get(v, quant)
                    invariance[v] = facts["batch_invariance"]["min_cosine"]
        elif task != "image-classification":
            from ..quality import builtin_texts

            texts = builtin_texts("validation")
            invariance["fp32"] = _text_invariance(tmp, task, "fp32", texts)["min_cosine"]
        # weights in files of their own: memory-mapped at load (see card.externalize)
        model_data = {v: card.externalize(tmp / f).name for v, f in models.items()}
        manifest["model_data"] = model_data
        sizes = {v: sum((tmp / f).stat().st_size for f in (models[v], model_data[v])) for v in models}
        manifest["card"] = {
            "parameters": torch_params,
            "onnx_parameters": graph["parameters"],
            "macs": macs,
            "flops": 2 * macs,
            "reference_input": dims,
            "size_bytes": sizes,
            "opset": graph["opset"],
            "ir_version": graph["ir_version"],
            "quantization": quant,
            "quantized_ops": card.graph_summary(tmp / models[quant.get("variant", "fp32")])["quantized_ops"],
            "agreement": {"optimum_validation": "passed", **agreement},
            "batch_invariance": invariance,
        }
        if record is not None:
            manifest["card"]["search"] = record
            if others:  # kept so that the device can choose (edgert tune); each with its own figures
                manifest["card"]["candidates"] = {
                    v: {"name": f["recipe"]["name"], "mode": f["recipe"]["kind"], "target": target, **f}
                    for v, f in others.items()
                }
        with steps.step("write the manifest and move the bundle into place"):
            manifest["provenance"] = {
                "name": source.catalog or Path(source.location).name,
                "source": source.spec,
                "source_location": source.location,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "export_seconds": None,
                "seed": SEED,
                "options": {**asdict(options), "target": target},
                "host": {"machine": platform.machine(), "cpu_features": list(cpu_features())},
                "versions": _versions(),
            }
            manifest["provenance"]["export_seconds"] = round(time.perf_counter() - started, 2)
            write_manifest(tmp, manifest)
            Bundle.open(tmp, verify=True)
            place.check_output(  # still a bundle?
                out, source.path if source.local else None, options.force, discard_unlisted=options.discard_unlisted
            )
            place.place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if record is not None and not record["met"] and not options.allow_miss:
        b = record["budget"]
        wanted = (
            f"{b['task']['budget']} on {b['task']['data']['name']}, judged on the interval's lower bound"
            if "task" in b
            else f"{options.accuracy_budget} {b['metric']} vs fp32"
        )
        raise BudgetMissError(
            f"no recipe met the budget ({wanted}, and batch invariance >= {b['batch_invariance']}); wrote {out} "
            "with fp32 as its default model and the search in its card (edgert inspect); --allow-miss accepts this",
            out,
        )
    return Bundle.open(out)


__all__ = ["export_bundle", "ExportOptions", "MANIFEST", "BudgetMissError"]
