"""``ImportOptions``: how a ready ONNX file is read, each option declared once (default, help, flag) for the
library and for ``edgert import``, which generates its arguments from these fields.

``None`` (or ``()``) means "not given": the importer then reads the value from the model, or uses the default the
help names. An option the task does not read (each pipeline declares its ``import_options``) must stay unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ImportOptionError
from .options import check as _check
from .options import given as _given
from .options import option

MAX_MAX_LENGTH = 1 << 16
MAX_AUDIO_RATE = 384_000
MAX_AUDIO_CALL = 1 << 22  # samples per call (window + context): 4 Mi, minutes of audio at 16 kHz
MAX_SIDE = 16384
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


def hxw(text: str) -> tuple[int, int]:
    """'224x224' (or one number for a square) as (height, width)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        raise ImportOptionError("size", f"{text!r}: expected HxW, e.g. 224x224") from None
    if len(parts) > 2:
        raise ImportOptionError("size", f"{text!r}: expected HxW, e.g. 224x224")
    return h, w


def numbers(text: str) -> tuple[float, ...]:
    """'0.5' or '0.485,0.456,0.406'."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ImportOptionError("mean", f"{text!r}: expected one number or three, comma-separated") from None


def pair(text: str) -> tuple[str, str]:
    """'state:stateN' as (input, output)."""
    inp, sep, out = text.partition(":")
    if not sep or not inp or not out:
        raise ImportOptionError("states", f"{text!r}: expected INPUT:OUTPUT, e.g. state:stateN")
    return inp, out


def finite(xs: tuple[float, ...] | None) -> bool:
    return xs is None or (len(xs) in (1, 3) and all(map(math.isfinite, xs)))


def within(v: float | None, lo: float, hi: float) -> bool:
    return v is None or lo <= v <= hi


def check(condition: object, name: str, message: str) -> None:
    _check(condition, name, message, ImportOptionError)


def _tasks() -> tuple[str, ...]:
    from .tasks import registry

    return registry.importable()


@dataclass(frozen=True)
class ImportOptions:
    task: str = option(help="what the model is for; raw runs it as is (feeds in, outputs out)", choices=_tasks)
    labels: str | None = option(
        None,
        help="one label per line, or the model's metadata (metadata or metadata:KEY)",
        metavar="FILE|metadata[:KEY]",
    )
    output: str | None = option(None, help="the output to read", metavar="NAME", shown="the first")
    output_kind: str | None = option(
        None, help="what the output holds", choices=("logits", "probabilities"),
        shown="probabilities if the graph's output comes out of Softmax or Sigmoid, else logits",
    )  # fmt: skip
    # images
    size: tuple[int, int] | None = option(
        None, help="resize images to this", metavar="HxW", parse=hxw, shown="the model's fixed size"
    )
    shortest_edge: int | None = option(None, help="or resize the shortest edge to N, keeping the aspect", metavar="N")
    crop: tuple[int, int] | None = option(None, help="then center-crop to this", metavar="HxW", parse=hxw)
    resample: str | None = option(None, help="the resize filter (Pillow's)", choices=RESAMPLE, shown="bilinear")
    scale: float | None = option(None, help="pixel values times this; 1 keeps 0 to 255", shown="1/255")
    mean: tuple[float, ...] | None = option(
        None, help="subtracted after scaling, in the model's channel order", metavar="M[,M,M]", parse=numbers, shown="0"
    )
    std: tuple[float, ...] | None = option(
        None, help="divides after the mean", metavar="S[,S,S]", parse=numbers, shown="1"
    )
    channel_order: str | None = option(
        None, help="the channel order the model takes", choices=("RGB", "BGR"), shown="RGB"
    )
    layout: str | None = option(None, help="NCHW or NHWC", choices=("NCHW", "NHWC"), shown="read from the input")
    # streaming audio
    sample_rate: int | None = option(None, help="audio: samples per second the model takes")
    window: int | None = option(None, help="audio: new samples per call", shown="the input's fixed length - context")
    context: int | None = option(
        None, help="audio: samples of the previous window repeated first (a stateful model with a dynamic input "
        "needs it)", shown="the input's fixed length - window",
    )  # fmt: skip
    audio_input: str | None = option(None, help="audio: the samples' input", metavar="NAME", shown="the first input")
    sample_rate_input: str | None = option(None, help="audio: a scalar input fed the sample rate", metavar="NAME")
    states: tuple[tuple[str, str], ...] = option(
        (), help="audio: a state carried from output OUT to input IN (repeatable)", flag="--state", metavar="IN:OUT",
        parse=pair, many=True,
    )  # fmt: skip
    # texts
    tokenizer: str | None = option(None, help="tokenizer.json, for text tasks", metavar="FILE")
    pooling: str | None = option(
        None, help="how token vectors become one", choices=("mean", "cls", "none"), shown="mean"
    )
    normalize: bool | None = option(None, help="L2-normalise embeddings")
    max_length: int | None = option(None, help="tokens per text", shown="512")

    def __post_init__(self) -> None:
        from .tasks import registry

        o = self
        tasks = registry.importable()
        check(o.task in tasks, "task", f"must be one of {', '.join(tasks)}, got {o.task!r}")
        check(o.output_kind in (None, "logits", "probabilities"), "output_kind", "is logits or probabilities")
        check(o.resample in (None, *RESAMPLE), "resample", f"is one of {', '.join(RESAMPLE)}")
        check(o.scale is None or (math.isfinite(o.scale) and o.scale > 0), "scale", f"must be > 0, got {o.scale}")
        check(finite(o.mean), "mean", "takes one finite number or three")
        check(finite(o.std), "std", "takes one finite number or three")
        check(o.std is None or all(s != 0 for s in o.std), "std", "cannot hold a zero")
        check(o.channel_order in (None, "RGB", "BGR"), "channel_order", "is RGB or BGR")
        check(o.layout in (None, "NCHW", "NHWC"), "layout", "is NCHW or NHWC")
        check(o.pooling in (None, "mean", "cls", "none"), "pooling", "is mean, cls or none")
        check(within(o.max_length, 2, MAX_MAX_LENGTH), "max_length", f"must be 2 to {MAX_MAX_LENGTH}")
        check(not (o.size and o.shortest_edge), "shortest_edge", "and size exclude each other")
        check(within(o.sample_rate, 1, MAX_AUDIO_RATE), "sample_rate", f"must be 1 to {MAX_AUDIO_RATE}")
        check(within(o.window, 1, MAX_AUDIO_CALL), "window", f"must be 1 to {MAX_AUDIO_CALL}")
        check(within(o.context, 0, MAX_AUDIO_CALL), "context", f"must be 0 to {MAX_AUDIO_CALL}")
        check(within(o.shortest_edge, 1, MAX_SIDE), "shortest_edge", f"must be 1 to {MAX_SIDE}")
        for name in ("size", "crop"):
            value = getattr(o, name)
            check(value is None or all(1 <= d <= MAX_SIDE for d in value), name, f"sides must be 1 to {MAX_SIDE}")
        uses = registry.pipeline(o.task).import_options
        unused = sorted(f for f in self.given() if f != "task" and f not in uses)
        if unused:
            raise ImportOptionError(unused[0], f"is not read by task {o.task}: leave out {', '.join(unused)}")
        if o.crop and o.size:
            check(
                o.crop[0] <= o.size[0] and o.crop[1] <= o.size[1],
                "crop",
                f"{o.crop[0]}x{o.crop[1]} is larger than size {o.size[0]}x{o.size[1]}: it would pad the image with "
                "black",
            )
        if o.crop and o.shortest_edge:
            check(
                max(o.crop) <= o.shortest_edge,
                "crop",
                f"{o.crop[0]}x{o.crop[1]} is larger than shortest_edge {o.shortest_edge}: it would pad the image with "
                "black",
            )

    def given(self) -> dict[str, Any]:
        """The options that were set (the task too), as provenance records them."""
        return _given(self)
