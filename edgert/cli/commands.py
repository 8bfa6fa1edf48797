"""The commands behind ``edgert``: each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from ..bundle import Bundle
from ..catalog import resolve_bundle
from ..errors import EdgertError, MissingDependencyError, TaskError

if TYPE_CHECKING:
    import numpy as np

    from ..tasks import Task

T = TypeVar("T", bound="Task")


def _export_api() -> ModuleType:
    try:
        from ..export import build
    except ImportError as exc:
        raise MissingDependencyError(
            f"export needs torch, optimum and transformers ({exc}); run: pip install 'edgert[export]'"
        ) from None
    return build


def cmd_export(args: Namespace) -> int:
    from .options import from_args

    export = _export_api()
    options = from_args(export.ExportOptions, args)
    from .render import print_card

    judge = None
    if args.eval or args.eval_budget:  # the set is read and the budget checked before the export's work
        if not (args.eval and args.eval_budget):
            raise EdgertError("--eval and --eval-budget go together: a task set and the budget to meet on it")
        from ..eval.judge import TaskJudge

        judge = TaskJudge(args.eval, args.eval_budget)
    try:
        bundle = export.export_bundle(args.source, args.output, options, judge=judge)
    except export.BudgetMissError as miss:
        print_card(Bundle.open(miss.path))
        print(f"edgert: {miss}", file=sys.stderr)
        return 1
    print(f"wrote {bundle.path}")
    print_card(bundle)
    return 0


def cmd_import(args: Namespace) -> int:
    from ..import_options import ImportOptions
    from ..importer import import_model
    from .options import from_args
    from .render import print_card

    options = from_args(ImportOptions, args)
    bundle = import_model(
        args.model, args.out, options, force=args.force or args.discard_unlisted, discard_unlisted=args.discard_unlisted
    )
    print(f"wrote {bundle.path}")
    print_card(bundle)
    return 0


def cmd_inspect(args: Namespace) -> int:
    bundle = Bundle.open(resolve_bundle(args.bundle), verify=True)
    if args.json:
        print(json.dumps(bundle.raw, indent=2))
        return 0
    from .render import print_card

    print_card(bundle)
    return 0


class _Inputs:
    """Chunks of inputs: the flag's items (--text by default), or --file lines, or stdin lines.

    Given items must all be valid text, or the command stops before any work. A line of a file or of stdin that
    is not UTF-8 is reported on stderr with its line number and skipped; the other lines are processed, and the
    command then exits 2. Line endings (\\n or \\r\\n) are not part of a line.
    """

    def __init__(self, args: Namespace, items: list[str] | None = None, flag: str = "--text"):
        self.items = args.text if items is None else items
        self.file = args.file
        self.flag = flag
        self.skipped = 0
        if self.items and self.file is not None:
            raise EdgertError(f"pass {flag} or --file, not both (--file {self.file} would be ignored)")
        for i, item in enumerate(self.items, 1):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = ord(item[exc.start])
                raise EdgertError(
                    f"{flag} #{i}: not valid UTF-8 text (U+{bad:04X}, a lone surrogate, at position {exc.start})"
                ) from None
        if not self.items and self.file is None and sys.stdin.isatty():
            raise EdgertError(
                f"no input: pass {flag} {'PATH' if flag == '--image' else 'TEXT'}, --file FILE, or pipe lines on stdin"
            )

    def __iter__(self) -> Iterator[list[str]]:
        if self.items:
            yield list(self.items)
            return
        if self.file in (None, "-"):
            name, stream = "stdin", sys.stdin.buffer
        else:
            name = self.file
            try:
                stream = open(self.file, "rb")
            except OSError as exc:
                raise EdgertError(f"{self.file}: cannot read ({exc.strerror})") from None
        with stream:
            chunk: list[str] = []
            for number, raw in enumerate(stream, 1):
                end = len(raw) - raw.endswith(b"\n")
                end -= raw[end - 1 : end] == b"\r"
                try:  # decoded through a view and the bytes dropped at once: a 50 MB line is not held three times
                    line = str(memoryview(raw)[:end], "utf-8")
                except UnicodeDecodeError as exc:
                    self.skip(f"{name}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})")
                    continue
                finally:
                    del raw
                chunk.append(line)
                if len(chunk) >= 1024:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    def skip(self, reason: str) -> None:
        self.skipped += 1
        print(f"edgert: error: {reason}; skipped", file=sys.stderr, flush=True)

    def status(self) -> int:
        if self.skipped:
            print(f"edgert: {self.skipped} input(s) skipped (see above); the others were processed", file=sys.stderr)
            return 2
        return 0


def _load(args: Namespace, pipeline: type[T], bundle: Bundle | None = None) -> T:
    """The pipeline for the command's bundle; the manifest is read once (pass it when the caller has)."""
    from .. import load

    bundle = bundle or Bundle.open(resolve_bundle(args.bundle))
    if bundle.task not in pipeline.tasks:
        raise TaskError(
            f"{bundle.path}: bundle task is {bundle.task!r}; `edgert {args.command}` needs a "
            f"{' or '.join(pipeline.tasks)} bundle"
        )
    model = load(bundle, variant=args.variant)
    if not isinstance(model, pipeline):  # a task the pipeline serves loads as that pipeline
        raise TaskError(f"{bundle.path}: loaded as {type(model).__name__}, not {pipeline.__name__}")
    return model


