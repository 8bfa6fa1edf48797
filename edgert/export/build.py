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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .._version import __version__
from ..bundle import MANIFEST, Bundle, write_manifest
from ..device import cpu_features, quantization_target
from ..errors import EdgertError, ExportError, require
from . import card
from .source import OPTIMUM_TASKS, TASK_CHOICES, Source, detect_task, embedding_post, labels, resolve, text_pre

QUANTIZE_CHOICES = ("none", "dynamic")
TARGET_CHOICES = ("auto", "avx2", "avx512", "avx512_vnni", "arm64")
REFERENCE_DIMS = {"batch_size": 1, "sequence_length": 128}
SEED = 0


@dataclass(frozen=True)
class ExportOptions:
    task: str = "auto"
    quantize: str = "dynamic"
    target: str = "auto"
    per_channel: bool = True
    opset: int | None = None
    force: bool = False

    def __post_init__(self) -> None:
        for value, choices, what in (
            (self.task, TASK_CHOICES, "task"),
            (self.quantize, QUANTIZE_CHOICES, "quantize"),
            (self.target, TARGET_CHOICES, "target"),
        ):
            if value not in choices:
                raise ExportError(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
        if self.opset is not None and not 11 <= self.opset <= 25:
            raise ExportError(f"opset {self.opset} is out of range (11-25)")

    @classmethod
    def fp32_only(cls, **kw: Any) -> ExportOptions:
        return cls(quantize="none", **kw)


class Steps:
    """Progress for a long export: one line per step on stderr, with its time."""

    def __init__(self, total: int, echo: Callable[[str], None] | None = None):
        self.total, self.n, self.echo = total, 0, echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self.start = time.perf_counter()
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, label: str):
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {label} ...")
        t = time.perf_counter()
        yield
        self.times[label] = round(time.perf_counter() - t, 3)
        self.echo(f"[{self.n}/{self.total}] {label}: done in {self.times[label]:.1f}s")


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"edgert": __version__, "python": platform.python_version()}
    for dist in (
        "optimum",
        "optimum-onnx",
        "onnxruntime",
        "onnx",
        "torch",
        "transformers",
        "sentence-transformers",
        "tokenizers",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@contextlib.contextmanager
def _quiet():
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


def _quantize(root: Path, target: str, per_channel: bool) -> dict[str, Any]:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    qconfig = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=per_channel)
    work = root / ".quantize"
    with _quiet():
        quantizer = ORTQuantizer.from_pretrained(root, file_name="model.onnx")
        quantizer.quantize(save_dir=work, quantization_config=qconfig)
    produced = work / "model_quantized.onnx"
    if not produced.is_file():
        raise ExportError(f"ORTQuantizer wrote no model_quantized.onnx in {work}")
    os.replace(produced, root / "model.int8.onnx")
    shutil.rmtree(work)
    return {
        "mode": "dynamic",
        "weights": "int8" if qconfig.weights_dtype.name.lower().startswith("qint8") else qconfig.weights_dtype.name,
        "activations": qconfig.activations_dtype.name,
        "target": target,
        "per_channel": per_channel,
        "format": qconfig.format.name,
        "operators": list(qconfig.operators_to_quantize),
    }


def _fix_tokenizer(root: Path, max_length: int) -> dict[str, Any]:
    """Turns off the tokenizer's fixed padding and sets truncation to the model's max length."""
    path = root / "tokenizer.json"
    if not path.is_file():
        raise ExportError(f"{path}: Optimum wrote no tokenizer.json; edgert needs a fast tokenizer")
    tok = json.loads(path.read_text(encoding="utf-8"))
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


def export_bundle(
    source_spec: str,
    out: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    echo: Callable[[str], None] | None = None,
) -> Bundle:
    """Exports SOURCE to a bundle at OUT. Built in a temporary sibling directory and renamed into place."""
    options = options or ExportOptions()
    out = Path(out).expanduser().resolve()
    if out.exists() and not options.force:
        raise ExportError(f"{out}: already exists; pass --force to replace it")
    source = resolve(source_spec)
    task = detect_task(source) if options.task == "auto" else options.task
    target = quantization_target() if options.target == "auto" else options.target
    quantize = options.quantize == "dynamic"
    _check_dependencies(task, quantize)
    steps = Steps(5 if quantize else 4, echo)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    try:
        with steps.step(f"export {source.spec} as {task} with Optimum (validated against PyTorch)"):
            _optimum_export(source, task, tmp, options.opset)
        quant: dict[str, Any] = {"mode": "none"}
        if quantize:
            with steps.step(f"quantize to dynamic int8 for {target} with ORTQuantizer"):
                quant = _quantize(tmp, target, options.per_channel)
        with steps.step("measure the model card (parameters, MACs, opset)"):
            inputs, outputs = card.io_spec(tmp / "model.onnx")
            graph = card.graph_summary(tmp / "model.onnx")
            dims = _reference_dims(source, task)
            macs = card.count_macs(tmp / "model.onnx", dims)
            models = {"fp32": "model.onnx"}
            if quantize:
                models["int8"] = "model.int8.onnx"
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
                "default_model": "int8" if quantize else "fp32",
                "inputs": inputs,
                "outputs": outputs,
                "pre": pre,
                "post": post,
            }
            write_manifest(tmp, manifest)  # provisional, so the runtime can load the bundle to measure it
        with steps.step("measure agreement with the PyTorch reference on sample inputs"):
            from .agreement import measure

            with _quiet():
                agreement, torch_params = measure(source, task, tmp, list(models))
        sizes = {v: (tmp / f).stat().st_size for v, f in models.items()}
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
            "quantized_ops": card.graph_summary(tmp / "model.int8.onnx")["quantized_ops"] if quantize else {},
            "agreement": {"optimum_validation": "passed", **agreement},
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
            if out.exists():
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.replace(out, old)
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Bundle.open(out)


__all__ = ["export_bundle", "ExportOptions", "MANIFEST"]
