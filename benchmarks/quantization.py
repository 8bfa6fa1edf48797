"""Each quantization recipe on a held-out corpus: accuracy, batch invariance, speed, size and peak memory.

    python benchmarks/quantization.py [--recipes dynamic,int8-weights,...] [--rounds 5]

The corpus was not used to choose any recipe: real text found on this machine, never in edgert's calibration or
validation files. It is messages translated into ~20 languages from the system's gettext catalogs, docstrings
and source code from Python's standard library, and the test suite's edge cases. Each recipe is exported with
``--quantize <recipe>`` into its own bundle (plus ``auto``, what the default bundle gets; a recipe's own name from
the card's search table, such as ``int8-pertoken-w7-sq-keep1+emb8``, is a search of that one), then all are measured
side by side in one process: batch-1 latency and mixed-corpus throughput on one thread, interleaved rounds,
medians; peak RSS in fresh processes. Writes the table to RESULTS.md.
"""

from __future__ import annotations

import argparse
import gettext
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_line
from _results import write_section

LANGS = (
    "ja",
    "zh_CN",
    "ko",
    "ar",
    "he",
    "hi",
    "ru",
    "uk",
    "el",
    "th",
    "vi",
    "de",
    "fr",
    "es",
    "pt_BR",
    "pl",
    "tr",
    "fa",
    "bn",
    "ta",
)
MODULES = (
    "json",
    "argparse",
    "collections",
    "pathlib",
    "subprocess",
    "email.message",
    "http.client",
    "csv",
    "textwrap",
    "statistics",
    "datetime",
    "shutil",
    "logging",
    "unittest",
    "zipfile",
    "threading",
)


def corpus(seed: int = 0) -> list[str]:
    from edgert.export.calibration import builtin_texts

    rng = np.random.default_rng(seed)
    seen = set(builtin_texts("calibration")) | set(builtin_texts("validation"))
    texts: list[str] = []
    for lang in LANGS:  # translated UI messages, ~6 per language
        msgs: list[str] = []
        for mo in sorted(Path("/usr/share/locale", lang, "LC_MESSAGES").glob("*.mo")):
            try:
                cat = gettext.GNUTranslations(open(mo, "rb"))
            except Exception:
                continue
            msgs += [v for k, v in cat._catalog.items() if isinstance(v, str) and 25 < len(v) < 400 and k]
        msgs = sorted(set(msgs))
        if msgs:
            texts += [msgs[i] for i in rng.choice(len(msgs), size=min(6, len(msgs)), replace=False)]
    docs, code = [], []
    for name in MODULES:
        mod = importlib.import_module(name)
        for _, obj in sorted(inspect.getmembers(mod, callable)):
            if getattr(obj, "__module__", None) != mod.__name__:
                continue
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 40:
                docs.append(doc)
            try:
                src = inspect.getsource(obj)
            except (OSError, TypeError):
                continue
            if 80 < len(src) < 1500:
                code.append(src)
    docs, code = sorted(set(docs)), sorted(set(code))
    texts += [docs[i] for i in rng.choice(len(docs), size=min(100, len(docs)), replace=False)]
    texts += [code[i] for i in rng.choice(len(code), size=min(60, len(code)), replace=False)]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import CORPUS

    texts += CORPUS
    return [t for t in texts if t not in seen]


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec, so a child of a big
# benchmark process would report the parent's peak.
#: the fresh processes' peak RSS so far, in KiB
_HWM = r"""
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
"""
PEAK = (
    _HWM
    + r"""
import json, sys, numpy, onnxruntime, tokenizers, edgert
imports = hwm()
model = edgert.load(sys.argv[1], variant=sys.argv[2])
model.embed(["one text, as an app would"])
one = hwm()
texts = json.load(open(sys.argv[3]))
for text in texts:
    model.embed([text])
print(imports, one, hwm())
"""
)


