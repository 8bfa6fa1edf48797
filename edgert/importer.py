"""``edgert import MODEL.onnx -o BUNDLE``: a ready ONNX file (from a vendor, a paper, a package) made into a bundle.

The bundle gets the same manifest, file hashes and verification as an export, with the pre- and post-processing
given by flags, checked against what the model declares (input rank, channel count, fixed sizes, dtypes, the
number of labels); a contradiction is one line, before anything is written. Only the runtime's dependencies are
needed: no torch, no optimum.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .bundle import Bundle, write_manifest
from .device import versions
from .errors import EdgertError
from .external_data import locations
from .kernels import resample as _resample
from .session import ORT_DTYPES, SessionConfig, create_session

TASKS = ("image-classification", "text-classification", "sentence-embedding", "audio-stream", "raw")
LABEL_KEYS = ("labels", "classes", "class_names", "names", "character", "id2label")


class ModelImportError(EdgertError):
    """A model and flags that cannot make a bundle; the message names the contradiction."""


@dataclass(frozen=True)
class ImportOptions:
    task: str = "raw"
    labels: str | None = None  # a file (one label per line), or "metadata" / "metadata:KEY"
    output: str | None = None  # the output to read (default: the first)
    output_kind: str = "logits"  # or "probabilities": no softmax on top
    # images
    size: tuple[int, int] | None = None  # resize to (height, width); default: the model's fixed size
    shortest_edge: int | None = None  # or resize the shortest edge to this, keeping the aspect ratio
    crop: tuple[int, int] | None = None  # then center-crop to (height, width)
    resample: str = "bilinear"
    scale: float = 1 / 255  # pixel values times this (1: keep 0 to 255)
    mean: tuple[float, ...] = (0.0,)  # subtracted after scaling, in the model's channel order
    std: tuple[float, ...] = (1.0,)
    channel_order: str = "RGB"
    layout: str | None = None  # NCHW or NHWC; default: read from the model's input shape
    # streaming audio
    sample_rate: int | None = None
    window: int | None = None  # new samples per call
    context: int = 0  # samples of the previous window repeated before each new one
    audio_input: str | None = None  # default: the model's first input
    sample_rate_input: str | None = None  # a scalar input fed the sample rate
    states: tuple[tuple[str, str], ...] = ()  # (input, output) pairs carried from call to call
    # texts
    tokenizer: str | None = None
    pooling: str = "mean"
    normalize: bool = False
    max_length: int = 512

    def __post_init__(self) -> None:
        checks = [
            (self.task in TASKS, f"--task must be one of {', '.join(TASKS)}, got {self.task!r}"),
            (self.output_kind in ("logits", "probabilities"), "--output-kind is logits or probabilities"),
            (self.resample in _resample.NAMES.values(), f"--resample is one of {', '.join(_resample.NAMES.values())}"),
            (self.scale > 0, f"--scale must be > 0, got {self.scale}"),
            (len(self.mean) in (1, 3) and len(self.std) in (1, 3), "--mean and --std take one number or three"),
            (all(s != 0 for s in self.std), "--std cannot hold a zero"),
            (self.channel_order in ("RGB", "BGR"), "--channel-order is RGB or BGR"),
            (self.layout in (None, "NCHW", "NHWC"), "--layout is NCHW or NHWC"),
            (self.pooling in ("mean", "cls", "none"), "--pooling is mean, cls or none"),
            (self.max_length >= 2, "--max-length must be at least 2"),
            (not (self.size and self.shortest_edge), "--size and --shortest-edge exclude each other"),
        ]
        for ok, message in checks:
            if not ok:
                raise ModelImportError(message)


def _labels(spec: str, session) -> list[str]:
    if spec == "metadata" or spec.startswith("metadata:"):
        meta = dict(session.get_modelmeta().custom_metadata_map)
        keys = [spec.split(":", 1)[1]] if ":" in spec else [k for k in LABEL_KEYS if k in meta]
        if not keys or keys[0] not in meta:
            raise ModelImportError(
                f"--labels {spec}: the model's metadata has no {keys or list(LABEL_KEYS)} (has {sorted(meta)})"
            )
        raw = meta[keys[0]]
        try:
            value = json.loads(raw)
        except ValueError:
            value = [x for x in (raw.splitlines() if "\n" in raw else raw.split(",")) if x.strip()]
        if isinstance(value, dict):  # {"0": "cat", ...}
            value = [value[k] for k in sorted(value, key=lambda k: int(k))]
        return [str(x).strip() for x in value]
    path = Path(spec).expanduser()
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelImportError(f"--labels {spec}: cannot read it as a text file ({exc})") from None


def _image_pre(o: ImportOptions, shape: list, dtype: str, where: str) -> tuple[dict[str, Any], str]:
    if len(shape) != 4:
        raise ModelImportError(f"{where}: an image model takes (N, C, H, W) or (N, H, W, C); its input is {shape}")
    layout = o.layout or ("NCHW" if shape[1] == 3 else "NHWC" if shape[3] == 3 else None)
    if layout is None:
        raise ModelImportError(f"{where}: cannot tell NCHW from NHWC in {shape}; pass --layout")
    channels, (h, w) = (shape[1], shape[2:]) if layout == "NCHW" else (shape[3], shape[1:3])
    if isinstance(channels, int) and channels != 3:
        raise ModelImportError(f"{where}: a {layout} input of {shape} has {channels} channels; edgert feeds 3")
    fixed = (h, w) if all(isinstance(d, int) and d > 0 for d in (h, w)) else None
    size = o.size or (fixed if not (o.crop or o.shortest_edge) else None)
    final = o.crop or size
    if final is None:
        raise ModelImportError(
            f"{where}: the input {shape} has no fixed size; pass --size HxW (or --shortest-edge N and --crop HxW)"
        )
    if fixed and tuple(final) != tuple(fixed):
        raise ModelImportError(
            f"{where}: preprocessing would make {final[0]}x{final[1]} but the input is fixed at {h}x{w}"
        )
    if dtype not in ("tensor(float)", "tensor(float16)", "tensor(uint8)"):
        raise ModelImportError(f"{where}: image input type {dtype} is not float32, float16 or uint8")
    if dtype == "tensor(uint8)" and (o.scale != 1 or any(o.mean) or any(s != 1 for s in o.std)):
        raise ModelImportError(f"{where}: a uint8 input takes pixels as they are: --scale 1, no --mean or --std")
    pre: dict[str, Any] = {
        "kind": "image",
        "do_resize": bool(o.shortest_edge or size),
        "size": {"shortest_edge": o.shortest_edge}
        if o.shortest_edge
        else dict(zip(("height", "width"), size or final)),
        "resample": {v: k for k, v in _resample.NAMES.items()}[o.resample],
        "do_center_crop": o.crop is not None,
        "do_rescale": o.scale != 1,
        "rescale_factor": o.scale,
        "do_normalize": bool(any(o.mean) or any(s != 1 for s in o.std)),
        "image_mean": list(o.mean),
        "image_std": list(o.std),
        "channel_order": o.channel_order,
        "layout": layout,
    }
    if o.crop:
        pre["crop_size"] = {"height": o.crop[0], "width": o.crop[1]}
    return pre, layout


def _audio_pre(o: ImportOptions, inputs, outputs, where: str) -> dict[str, Any]:
    if not o.sample_rate or not o.window:
        raise ModelImportError("--task audio-stream needs --sample-rate and --window")
    by_name = {i.name: i for i in inputs}
    audio = o.audio_input or inputs[0].name
    if audio not in by_name:
        raise ModelImportError(f"--audio-input {audio}: the model's inputs are {list(by_name)}")
    length = by_name[audio].shape[-1] if by_name[audio].shape else None
    if isinstance(length, int) and length > 0 and length != o.window + o.context:
        raise ModelImportError(
            f"{where}: input {audio} takes {length} samples per call, not --window {o.window} + --context {o.context}"
        )
    states = []
    for inp, out in o.states:
        if inp not in by_name or out not in [x.name for x in outputs]:
            raise ModelImportError(
                f"--state {inp}:{out}: the model's inputs are {list(by_name)}, its outputs {[x.name for x in outputs]}"
            )
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in by_name[inp].shape]  # a dynamic batch: 1
        states.append({"input": inp, "output": out, "shape": shape})
    fed = {audio, *(s["input"] for s in states), *([o.sample_rate_input] if o.sample_rate_input else [])}
    if set(by_name) - fed:
        raise ModelImportError(
            f"{where}: inputs {sorted(set(by_name) - fed)} would get nothing; name them with --state IN:OUT or "
            "--sample-rate-input"
        )
    return {
        "kind": "audio",
        "sample_rate": o.sample_rate,
        "window": o.window,
        "context": o.context,
        "audio_input": audio,
        **({"sample_rate_input": o.sample_rate_input} if o.sample_rate_input else {}),
        "states": states,
    }


def _spec(xs) -> list[dict[str, Any]]:
    """Inputs or outputs as the export's card lists them: name, NumPy dtype name, shape (symbolic dims as strings)."""
    return [
        {
            "name": x.name,
            "dtype": np.dtype(ORT_DTYPES[x.type]).name if x.type in ORT_DTYPES else x.type,
            "shape": [d if isinstance(d, int) else str(d) for d in x.shape],
        }
        for x in xs
    ]


