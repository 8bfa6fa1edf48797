"""``edgert import MODEL.onnx -o BUNDLE``: a ready ONNX file (from a vendor, a paper, a package) made into a bundle.

The bundle gets the same manifest, file hashes and verification as an export, with the pre- and post-processing
given by flags, checked against what the model declares (input rank, channel count, fixed sizes, dtypes, the
number of labels); a contradiction is one line, before anything is written. Only the runtime's dependencies are
needed: no torch, no optimum.
"""

from __future__ import annotations

import ast
import json
import platform
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import safepath
from ._version import __version__
from .bundle import Bundle, write_manifest
from .device import versions
from .errors import ImportOptionError, ModelImportError
from .external_data import needed_bytes, references
from .graph_facts import final_activation
from .import_options import MAX_AUDIO_CALL, ImportOptions
from .kernels import resample as _resample
from .session import ORT_DTYPES, SessionConfig, create_session
from .tasks import registry

LABEL_KEYS = ("labels", "classes", "class_names", "names", "character", "id2label")
MAX_TEXT_FILE = 256 << 20  # a tokenizer.json or a labels file: a few MB in practice


def _label_list(value: Any, where: str) -> list[str]:
    """One rule for labels: a list of strings; an object whose keys are exactly 0..n-1; or text, one label per line
    (or comma-separated on one line). Anything else is refused, never guessed at."""
    if isinstance(value, str):
        parts = value.splitlines() if "\n" in value else value.split(",")
        value = [p.strip() for p in parts if p.strip()]
    elif isinstance(value, dict):
        try:
            keys = sorted(int(k) for k in value)
        except (TypeError, ValueError):
            raise ModelImportError(
                f"{where}: label keys must be class indices 0..n-1, got {sorted(value)[:5]}"
            ) from None
        if keys != list(range(len(value))):
            raise ImportOptionError(
                "labels", f"{where}: label keys must be exactly 0..{len(value) - 1}, got {keys[:8]}"
            )
        value = [value[k] for k in sorted(value, key=int)]
    if not isinstance(value, list) or not value:
        raise ImportOptionError(
            "labels", f"{where}: labels must be a non-empty list, an index map or text, got {value!r:.60}"
        )
    if not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in value):
        raise ImportOptionError("labels", f"{where}: every label must be a string, got {value!r:.60}")
    labels = [str(x).strip() for x in value]
    if not all(labels):
        raise ImportOptionError("labels", f"{where}: a label is empty")
    return labels