#: onnxruntime's one-time set-up in a fresh process (its kernel registry, allocators, the code its first session
#: touches), which any model pays: the first session of a one-node graph
SETUP = (
    _HWM
    + r"""
import numpy, onnx, onnxruntime as ort, tokenizers, edgert
from onnx import TensorProto, helper
imports = hwm()
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "one", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": numpy.ones(1, numpy.float32)})
print(imports, hwm())
"""
)


def runtime_setup(runs: int = 3) -> float:
    """Median MiB that onnxruntime's first session of a one-node graph adds over the imports, in fresh processes:
    the part of every model's figure over imports that no model can shrink."""
    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, "-c", SETUP], capture_output=True, text=True, check=True)
        imports, after = (int(x) for x in r.stdout.split())
        out.append((after - imports) / 1024)
    return float(np.median(out))


def evict(paths: list[Path]) -> None:
    """Drops PATHS from the page cache (written back first), as after a reboot. The memory-mapped weights' share
    of RSS depends on how the kernel cached the file: on Linux 6.18 (ext4), the int8 model's embedding table cost
    1.6 MiB of RSS after eviction, 2.3 after a cat of the file, 4.2 after a sha256sum and 6.6 right after export
    wrote it, for the same few rows looked up (a fault maps the whole large folio around a row)."""
    os.sync()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def peak_rss(
    bundle: str, variant: str, files: list[Path], texts: list[str], runs: int = 3
) -> tuple[float, float, float]:
    """Median (imports-only MiB, load-and-embed-one MiB, then after every text of TEXTS, one at a time as an app
    embeds them) over fresh processes, each started with the model's FILES out of the page cache (``evict``).
    The last figure grows over the second as the vocabulary touches more of the memory-mapped embedding table
    (clean file pages, which the kernel can take back) and as onnxruntime's arena grows to the longest text's
    buffers."""
    out = []
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(texts, f)
        f.flush()
        for _ in range(runs):
            evict(files)
            argv = [sys.executable, "-c", PEAK, bundle, variant, f.name]
            r = subprocess.run(argv, capture_output=True, text=True, check=True)
            out.append([int(x) / 1024 for x in r.stdout.split()])
    imports, one, corpus = (float(np.median([o[k] for o in out])) for k in range(3))
    return imports, one, corpus


