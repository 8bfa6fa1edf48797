"""What one inference is: the bundle's own task on realistic text or camera-sized images, a user's file, or random
tensors for a bare ONNX model, built from the declared shapes and dtypes (dynamic dimensions from --shape)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from tokenizers import Tokenizer

from ..errors import EdgertError
from ..session import SessionConfig, numpy_dtype
from ..tasks import AudioStream, RawModel, Task
from ..tasks.classification import TextClassifier
from ..tasks.embedding import TextEmbedder
from ..tasks.image import ImageClassifier
from ..tasks.image_map import ImageMap
from ..tasks.text import read_lines
from .records import InputFacts
from .spec import TargetSpec

NodeArg = Any  # onnxruntime.NodeArg: onnxruntime ships no type information
TextTask = TextEmbedder | TextClassifier
ImageTask = ImageClassifier | ImageMap
BATCH_NAMES = {"batch", "batch_size", "n", "N", "B", "b", "unk__0"}
WORDS = (
    "the device reads a short message from the user and the model turns it into a vector so that similar notes "
    "photos and songs can be found quickly without a network connection while the battery lasts all day"
).split()


def texts_of_length(tokenizer: Tokenizer, seq_len: int, n: int) -> list[str]:
    """n different texts of seq_len tokens (special tokens included, so seq_len - 2 words' tokens for BERT).

    Each is cut from a longer random text at the end offset of its last wanted token: one encode per text.
    """
    rng = np.random.default_rng(0)
    special = len(tokenizer.encode("").ids)
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS, size=seq_len + 8))
        enc = tokenizer.encode(text)
        keep = max(seq_len - special, 1)
        content = [(s, e) for (s, e), sid in zip(enc.offsets, enc.special_tokens_mask) if not sid]
        out.append(text[: content[min(keep, len(content)) - 1][1]])
    return out


def _accept_any(batch: int) -> None:
    return None


@dataclass
class Target:
    """A loaded model and how to make one inference of a given batch size.

    make_call(batch) runs exactly `batch` items. A batch the model or the input cannot take for real is refused:
    refusal(batch) gives the one-line reason, and bench never runs it, let alone multiplies a smaller one.
    """

    model: Task
    kind: str  # "text", "image", "audio" or "raw"
    description: str
    make_call: Callable[[int], Callable[[], object]]
    facts: InputFacts
    load_ms: float = 0.0
    latency_batch: int = 1  # the smallest batch the model takes: 1, or a model's fixed batch
    refusal: Callable[[int], str | None] = _accept_any


def open_target(
    path: Path,
    *,
    variant: str | None,
    threads: int,
    seq_len: int,
    shapes: dict[str, tuple[int, ...]],
    input_file: Path | None,
    values: dict[str, float] | None = None,
    memory: str = "default",
) -> Target:
    import time

    from ..api import load
    from ..bundle import Bundle
    from ..tasks import registry

    config = SessionConfig(intra_op_threads=threads, memory=memory)
    t = time.perf_counter_ns()
    source = path if path.suffix == ".onnx" else Bundle.open(path)  # the manifest, read once
    # a bundle whose task has no pipeline is measured as a raw session
    task = None if isinstance(source, Path) or source.task in registry.names() else "raw"
    model = load(source, variant=variant, config=config, task=task)
    load_ms = (time.perf_counter_ns() - t) / 1e6
    if values and not isinstance(model, RawModel):
        raise EdgertError("--value sets inputs of a raw ONNX model; this bundle's task builds its own inputs")
    target = _target(model, seq_len, shapes, input_file, values or {})
    target.load_ms = load_ms
    return target


def open_spec(spec: TargetSpec) -> Target:
    """The target a worker or cold-start process is told to open."""
    return open_target(
        spec.target,
        variant=spec.variant,
        threads=spec.threads,
        seq_len=spec.seq_len,
        shapes=spec.parsed_shapes(),
        input_file=spec.input_file,
        values=spec.parsed_values(),
        memory=spec.memory,
    )


def _target(
    model: Task, seq_len: int, shapes: dict[str, tuple[int, ...]], input_file: Path | None, values: dict[str, float]
) -> Target:
    """The workload for a pipeline, chosen by what its class declares it takes (edgert.tasks.registry)."""
    kind = type(model).input_kind
    if kind == "text":
        return _text_target(cast(TextTask, model), seq_len, input_file)
    if kind == "image":
        return _image_target(cast(ImageTask, model), input_file)
    if kind == "audio":
        return _audio_target(cast(AudioStream, model), input_file)
    return _raw_target(cast(RawModel, model), shapes, input_file, values)


def _batch_call(model: Task) -> Callable[..., object]:
    """The method that runs one batch, as the pipeline's class names it (bench_call)."""
    name = type(model).bench_call
    if name is None:
        raise EdgertError(f"bench does not know how to drive a {type(model).__name__} (it declares no bench_call)")
    call: Callable[..., object] = getattr(model, name)
    return call


def _text_target(model: TextTask, seq_len: int, input_file: Path | None) -> Target:
    if input_file is not None:
        texts = read_lines(input_file, hint="; a text bundle takes a text file, one text per line")
        texts = [t for t in texts if t] or [""]
        what = f"{len(texts)} texts from {input_file.name}"
    else:
        if seq_len > model.encoder.max_length:
            raise EdgertError(f"--seq-len {seq_len} is past the model's max length {model.encoder.max_length}")
        texts = texts_of_length(model.encoder.tokenizer, seq_len, 32)
        what = f"text of {seq_len} tokens"
    lengths = [len(e) for e in model.encoder.encode(texts)]
    run = _batch_call(model)

    def make_call(batch: int) -> Callable[[], object]:
        chunk = [texts[i % len(texts)] for i in range(batch)]
        return lambda: run(chunk, batch_size=batch)

    return Target(
        model, "text", f"{model.bundle.task}, {what}", make_call, InputFacts(mean_tokens=float(np.mean(lengths)))
    )


def _audio_target(model: AudioStream, input_file: Path | None) -> Target:
    """One item is one window of new samples through a live stream, state carried: a batch of n runs n windows in
    order, as a device does when it catches up. Real-time factor = time per window / the window's duration."""
    from ..tasks.audio import read_wav

    if input_file is not None:
        samples, rate = read_wav(input_file)
        if rate != model.sample_rate:
            raise EdgertError(f"{input_file}: {rate} Hz, but the model takes {model.sample_rate} Hz; resample it first")
        what = f"{input_file.name}, {len(samples) / rate:.1f} s"
    else:
        rng = np.random.default_rng(0)
        samples = rng.normal(0, 0.05, model.sample_rate * 10) * np.sin(np.arange(model.sample_rate * 10) / 800)
        samples = samples.astype(np.float32)
        what = "10 s of modulated noise"
    if len(samples) < model.window:
        raise EdgertError(f"{input_file}: shorter than one window ({model.window} samples)")
    stream = model.stream()
    position = [0]

    def make_call(batch: int) -> Callable[[], object]:
        n = batch * model.window

        def call() -> object:
            start = position[0] if position[0] + n <= len(samples) else 0
            position[0] = start + n
            return stream.push(samples[start : start + n])

        if n > len(samples):
            raise EdgertError(f"batch {batch} refused: {n} samples is more than the input's {len(samples)}")
        return call

    window_ms = model.seconds_per_window * 1000
    desc = f"audio stream, windows of {model.window} samples ({window_ms:g} ms at {model.sample_rate} Hz), {what}"
    return Target(model, "audio", desc, make_call, InputFacts(window_ms=window_ms))


def camera_frames(n: int, height: int = 480, width: int = 640) -> list[np.ndarray]:
    """n different uint8 RGB frames: smooth gradients with sensor-like noise (the cost does not depend on content)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for _ in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([x / width * 255 * a, y / height * 255 * b, (x + y) / (width + height) * 255 * c], axis=2)
        frames.append(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))
    return frames


def _image_target(model: ImageTask, input_file: Path | None) -> Target:
    from ..tasks.image import to_rgb

    run = _batch_call(model)
    if input_file is not None:
        frames = [to_rgb(input_file)]
        what = f"image {input_file.name} ({frames[0].shape[1]}x{frames[0].shape[0]})"
    else:
        frames = camera_frames(8)
        what = "640x480 RGB frames"
    h, w = model.image_size

    def make_call(batch: int) -> Callable[[], object]:
        chunk = [frames[i % len(frames)] for i in range(batch)]
        return lambda: run(chunk, batch_size=batch)

    return Target(
        model,
        "image",
        f"{model.bundle.task}, {what} resized to {w}x{h}",
        make_call,
        InputFacts(image=f"{frames[0].shape[1]}x{frames[0].shape[0]}", model_input=f"{w}x{h}"),
    )


def _raw_target(
    model: RawModel, shapes: dict[str, tuple[int, ...]], input_file: Path | None, values: dict[str, float]
) -> Target:
    inputs = model.session.get_inputs()
    names = ", ".join(i.name for i in inputs)
    for flag, given in (("--shape", shapes), ("--value", values)):
        unknown = set(given) - {i.name for i in inputs}
        if unknown:
            raise EdgertError(f"{flag} names unknown inputs {sorted(unknown)}; the model takes {names}")
    if input_file is not None:
        return _file_target(model, inputs, input_file)
    rng = np.random.default_rng(0)
    plan = []
    for i in inputs:
        dynamic_batch = bool(i.shape) and not (isinstance(i.shape[0], int) and i.shape[0] > 0)
        if i.name in shapes:
            shape = shapes[i.name]
            if len(shape) != len(i.shape):
                raise EdgertError(f"--shape {i.name}: {len(shape)} dims given, the model declares {i.shape}")
            # a dynamic first dimension is the batch: it follows the phase's batch size
            plan.append((i, list(shape), 0 if dynamic_batch else None))
            continue
        if not i.shape and i.name not in values:
            kind = np.dtype(numpy_dtype(i.type)).name
            raise EdgertError(
                f"input {i.name!r} is a scalar ({kind}); its value matters (a sample rate, a length, a flag), so "
                f"bench does not guess it: pass --value {i.name}=N"
            )
        dims, batch_axis = [], None
        for axis, d in enumerate(i.shape):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif axis == 0 and (d is None or str(d) in BATCH_NAMES):
                dims.append(1)
                batch_axis = 0
            else:
                wanted = "x".join(str(x) if isinstance(x, int) and x > 0 else f"<{x or '?'}>" for x in i.shape)
                raise EdgertError(
                    f"input {i.name!r} has a dynamic dimension {d!r}; pass --shape {i.name}={wanted} "
                    f"with numbers, e.g. --shape {i.name}="
                    + "x".join(
                        str(x) if isinstance(x, int) and x > 0 else ("1" if a == 0 else "16")
                        for a, x in enumerate(i.shape)
                    )
                )
        plan.append((i, dims, batch_axis))

    # The batch: inputs with a dynamic first dimension follow it. An input of rank >= 1 whose first dimension is
    # fixed fixes the batch for the whole model; scalars (rank 0) have no batch and are sent as they are.
    fixed = [(i.name, dims[0]) for i, dims, axis in plan if dims and axis is None]
    batched = any(axis is not None for _, _, axis in plan)
    if fixed:
        name, size = fixed[0]
        latency_batch = size

        def refusal(batch: int) -> str | None:
            if batch == size:
                return None
            return f"batch {batch} refused: input {name!r} has a fixed batch of {size}"
    elif not batched:
        latency_batch = 1

        def refusal(batch: int) -> str | None:
            return None if batch == 1 else f"batch {batch} refused: no input has a batch dimension"
    else:
        latency_batch, refusal = 1, _accept_any

    def feeds(batch: int) -> dict[str, np.ndarray]:
        out = {}
        for i, dims, batch_axis in plan:
            shape = list(dims)
            if batch_axis is not None:
                shape[batch_axis] = batch
            dtype = numpy_dtype(i.type)
            if i.name in values:
                out[i.name] = np.full(shape, values[i.name]).astype(dtype)
            elif dtype == np.object_:  # a string input: words
                out[i.name] = rng.choice(np.array(WORDS, dtype=object), size=shape)
            elif dtype == np.bool_:
                out[i.name] = rng.random(shape) > 0.5
            elif np.issubdtype(dtype, np.integer):
                out[i.name] = rng.integers(0, 100, size=shape).astype(dtype)
            else:
                out[i.name] = rng.standard_normal(shape).astype(dtype)
        return out

    def make_call(batch: int) -> Callable[[], object]:
        if (why := refusal(batch)) is not None:
            raise EdgertError(why)
        f = feeds(batch)
        return lambda: model.run(f)

    def show(i: NodeArg, dims: list[int]) -> str:
        shape = "x".join(map(str, dims)) if dims else "scalar"
        value = f"={values[i.name]:g}" if i.name in values else ""
        return f"{i.name} {shape} {i.type[7:-1]}{value}"

    desc = ", ".join(show(i, dims) for i, dims, _ in plan)
    return Target(
        model, "raw", f"random inputs: {desc}", make_call, InputFacts(inputs=desc), 0.0, latency_batch, refusal
    )


def _file_target(model: RawModel, inputs: list[NodeArg], input_file: Path) -> Target:
    """Arrays from an .npz. When every input has a dynamic first dimension and the arrays agree on it, a batch
    of any size is built for real by repeating the file's rows; otherwise only the file's own batch runs."""
    try:
        data = dict(np.load(input_file))
    except (OSError, ValueError) as exc:
        raise EdgertError(f"{input_file}: not a readable .npz of input arrays ({exc})") from None
    missing = {i.name for i in inputs} - set(data)
    if missing:
        raise EdgertError(f"{input_file}: no array for input(s) {sorted(missing)}")
    rows = {data[i.name].shape[0] for i in inputs if data[i.name].ndim}
    dynamic = all(
        data[i.name].ndim and i.shape and not (isinstance(i.shape[0], int) and i.shape[0] > 0) for i in inputs
    )
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in data.items()}
    if dynamic and len(rows) == 1:
        (n,) = rows

        def make_call(batch: int) -> Callable[[], object]:
            index = np.arange(batch) % n
            tiled = {k: np.take(v, index, axis=0) for k, v in data.items()}
            return lambda: model.run(tiled)

        what = f"arrays from {input_file.name} ({n} rows, repeated or cut to each batch)"
        return Target(model, "raw", what, make_call, InputFacts(shapes=shapes))
    why = (
        "the arrays disagree on their first dimension"
        if len(rows) > 1
        else "not every input has a dynamic batch dimension"
    )
    first = data[inputs[0].name]
    own = int(first.shape[0]) if first.ndim else 1  # the items one call runs: the first input's rows

    def refusal(batch: int) -> str | None:
        return None if batch == own else f"batch {batch} refused: {input_file.name} runs as given ({why})"

    def make_file_call(batch: int) -> Callable[[], object]:
        if (reason := refusal(batch)) is not None:
            raise EdgertError(reason)
        return lambda: model.run(data)

    return Target(
        model, "raw", f"arrays from {input_file.name}", make_file_call, InputFacts(shapes=shapes), 0.0, own, refusal
    )