def _labels(spec: str, session: Any) -> list[str]:
    if spec == "metadata" or spec.startswith("metadata:"):
        meta = dict(session.get_modelmeta().custom_metadata_map)
        keys = [spec.split(":", 1)[1]] if ":" in spec else [k for k in LABEL_KEYS if k in meta]
        if not keys or keys[0] not in meta:
            raise ImportOptionError(
                "labels", f"{spec}: the model's metadata has no {keys or list(LABEL_KEYS)} (has {sorted(meta)})"
            )
        raw = meta[keys[0]]
        try:
            value = json.loads(raw)
        except ValueError:
            try:  # a Python literal, as some exporters write their class names: {0: 'person', 1: 'bicycle'}
                value = ast.literal_eval(raw) if raw.lstrip()[:1] in ("{", "[") else raw
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = raw
        if isinstance(value, (int, float)):
            value = raw
        return _label_list(value, spec)
    path = Path(spec).expanduser()
    try:
        text = safepath.read_bounded(path, MAX_TEXT_FILE, error=ModelImportError, what="labels").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportOptionError("labels", f"{spec}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return _label_list([line.strip() for line in text.splitlines() if line.strip()], spec)


def _image_pre(o: ImportOptions, shape: list[Any], dtype: str, where: str) -> tuple[dict[str, Any], str]:
    mean, std, resample = o.mean or (0.0,), o.std or (1.0,), o.resample or "bilinear"  # set by _resolved
    if len(shape) != 4:
        raise ModelImportError(f"{where}: an image model takes (N, C, H, W) or (N, H, W, C); its input is {shape}")
    layout = o.layout or ("NCHW" if shape[1] == 3 else "NHWC" if shape[3] == 3 else None)
    if layout is None:
        raise ModelImportError(f"{where}: cannot tell NCHW from NHWC in {shape}; set layout")
    channels, (h, w) = (shape[1], shape[2:]) if layout == "NCHW" else (shape[3], shape[1:3])
    if isinstance(channels, int) and channels != 3:
        raise ModelImportError(f"{where}: a {layout} input of {shape} has {channels} channels; edgert feeds 3")
    fixed = (h, w) if all(isinstance(d, int) and d > 0 for d in (h, w)) else None
    size = o.size or (fixed if not (o.crop or o.shortest_edge) else None)
    final = o.crop or size
    if final is None:
        raise ModelImportError(f"{where}: the input {shape} has no fixed size; set size (or shortest_edge and crop)")
    if fixed and tuple(final) != tuple(fixed):
        raise ModelImportError(
            f"{where}: preprocessing would make {final[0]}x{final[1]} but the input is fixed at {h}x{w}"
        )
    if dtype not in ("tensor(float)", "tensor(float16)", "tensor(uint8)"):
        raise ModelImportError(f"{where}: image input type {dtype} is not float32, float16 or uint8")
    if dtype == "tensor(uint8)" and (o.scale != 1 or any(mean) or any(s != 1 for s in std)):
        raise ImportOptionError("scale", f"{where}: a uint8 input takes pixels as they are: scale 1, no mean or std")
    pre: dict[str, Any] = {
        "kind": "image",
        "do_resize": bool(o.shortest_edge or size),
        "size": {"shortest_edge": o.shortest_edge}
        if o.shortest_edge
        else dict(zip(("height", "width"), size or final)),
        "resample": {v: k for k, v in _resample.NAMES.items()}[resample],
        "do_center_crop": o.crop is not None,
        "do_rescale": o.scale != 1,
        "rescale_factor": o.scale,
        "do_normalize": bool(any(mean) or any(s != 1 for s in std)),
        "image_mean": list(mean),
        "image_std": list(std),
        "channel_order": o.channel_order,
        "layout": layout,
    }
    if o.crop:
        pre["crop_size"] = {"height": o.crop[0], "width": o.crop[1]}
    return pre, layout


def _audio_pre(o: ImportOptions, inputs: Any, outputs: Any, where: str) -> dict[str, Any]:
    if not o.sample_rate:
        raise ImportOptionError("sample_rate", f"is needed by task {o.task}")
    by_name = {i.name: i for i in inputs}
    audio = o.audio_input or inputs[0].name
    if audio not in by_name:
        raise ImportOptionError("audio_input", f"{audio}: the model's inputs are {list(by_name)}")
    length = by_name[audio].shape[-1] if by_name[audio].shape else None
    length = length if isinstance(length, int) and length > 0 else None
    window, context = o.window, o.context
    if length is not None:  # the input's fixed length is window + context: either one gives the other
        if window is None and context is not None:
            window = length - context
        elif context is None and window is not None:
            context = length - window
        if window is None or context is None or window < 1 or context < 0 or window + context != length:
            raise ImportOptionError(
                "window",
                f"{where}: input {audio} takes {length} samples per call; window and context must add up to it "
                f"(got window {o.window}, context {o.context})",
            )
    else:
        if window is None:
            raise ImportOptionError("window", f"is needed: {where} input {audio} has no fixed length")
        if context is None:
            if o.states:  # a stateful model usually repeats the end of the last window: never guess it
                raise ImportOptionError(
                    "context",
                    f"is needed: {where} is a stateful model whose input {audio} has no fixed length (the samples "
                    "of the previous window it repeats; Silero VAD: 64 at 16 kHz; 0 if none)",
                )
            context = 0
    if window + context > MAX_AUDIO_CALL:
        raise ImportOptionError("window", f"window + context is {window + context} samples, more than {MAX_AUDIO_CALL}")
    states = []
    for inp, out in o.states:
        if inp not in by_name or out not in [x.name for x in outputs]:
            raise ImportOptionError(
                "states",
                f"{inp}:{out}: the model's inputs are {list(by_name)}, its outputs {[x.name for x in outputs]}",
            )
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in by_name[inp].shape]  # a dynamic batch: 1
        states.append({"input": inp, "output": out, "shape": shape})
    fed = {audio, *(s["input"] for s in states), *([o.sample_rate_input] if o.sample_rate_input else [])}
    if set(by_name) - fed:
        raise ModelImportError(
            f"{where}: inputs {sorted(set(by_name) - fed)} would get nothing; name them in states (IN:OUT) or "
            "sample_rate_input"
        )
    return {
        "kind": "audio",
        "sample_rate": o.sample_rate,
        "window": window,
        "context": context,
        "audio_input": audio,
        **({"sample_rate_input": o.sample_rate_input} if o.sample_rate_input else {}),
        "states": states,
    }