def import_model(model: str | Path, out: str | Path, options: ImportOptions, *, force: bool = False) -> Bundle:
    """Makes a bundle at OUT from a ready ONNX file; refuses contradictions between flags and model first."""
    from .export import place

    model = Path(model).expanduser().resolve()
    if not model.is_file():
        raise ModelImportError(f"{model}: no such model file")
    out = Path(out).expanduser().absolute()
    out = out.parent.resolve() / out.name
    if out == model.parent or out in model.parents:
        raise ModelImportError(f"{out}: holds the model being imported; choose another output directory")
    place.recover(out)
    place.check_output(out, None, force)
    session = create_session(model, SessionConfig(graph_optimization="disable", cache_optimized=False))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    output = options.output or outputs[0].name
    if output not in [o.name for o in outputs]:
        raise ModelImportError(f"--output {output}: the model's outputs are {[o.name for o in outputs]}")
    where = f"{model.name}"
    pre: dict[str, Any] = {}
    post: dict[str, Any] = {"output": output}
    files = [model.name, *locations(model)]
    if options.task == "image-classification":
        pre, _ = _image_pre(options, list(inputs[0].shape), inputs[0].type, f"{where} input {inputs[0].name}")
    elif options.task == "audio-stream":
        pre = _audio_pre(options, inputs, outputs, where)
        post["output_kind"] = options.output_kind
    elif options.task in ("text-classification", "sentence-embedding"):
        if not options.tokenizer:
            raise ModelImportError(f"--task {options.task} needs --tokenizer tokenizer.json")
        if "input_ids" not in [i.name for i in inputs]:
            raise ModelImportError(f"{where}: a text model takes input_ids; its inputs are {[i.name for i in inputs]}")
        pre = {
            "kind": "text",
            "tokenizer": "tokenizer.json",
            "files": ["tokenizer.json"],
            "max_length": options.max_length,
        }
        if options.task == "sentence-embedding":
            post.update(pooling=options.pooling, normalize=options.normalize)
    if options.task in ("image-classification", "text-classification"):
        width = next(o.shape for o in outputs if o.name == output)
        width = width[-1] if width and isinstance(width[-1], int) and width[-1] > 0 else None
        labels = _labels(options.labels, session) if options.labels else None
        if labels and width and len(labels) != width:
            raise ModelImportError(f"--labels gives {len(labels)} labels but the output {output} has {width} classes")
        if labels:
            post["labels"] = labels
        post["output_kind"] = options.output_kind
    tmp = place.work_dir(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(model.parent / name, tmp / name)
        if options.tokenizer:
            shutil.copy2(Path(options.tokenizer).expanduser(), tmp / "tokenizer.json")
        write_manifest(
            tmp,
            {
                "task": options.task,
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
                    "options": asdict(options),
                    "host": {"machine": platform.machine()},
                    "versions": {"edgert": __version__, **versions(("onnxruntime", "numpy", "tokenizers"))},
                },
            },
        )
        from .api import load

        load(Bundle.open(tmp, verify=True), verify=False)  # the pipeline accepts what was written
        place.place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Bundle.open(out)
