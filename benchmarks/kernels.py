"""Cython kernels against their NumPy references, and pre+post-processing as a share of end-to-end latency.

    python benchmarks/kernels.py [--bundle DIR] [--variant int8|fp32] [--threads 1]

Writes the tables to stdout and to benchmarks/RESULTS.md (section "kernels").
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SENTENCE, default_bundle, machine_line, median, mixed_corpus, time_calls  # noqa: E402

import edgert  # noqa: E402
from edgert import kernels  # noqa: E402
from edgert.bench.workload import camera_frames  # noqa: E402


def kernel_cases(tokenizer) -> list[tuple[str, str, callable]]:
    rng = np.random.default_rng(0)
    ids = [e.ids for e in tokenizer.encode_batch(mixed_corpus(32))]
    ids1 = [tokenizer.encode(SENTENCE).ids]
    h32 = rng.standard_normal((32, 128, 384)).astype(np.float32)
    m32 = (np.arange(128)[None, :] < rng.integers(8, 129, size=32)[:, None]).astype(np.int64)
    h1 = rng.standard_normal((1, 16, 384)).astype(np.float32)
    m1 = np.ones((1, 16), np.int64)
    v32 = rng.standard_normal((32, 384)).astype(np.float32)
    logits = rng.standard_normal((32, 1000)).astype(np.float32)
    frame = camera_frames(1)[0]
    small = frame[:224, :224]
    lut = rng.standard_normal((3, 256)).astype(np.float32)
    chw = np.empty((3, 224, 224), np.float32)
    return [
        ("pack", "32 texts, 2-400 words", lambda impl: kernels.pack(ids, None, 0, impl=impl)),
        ("pack", "1 text, 16 tokens", lambda impl: kernels.pack(ids1, None, 0, impl=impl)),
        ("mean_pool", "32x128x384", lambda impl: kernels.mean_pool(h32, m32, impl=impl)),
        ("mean_pool", "1x16x384", lambda impl: kernels.mean_pool(h1, m1, impl=impl)),
        ("l2_normalize", "32x384", lambda impl: kernels.l2_normalize(v32, impl=impl)),
        ("softmax", "32x1000", lambda impl: kernels.softmax(logits, impl=impl)),
        ("softmax", "32x200", lambda impl: kernels.softmax(logits[:, :200], impl=impl)),
        ("softmax", "32x3", lambda impl: kernels.softmax(logits[:, :3], impl=impl)),
        ("top_k", "32x1000, k=5", lambda impl: kernels.top_k(logits, 5, impl=impl)),
        ("top_k", "32x3, k=1", lambda impl: kernels.top_k(logits[:, :3], 1, impl=impl)),
        ("resize", "640x480 to 224x224, bilinear", lambda impl: kernels.resize(frame, 224, 224, 2, impl=impl)),
        ("resize", "640x480 to 298x224, bicubic", lambda impl: kernels.resize(frame, 224, 298, 3, impl=impl)),
        ("to_chw", "224x224x3", lambda impl: kernels.to_chw(small, lut, chw, impl=impl)),
    ]


def pillow_resize_rows(repeats: int) -> list[str]:
    """Pillow itself on the same resizes, from and back to a NumPy array (what a Pillow-based pipeline pays),
    interleaved with edgert's kernel; the bytes must be the same."""
    try:
        from PIL import Image
    except ImportError:
        return []
    rng = np.random.default_rng(0)
    cases = [
        ((480, 640), (224, 224), 2, "640x480 to 224x224, bilinear"),
        ((720, 1280), (224, 398), 2, "1280x720 to 398x224, bilinear"),
        ((1080, 1920), (384, 683), 3, "1920x1080 to 683x384, bicubic"),
        ((32, 32), (224, 224), 2, "32x32 to 224x224, bilinear (upscale)"),
    ]
    rows = [
        f"Resizing through Pillow {Image.__version__} (array in and out) against edgert's kernel, interleaved:",
        "",
        "| resize | edgert µs | Pillow µs | Pillow / edgert | same bytes |",
        "|---|---|---|---|---|",
    ]
    for (h, w), (oh, ow), f, label in cases:
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

        def with_pillow(frame=frame, size=(ow, oh), f=f):
            return np.asarray(Image.fromarray(frame).resize(size, f))

        def with_edgert(frame=frame, oh=oh, ow=ow, f=f):
            return kernels.resize(frame, oh, ow, f)

        pil, ours = [], []
        for _ in range(10):
            pil += time_calls(with_pillow, max(repeats // 30, 2))
            ours += time_calls(with_edgert, max(repeats // 30, 2))
        same = np.array_equal(with_edgert(), with_pillow())
        a, b = median(ours) * 1e6, median(pil) * 1e6
        rows.append(f"| {label} | {a:.0f} | {b:.0f} | {b / a:.2f}x | {'yes' if same else 'NO'} |")
    return rows


class TimedSession:
    """Wraps session.run to add up the time spent inside onnxruntime."""

    def __init__(self, session):
        self.session, self.seconds = session, 0.0

    def run(self, *a, **k):
        t = time.perf_counter_ns()
        try:
            return self.session.run(*a, **k)
        finally:
            self.seconds += (time.perf_counter_ns() - t) / 1e9

    def __getattr__(self, name):
        return getattr(self.session, name)


def share(model, texts, batch_size, n) -> tuple[float, float]:
    """(median ms per call, median share of the call outside onnxruntime)."""
    timed = TimedSession(model.session)
    model.session = timed
    totals, shares = [], []
    try:
        for _ in range(n):
            timed.seconds = 0.0
            t = time.perf_counter_ns()
            model.embed(texts, batch_size=batch_size)
            total = (time.perf_counter_ns() - t) / 1e9
            totals.append(total)
            shares.append((total - timed.seconds) / total)
    finally:
        model.session = timed.session
    return median(totals) * 1e3, median(shares)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--variant", default="int8", choices=["fp32", "int8"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    impls = sorted(kernels.implementations())
    if "cython" not in impls:
        sys.exit("the compiled kernels are not built here; run scripts/bootstrap.sh first")
    bundle = (args.bundle or default_bundle()).resolve()
    model = edgert.load(bundle, variant=args.variant, config=edgert.SessionConfig(intra_op_threads=args.threads))

    rows = []
    gc.disable()
    for name, shape, fn in kernel_cases(model.encoder.tokenizer):
        samples = {impl: [] for impl in impls}
        for _ in range(10):  # interleave the implementations so that machine noise hits both alike
            for impl in impls:
                samples[impl] += time_calls(lambda impl=impl, fn=fn: fn(impl), args.repeats // 10)
        cy, ref = median(samples["cython"]) * 1e6, median(samples["numpy"]) * 1e6
        rows.append(f"| {name} | {shape} | {cy:.1f} | {ref:.1f} | {ref / cy:.1f}x |")
    pillow = pillow_resize_rows(args.repeats)
    gc.enable()

    corpus = mixed_corpus(256)
    e2e = []
    for label, texts, bs, n in (
        ("batch 1, 16-token sentence", [SENTENCE], 1, 300),
        ("256 mixed texts, batch 32", corpus, 32, 5),
    ):
        ms, frac = share(model, texts, bs, n)
        e2e.append(f"| {label} | {ms:.2f} | {frac * 100:.1f}% |")

    table = "\n".join(
        [
            f"Machine: {machine_line()}",
            "",
            f"Median over {args.repeats} calls per implementation, interleaved.",
            "",
            "| kernel | input | Cython µs | NumPy µs | speed-up |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "cls_pool has no compiled version: a slice copy, which NumPy does as fast (0.8x to 0.9x measured). "
            f"softmax runs compiled only on rows of up to {kernels.SOFTMAX_COMPILED_MAX_CLASSES} classes, NumPy's on "
            "longer ones (the table times both on every size).",
            "",
            *([*pillow, ""] if pillow else []),
            f"Pre- plus post-processing (tokenize, pack, pool, normalise, reorder) as a share of `embed()`, "
            f"all-MiniLM-L6-v2 {args.variant}, {args.threads} thread(s), Cython kernels:",
            "",
            "| workload | embed() ms | outside onnxruntime |",
            "|---|---|---|",
            *e2e,
        ]
    )
    print(table)
    if not args.no_write:
        from _results import write_section

        write_section(
            "kernels", table, f"python benchmarks/kernels.py --variant {args.variant} --threads {args.threads}"
        )


if __name__ == "__main__":
    main()