def text_of_tokens(bundle: Path, texts: list[str], n: int = 128) -> str:
    """A text that the bundle's tokenizer turns into exactly N tokens (with [CLS] and [SEP]): words of the
    corpus, added one at a time."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tok.no_truncation()
    words, out = " ".join(texts).split(), []
    for word in words:
        if len(tok.encode(" ".join([*out, word])).ids) > n:
            continue
        out.append(word)
        if len(tok.encode(" ".join(out)).ids) == n:
            return " ".join(out)
    raise SystemExit(f"could not build a text of {n} tokens")


def interleaved(models, short, long128, rounds, mixed=None):
    """Per model, the samples of interleaved rounds (every model sees the same machine state): ms per text over
    SHORT one at a time, ms for LONG128, and, with MIXED, texts per second over MIXED in batches of 32. MODELS maps
    each name to its sessions (the same model loaded more than once); each round runs every session, in an order
    that turns by one each round, and a model's samples are those of all its sessions; also each session's 128-token
    samples, by (name, index)."""
    runs = [(n, i, m) for n, sessions in models.items() for i, m in enumerate(sessions)]
    t1 = {n: [] for n in models}
    each128: dict = {(n, i): [] for n, i, _ in runs}
    t128 = {n: [] for n in models}
    thr = {n: [] for n in models}
    for r in range(rounds):
        for n, i, m in runs[r % len(runs) :] + runs[: r % len(runs)]:
            t = time.perf_counter()
            for x in short:
                m.embed([x])
            t1[n].append((time.perf_counter() - t) * 1e3 / len(short))
            t = time.perf_counter()
            for _ in range(10):
                m.embed([long128])
            t128[n].append((time.perf_counter() - t) * 1e3 / 10)
            each128[n, i].append(t128[n][-1])
            if mixed is not None:
                t = time.perf_counter()
                m.embed(mixed, batch_size=32)
                thr[n].append(len(mixed) / (time.perf_counter() - t))
    return t1, t128, thr, each128


def invariance(model, texts, alone) -> float:
    """Worst cosine of each text alone against inside shuffled batches of 32 (edgert.quality's measure)."""
    from edgert import quality

    return quality.batch_invariance(model, texts, single=alone, seed=1)["min_cosine"]


def _cos(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", default="auto,dynamic,static,int8-weights,int4-weights,int8-pertoken")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--work", default=None, help="keep the exported bundles here (default: a temporary folder)")
    p.add_argument(
        "--sessions",
        type=int,
        default=3,
        help="each model is timed as this many onnxruntime sessions in the one process: one session of a model "
        "can run 10-20%% faster or slower than another of the same bytes, for the session's whole life",
    )
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import edgert
    from edgert.device import quantization_target
    from edgert.export.options import QUANTIZE_CHOICES
    from edgert.session import SessionConfig

    texts = corpus()
    print(f"corpus: {len(texts)} held-out texts; {machine_line()}", flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="edgert-quant-"))
    bundles: dict[str, tuple[Path, str]] = {}
    for recipe in args.recipes.split(","):
        out = work / recipe
        if not (out / "edgert.json").is_file():
            t = time.perf_counter()
            cmd = [sys.executable, "-m", "edgert.cli.main", "export", "minilm", "-o", str(out), "--quantize", recipe]
            if recipe not in QUANTIZE_CHOICES:  # a recipe's own name (the card's search table): a search of one
                cmd[-1:] = ["auto", "--candidates", recipe, "--allow-miss"]
            subprocess.run([*cmd, "--force"] if out.exists() else cmd, check=True, capture_output=True)
            print(f"exported {recipe} in {time.perf_counter() - t:.1f} s", flush=True)
        b = edgert.Bundle.open(out)
        searched = recipe == "auto" or recipe not in QUANTIZE_CHOICES
        variant = b.default_model if searched else b.card["quantization"].get("variant", "fp32")
        if recipe not in QUANTIZE_CHOICES and b.card["search"]["default"] != recipe:
            raise SystemExit(f"{recipe}: the search of one did not keep it ({b.card['search']['default']} instead)")
        bundles[recipe] = (out, variant)
    first = next(iter(bundles.values()))[0]
    one = SessionConfig(intra_op_threads=1, cache_optimized=False)
    sessions = {"fp32": [edgert.load(first, variant="fp32", config=one) for _ in range(args.sessions)]}
    for name, (path, variant) in bundles.items():
        sessions[name] = [edgert.load(path, variant=variant, config=one) for _ in range(args.sessions)]
    models = {n: s[0] for n, s in sessions.items()}  # accuracy and invariance: the same bytes, one session
    alone = {n: np.stack([m.embed([t])[0] for t in texts]) for n, m in models.items()}
    rows = []
    setup = runtime_setup()
    long128 = text_of_tokens(first, texts)
    short = texts[:: max(1, len(texts) // 32)][:32]
    timing, t128, mixed, each128 = interleaved(sessions, short, long128, args.rounds, mixed=texts)
    for n, m in models.items():
        cos = _cos(alone["fp32"], alone[n])
        inv = invariance(m, texts, alone[n])
        path, variant = bundles.get(n, (first, "fp32"))
        b = edgert.Bundle.open(path)
        files = [path / f for f in b.model_files(variant)]
        size = sum(f.stat().st_size for f in files)
        imports, peak, peak_corpus = peak_rss(str(path), variant, files, texts)
        lat, thr = float(np.median(timing[n])), float(np.median(mixed[n]))
        lat128 = float(np.median(t128[n]))
        rows.append(
            {
                "recipe": n if n != "auto" else f"auto -> {b.card['search']['default']}",
                "worst": cos.min(),
                "mean": cos.mean(),
                "invariance": inv,
                "ms": lat,
                "x_ms": float(np.median(timing["fp32"])) / lat if n != "fp32" else 1.0,
                "ms128": lat128,
                "x_ms128": float(np.median(t128["fp32"])) / lat128 if n != "fp32" else 1.0,
                "items_s": thr,
                "x_items": thr / float(np.median(mixed["fp32"])) if n != "fp32" else 1.0,
                "mb": size / 1e6,
                "peak": peak,
                "imports": imports,
                "x_model": (peak - imports) / (size / 2**20),
                "x_model_setup": (peak - imports - setup) / (size / 2**20),
                "peak_corpus": peak_corpus,
                "x_model_corpus": (peak_corpus - imports) / (size / 2**20),
            }
        )
    head = (
        "| recipe | worst cos | mean cos | batch invariance | batch-1 ms (x fp32) | 128 tokens ms (x fp32) "
        "| mixed texts/s (x fp32) "
        "| size MB | peak RSS MiB (over imports, x model) | over imports and onnxruntime's set-up, x model "
        "| after the corpus |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head] + [
        f"| {r['recipe']} | {r['worst']:.4f} | {r['mean']:.4f} | {r['invariance']:.6f} | {r['ms']:.2f} "
        f"({r['x_ms']:.2f}x) | {r['ms128']:.2f} ({r['x_ms128']:.2f}x) "
        f"| {r['items_s']:.0f} ({r['x_items']:.2f}x) | {r['mb']:.1f} | {r['peak']:.0f} "
        f"({r['peak'] - r['imports']:.0f}, {r['x_model']:.2f}x) | {r['x_model_setup']:.2f}x | {r['peak_corpus']:.0f} "
        f"({r['peak_corpus'] - r['imports']:.0f}, {r['x_model_corpus']:.2f}x) |"
        for r in rows
    ]
    fp128 = float(np.median(t128["fp32"]))
    spread = "Each session's median at 128 tokens, as x fp32's median over its sessions: " + "; ".join(
        f"{r['recipe']}: " + ", ".join(f"{fp128 / float(np.median(each128[n, i])):.2f}x" for i in range(args.sessions))
        for n, r in zip(models, rows)
    )
    body = (
        f"{machine_line()}\n\n{len(texts)} held-out texts (gettext messages in {len(LANGS)} languages, stdlib "
        f"docstrings and code, the tests' edge cases); one thread; {args.rounds} interleaved rounds, each model "
        f"timed as {args.sessions} sessions (one session of a model can run 10-20% faster or slower than another of "
        "the same bytes), medians of all its sessions' samples. "
        "Batch-1 ms: 32 texts of the corpus, one at a time; 128 tokens: one text of exactly 128 tokens. "
        "Worst/mean cosine: each text alone vs fp32 alone. Batch invariance: each text alone vs inside shuffled "
        "batches of 32. Peak RSS: a fresh process that imports edgert, loads the model and embeds one text "
        "(median of 3), each with the model's files evicted from the page cache first, as after a reboot (how the "
        "kernel cached a memory-mapped file changes its share of RSS: see evict()); after the corpus: the same "
        "process, then every text one at a time (the embedding table is memory-mapped, so its pages join RSS as "
        "the vocabulary reaches them). onnxruntime's one-time set-up in a fresh process, which any model pays "
        f"(its first session, of a one-node Add graph, median of 3): {setup:.1f} MiB over the imports; the column "
        "after peak RSS leaves it out.\n\n" + "\n".join(lines) + "\n\n" + spread
    )
    print(body)
    # one section per quantization target: an AVX2 machine's table does not replace a VNNI machine's
    title = f"Quantization recipes on held-out text ({quantization_target()})"
    write_section(title, body, "python benchmarks/quantization.py")
    (work / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