def _output_kind(o: ImportOptions, model: Path, output: str) -> str:
    """probabilities when the graph's output comes out of Softmax or Sigmoid, unless told; a flag that contradicts
    the graph is refused."""
    activation = final_activation(model, output)
    if activation == "log-softmax":
        raise ModelImportError(
            f"{model.name}: output {output} comes out of LogSoftmax (log-probabilities); edgert's classifiers take "
            "logits or probabilities: export the model without it, or import it as task raw"
        )
    inferred = "probabilities" if activation else None
    if o.output_kind == "logits" and activation:
        raise ImportOptionError(
            "output_kind",
            f"logits contradicts the graph: {model.name} output {output} comes out of {activation.capitalize()}, so "
            "it holds probabilities; leave it out (or set probabilities)",
        )
    return o.output_kind or inferred or "logits"


def _copy_model(model: Path, tmp: Path) -> list[str]:
    """Copies the graph and exactly the external data onnxruntime reads for it into ``tmp``; returns their names.

    Every location must be a plain relative path that resolves, after symlinks, to a regular file inside the
    model's folder, holding the bytes the tensors declare; only those bytes are copied. Nothing is written
    outside ``tmp``.
    """
    size = safepath.regular_file(model, error=ModelImportError, what="model")
    safepath.copy_bounded(model, tmp / model.name, size, error=ModelImportError, what="model")
    names = [model.name]
    for location, end in needed_bytes(references(tmp / model.name)).items():
        src = safepath.inside(model.parent, location, error=ModelImportError, what=f"{model.name}: external data")
        have = safepath.regular_file(src, error=ModelImportError, what=f"{model.name}: external data")
        if end is None:
            raise ModelImportError(
                f"{model.name}: external data {location!r} holds a tensor of unknown size; cannot bound the copy"
            )
        if have < end:
            raise ModelImportError(
                f"{model.name}: external data {location!r} is {have:,} bytes, but its tensors read up to byte {end:,}"
            )
        dst = tmp / location
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelImportError(f"{model.name}: external data {location!r}: cannot place it ({exc})") from None
        if dst.exists():  # two locations naming one path; tmp holds only what this loop made
            raise ModelImportError(f"{model.name}: external data {location!r} clashes with another file")
        safepath.copy_bounded(src, dst, end, error=ModelImportError, what=f"{model.name}: external data")
        names.append(location)
    return names


def _spec(xs: Any) -> list[dict[str, Any]]:
    """Inputs or outputs as the export's card lists them: name, NumPy dtype name, shape (symbolic dims as strings)."""
    return [
        {
            "name": x.name,
            "dtype": np.dtype(ORT_DTYPES[x.type]).name if x.type in ORT_DTYPES else x.type,
            "shape": [d if isinstance(d, int) else str(d) for d in x.shape],
        }
        for x in xs
    ]


#: the value an unset option takes when the task reads it and the model does not say
DEFAULTS: dict[str, Any] = {
    "resample": "bilinear", "scale": 1 / 255, "mean": (0.0,), "std": (1.0,), "channel_order": "RGB",
    "max_length": 512, "pooling": "mean", "normalize": False,
}  # fmt: skip


def _resolved(o: ImportOptions) -> ImportOptions:
    """The options with the defaults of the task's own unset fields filled in."""
    uses = registry.pipeline(o.task).import_options
    return replace(o, **{k: v for k, v in DEFAULTS.items() if k in uses and getattr(o, k) is None})