def cmd_embed(args: Namespace) -> int:
    from ..tasks import TextEmbedder

    inputs = _Inputs(args)  # bad arguments are refused before the model loads
    model = _load(args, TextEmbedder)
    out = sys.stdout
    for chunk in inputs:
        vectors = model.embed(chunk, batch_size=args.batch_size)
        for text, vec in zip(chunk, vectors):
            out.write(json.dumps({"text": text, "embedding": vec.tolist()}, ensure_ascii=False) + "\n")
    out.flush()
    return inputs.status()


def _decoded(inputs: _Inputs, chunk: list[str], first: int) -> tuple[list[str], list[np.ndarray]]:
    """The images of a chunk that decode; each one that does not is reported and skipped."""
    from ..tasks.image import to_rgb

    names, pixels = [], []
    for i, item in enumerate(chunk):
        try:
            pixels.append(to_rgb(item, first + i))
            names.append(item)
        except (EdgertError, ValueError, TypeError) as exc:
            inputs.skip(str(exc))
    return names, pixels


def cmd_classify(args: Namespace) -> int:
    from ..tasks import ImageClassifier, TextClassifier

    bundle = Bundle.open(resolve_bundle(args.bundle))
    images = bundle.task in ImageClassifier.tasks
    if images and args.text:
        raise EdgertError(f"{bundle.path} classifies images: pass --image PATH (or --file with one path per line)")
    if not images and args.image:
        raise EdgertError(f"{bundle.path} classifies texts: --image needs an image-classification bundle")
    inputs = _Inputs(args, args.image, "--image") if images else _Inputs(args)
    model: ImageClassifier | TextClassifier = (
        _load(args, ImageClassifier, bundle) if images else _load(args, TextClassifier, bundle)
    )
    key = "image" if images else "text"
    out = sys.stdout
    seen = 0
    for chunk in inputs:
        items: list[str] = chunk
        if isinstance(model, ImageClassifier):
            items, pixels = _decoded(inputs, chunk, seen)
            predictions = model.classify(pixels, top_k=args.top_k, batch_size=args.batch_size)
        else:
            predictions = model.classify(chunk, top_k=args.top_k, batch_size=args.batch_size)
        seen += len(chunk)
        for item, preds in zip(items, predictions):
            labels = [{"label": p.label, "score": p.score} for p in preds]
            out.write(json.dumps({key: item, "labels": labels}, ensure_ascii=False) + "\n")
    out.flush()
    return inputs.status()


