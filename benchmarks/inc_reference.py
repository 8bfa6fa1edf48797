"""Intel Neural Compressor's ONNX Runtime backend beside edgert's quantization search, on the same model and data.

    python -m venv /tmp/incv && /tmp/incv/bin/pip install onnx-neural-compressor==1.0 prettytable scipy pytest \
        -e .   # INC is no dependency of edgert: it runs in a venv of its own
    /tmp/incv/bin/python benchmarks/inc_reference.py --bundle BUNDLE [--rounds 5]

BUNDLE is a MiniLM bundle exported by ``edgert export minilm`` (``--quantize auto``): its fp32 model is what INC
quantizes, and its default int8 model is edgert's choice. INC gets the same data and the same goal as edgert's
search: calibration on edgert's built-in calibration texts, and ``autotune`` with SmoothQuant (static int8, QDQ,
alpha over INC's own tuning grid 0.3-0.65, scales not folded) judged by an ``eval_fn`` that returns the worst
cosine to fp32 over the
built-in validation texts, each embedded alone, with ``tolerable_loss=0.01`` (worst cosine >= 0.99, edgert's default
budget). Then both chosen models are measured side by side on benchmarks/quantization.py's held-out corpus:
worst/mean cosine, batch invariance, batch-1 and 128-token latency on one thread (interleaved rounds, medians),
size, and the wall time each search took. Writes the table to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402
from _reference import as_variant, files_size, padded_feeds, side_by_side, working_copy, worst_cosine  # noqa: E402
from _results import write_section  # noqa: E402
from quantization import corpus, text_of_tokens  # noqa: E402

SEQ = 128


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", required=True, help="a MiniLM bundle exported by edgert export minilm")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-trials", type=int, default=40)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import onnx
    from onnx_neural_compressor import data_reader
    from onnx_neural_compressor.quantization import config, tuning

    import edgert
    from edgert.bundle import MANIFEST, Bundle
    from edgert.export.calibration import builtin_texts
    from edgert.session import SessionConfig

    src = Path(args.bundle)
    bundle = Bundle.open(src)
    source_manifest = json.loads((src / MANIFEST).read_text())
    edgert_seconds = source_manifest.get("provenance", {}).get("export_seconds")
    one = SessionConfig(intra_op_threads=1, cache_optimized=False)
    ref = edgert.load(src, variant="fp32", config=one)
    cal, val = builtin_texts("calibration"), builtin_texts("validation")
    val_ref = np.stack([ref.embed([t])[0] for t in val])

    class Reader(data_reader.CalibrationDataReader):
        def __init__(self) -> None:
            self.rewind()

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.items, None)

        def rewind(self) -> None:
            # INC's SmoothQuant calibrator stacks the activations of every item: one length for all
            self.items = iter(padded_feeds(ref, list(cal), SEQ))

    work = working_copy(src, "edgert-inc-")  # a copy of the bundle that will also hold INC's model

    trials = []

    def eval_fn(model_path: str) -> float:
        worst = worst_cosine(as_variant(work, model_path, "trial", one), val, val_ref)
        trials.append(worst)
        print(f"  INC trial {len(trials)}: worst cosine {worst:.4f} on {len(val)} validation texts", flush=True)
        return worst

    fp32_path = str(src / bundle.models["fp32"])
    start = time.perf_counter()
    tune = tuning.TuningConfig(
        # INC's own alpha grid, quantizing the MatMuls as edgert does (INC's default also quantizes Add, Mul,
        # Gather ...); folding the scales into the previous node fails on this graph (a scalar initializer gets a
        # per-channel scale), so they stay as Mul nodes. Then INC's own static tuning set, which drops op types
        # from quantization step by step (its op-wise float fallback).
        config_set=[
            config.SmoothQuantConfig(alpha=np.arange(0.3, 0.7, 0.05), folding=False, op_types_to_quantize=["MatMul"]),
            *config.StaticQuantConfig.get_config_set_for_tuning(),
        ],
        tolerable_loss=0.01,
        max_trials=args.max_trials,
    )
    try:
        best = tuning.autotune(fp32_path, tune, eval_fn=eval_fn, calibration_data_reader=Reader())
    except SystemExit:  # autotune calls exit(0) when no trial meets the goal
        best = None
    inc_seconds = time.perf_counter() - start
    if best is None:
        body = (
            f"{machine_line()}; onnx-neural-compressor 1.0\n\n"
            f"INC's autotune found **no** model that meets the goal (worst cosine >= 0.99 on edgert's {len(val)} "
            f"validation texts, tolerable loss 0.01) in {len(trials) - 1} trials and {inc_seconds:.0f} s: "
            "SmoothQuant over alpha 0.3-0.65 (asked to quantize MatMuls only; its worst cosines equal those of its "
            "default op list, so the setting may not reach its quantizer), then its static tuning set (QOperator, "
            "per-channel or not, "
            "last MatMul quantized or not, op types dropped step by step). The worst cosine of each trial, the "
            f"first being fp32: {', '.join(f'{w:.4f}' for w in trials)}. Its calibration items are padded to "
            f"{SEQ} tokens, because its SmoothQuant calibrator stacks them. INC quantizes activations with one "
            "static scale per tensor, so a token whose activations lie far outside the calibrated range is clipped; "
            "edgert's per-token recipe computes a scale per row at run time. edgert's own figures on this machine "
            "are in the table above."
        )
        print(body)
        write_section("Intel Neural Compressor beside edgert's search", body, "python benchmarks/inc_reference.py")
        return
    onnx.save(best, str(work / "inc-best.onnx"), save_as_external_data=True, location="inc-best.data")
    models = {"fp32": ref, "edgert": edgert.load(src, config=one)}
    models["inc"] = as_variant(work, str(work / "inc-best.onnx"), "inc", one)

    texts = corpus()
    sizes = {
        "fp32": files_size([src / f for f in bundle.model_files("fp32")]),
        "edgert": files_size([src / f for f in bundle.model_files(bundle.default_model)]),
        "inc": files_size(list(work.glob("model.inc.*"))),
    }
    labels = {
        "fp32": "fp32",
        "edgert": f"edgert auto -> {bundle.card['search']['default']}",
        "inc": f"INC autotune SmoothQuant, {len(trials)} trials",
    }
    table = side_by_side(
        models, labels, sizes, {"edgert": "see note", "inc": f"{inc_seconds:.0f}"}, texts,
        text_of_tokens(src, texts), args.rounds,
    )  # fmt: skip
    body = (
        f"{machine_line()}; onnx-neural-compressor 1.0\n\n"
        f"{len(texts)} held-out texts (benchmarks/quantization.py's corpus); one thread; {args.rounds} interleaved "
        "rounds, medians. INC was given edgert's calibration texts and judged each trial by the worst cosine to "
        f"fp32 on edgert's {len(val)} validation texts (tolerable loss 0.01, i.e. worst >= 0.99); its trials' "
        f"worst cosines: {', '.join(f'{w:.4f}' for w in trials)}. edgert's search time is its whole export "
        f"({edgert_seconds} s as recorded, where known).\n\n" + table
    )
    print(body)
    write_section("Intel Neural Compressor beside edgert's search", body, "python benchmarks/inc_reference.py")
    (work / "results.json").write_text(json.dumps({"trials": trials, "inc_seconds": inc_seconds}))


if __name__ == "__main__":
    main()