def import_model(
    model: str | Path, out: str | Path, options: ImportOptions, *, force: bool = False, discard_unlisted: bool = False
) -> Bundle:
    """Makes a bundle at OUT from a ready ONNX file; refuses contradictions between flags and model first.

    The model and the external data it names are copied (within the bounds its tensors declare) into a work
    directory beside OUT and read from there; nothing is written outside it before every check has passed.
    ``force`` replaces an existing bundle at OUT; one holding files its manifest does not list is refused unless
    ``discard_unlisted`` too.
    """
    from .export import place

    o = _resolved(options)
    model = Path(model).expanduser().absolute()
    safepath.regular_file(model, error=ModelImportError, what="model")
    model = model.resolve()
    out = Path(out).expanduser().absolute()
    out = out.parent.resolve() / out.name
    if out == model.parent or out in model.parents:
        raise ModelImportError(f"{out}: holds the model being imported; choose another output directory")
    place.recover(out)
    place.check_output(out, None, force, discard_unlisted=discard_unlisted)
    pipeline = registry.pipeline(o.task)
    tokenizer = None
    if pipeline.input_kind == "text":
        if not o.tokenizer:
            raise ImportOptionError("tokenizer", f"is needed by task {o.task} (its tokenizer.json)")
        tokenizer = Path(o.tokenizer).expanduser()
        safepath.regular_file(tokenizer, error=ModelImportError, what="tokenizer", max_bytes=MAX_TEXT_FILE)
    tmp = place.work_dir(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        files = _copy_model(model, tmp)
        local = tmp / model.name
        session = create_session(local, SessionConfig(graph_optimization="disable", cache_optimized=False))
        inputs, outputs = session.get_inputs(), session.get_outputs()
        output = o.output or outputs[0].name
        if output not in [x.name for x in outputs]:
            raise ImportOptionError("output", f"{output}: the model's outputs are {[x.name for x in outputs]}")
        where = f"{model.name}"
        pre: dict[str, Any] = {}
        post: dict[str, Any] = {"output": output}
        if pipeline.input_kind == "image":
            pre, _ = _image_pre(o, list(inputs[0].shape), inputs[0].type, f"{where} input {inputs[0].name}")
        elif pipeline.input_kind == "audio":
            pre = _audio_pre(o, inputs, outputs, where)
            post["output_kind"] = _output_kind(o, local, output)
        elif tokenizer is not None:
            if "input_ids" not in [i.name for i in inputs]:
                raise ModelImportError(
                    f"{where}: a text model takes input_ids; its inputs are {[i.name for i in inputs]}"
                )
            pre = {
                "kind": "text",
                "tokenizer": "tokenizer.json",
                "files": ["tokenizer.json"],
                "max_length": o.max_length,
            }
            post.update({k: getattr(o, k) for k in ("pooling", "normalize") if k in pipeline.import_options})
        if pipeline.labelled:
            width = next(x.shape for x in outputs if x.name == output)
            width = width[-1] if width and isinstance(width[-1], int) and width[-1] > 0 else None
            labels = _labels(o.labels, session) if o.labels else None
            if labels and width and len(labels) != width:
                raise ImportOptionError(
                    "labels", f"gives {len(labels)} labels but the output {output} has {width} classes"
                )
            if labels:
                post["labels"] = labels
            post["output_kind"] = _output_kind(o, local, output)
        if tokenizer is not None:
            safepath.copy_bounded(
                tokenizer, tmp / "tokenizer.json", tokenizer.stat().st_size, error=ModelImportError, what="tokenizer"
            )
        write_manifest(
            tmp,
            {
                "task": o.task,
                "models": {"model": model.name},
                "default_model": "model",
                "inputs": _spec(inputs),
                "outputs": _spec(outputs),
                "pre": pre,
                "post": post,
                "card": {"imported": True, "size_bytes": {"model": sum((tmp / f).stat().st_size for f in files)}},
                "provenance": {
                    "name": model.stem,
                    "source": str(model),
                    "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "options": options.given(),
                    "host": {"machine": platform.machine()},
                    "versions": {"edgert": __version__, **versions(("onnxruntime", "numpy", "tokenizers"))},
                },
            },
        )
        del session
        from .api import load

        load(Bundle.open(tmp, verify=True), verify=False)  # the pipeline accepts what was written
        place.place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Bundle.open(out)