def cmd_detect(args: Namespace) -> int:
    """Each file in turn: one that cannot be read or has another sample rate is reported and skipped."""
    from ..tasks import AudioStream
    from ..tasks.audio import read_wav
    from ..tasks.segments import SegmentRules

    SegmentRules(  # bad rules are refused before any work
        args.threshold, args.end_threshold, args.min_speech_ms, args.min_silence_ms, args.speech_pad_ms
    )
    model = _load(args, AudioStream)
    skipped = 0
    for path in args.wav:
        try:
            samples, rate = read_wav(path)
            if rate != model.sample_rate:
                raise EdgertError(f"{path}: {rate} Hz, but the model takes {model.sample_rate} Hz; resample it first")
        except EdgertError as exc:
            print(f"edgert: error: {exc}; skipped", file=sys.stderr)
            skipped += 1
            continue
        segments = model.detect(
            samples,
            threshold=args.threshold,
            end_threshold=args.end_threshold,
            min_speech_ms=args.min_speech_ms,
            min_silence_ms=args.min_silence_ms,
            speech_pad_ms=args.speech_pad_ms,
        )
        print(json.dumps({"file": path, "seconds": round(len(samples) / rate, 3), "segments": segments}))
    return 2 if skipped else 0


def cmd_device(args: Namespace) -> int:
    from ..device import U8S8_SATURATES, describe, u8s8_exact

    d = describe()
    kinds = ", ".join(f"{n}x {t}" for t, n in d.core_types.items())
    rows = [
        ("cpu", d.cpu),
        ("cores", f"{d.cores}" + (f" ({kinds})" if kinds else "")),
        ("machine", d.machine),
        ("features", " ".join(d.features) or "-"),
        ("board", d.board or "-"),
        ("os", d.os),
        ("governor", d.governor or "-"),
        ("quantization target", d.quantization_target),
        (
            "int8 u8 x s8",
            "exact: int8-pertoken-vnni models run here"
            if u8s8_exact(d.features, d.machine)
            else f"{U8S8_SATURATES}: int8-pertoken-vnni models load fp32 here",
        ),
        ("device profile", d.profile),
        ("onnxruntime", f"{d.onnxruntime} ({', '.join(d.providers)})"),
        ("kernels", d.kernels),
    ]
    from ..device import meters as energy

    found = energy.probe()
    for name in energy.METERS:
        if name in found["usable"]:
            rows.append((f"energy {name}", f"usable: {found['usable'][name].source}"))
        else:
            rows.append((f"energy {name}", f"not usable: {found['unavailable'][name]}"))
    if not found["usable"]:
        profile, watts = energy.profile_for(d.board, d.machine)
        rows.append(("energy", f"bench will ESTIMATE: CPU time x {watts:g} W per core (profile {profile})"))
    from .render import print_rows

    print_rows(rows)
    return 0


def cmd_bench(args: Namespace) -> int:
    from .bench import run_bench

    return run_bench(args, resolve_bundle)


def cmd_eval(args: Namespace) -> int:
    from .eval import run_eval

    return run_eval(args, resolve_bundle)


def cmd_history(args: Namespace) -> int:
    from .history import run_history

    return run_history(args)


def cmd_tune(args: Namespace) -> int:
    from .tune import run_tune

    return run_tune(args, resolve_bundle)


def cmd_monitor(args: Namespace) -> int:
    from .monitor import run_monitor

    return run_monitor(args)


def cmd_check(args: Namespace) -> int:
    from .check import run_check

    return run_check(args, resolve_bundle)


def cmd_fleet(args: Namespace) -> int:
    from .fleet import run_fleet

    return run_fleet(args, resolve_bundle)


def cmd_compare(args: Namespace) -> int:
    from .bench import run_compare

    return run_compare(args)
