"""What each onnxruntime memory option saves on load time and peak RSS, one fresh process per run.

    python benchmarks/memory_modes.py [BUNDLE] [--variant int8] [--runs 5]

Each mode builds a session for the bundle's model with edgert's settings plus the option (single-file: the weights
inside the .onnx protobuf instead of an external file; ort-bytes: the model converted to ORT format, initializers
used in place from the model bytes), runs one 8-token input, and reports
peak RSS (VmHWM) and session-creation time; the import cost alone is measured the same way.
Modes run interleaved, and the figures are medians over --runs processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
def hwm():  # VmHWM: unlike ru_maxrss, not inherited from the parent through fork and exec
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
import numpy as np, onnxruntime as ort, tokenizers  # the runtime's own imports
import edgert
from edgert.session import SessionConfig, create_session
mode, model, ort_file, single = sys.argv[1:5]
imports = hwm()
if mode == "imports":
    print(json.dumps({"imports_kib": imports})); sys.exit()
t = time.perf_counter()
if mode == "single-file":
    s = create_session(single, SessionConfig(intra_op_threads=1, cache_optimized=False))
elif mode == "ort-bytes":
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    so.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
    so.add_session_config_entry("session.use_ort_model_bytes_for_initializers", "1")
    data = open(ort_file, "rb").read()
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
else:
    cfg = {"default": SessionConfig(), "arena-off": SessionConfig(arena=False),
           "prepack-off": SessionConfig(prepacking=False), "lean": SessionConfig(memory="lean")}[mode]
    from dataclasses import replace
    s = create_session(model, replace(cfg, intra_op_threads=1, cache_optimized=False))
load = time.perf_counter() - t
ids = np.array([[101, 3341, 5733, 2448, 2235, 4275, 1012, 102]], dtype=np.int64)
out = s.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
print(json.dumps({"peak_kib": hwm(), "load_s": load}))
"""

MODES = ("default", "single-file", "arena-off", "prepack-off", "lean", "ort-bytes")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", nargs="?", default=os.path.expanduser("~/.cache/edgert/bundles/minilm"))
    p.add_argument("--variant", default="int8")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    import edgert
    from edgert import stats

    bundle = edgert.Bundle.open(args.bundle)
    model = bundle.model_file(args.variant)
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(
        [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(model), "--output_dir", str(tmp)],
        check=True,
        capture_output=True,
    )
    ort_file = next(tmp.glob("*.ort"))
    import onnx

    single = tmp / "single.onnx"  # the same model with its weights inside the protobuf, as bundles had them
    onnx.save(onnx.load(str(model)), str(single))
    results: dict[str, list[dict]] = {m: [] for m in ("imports", *MODES)}
    for _ in range(args.runs):
        for mode in results:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(model), str(ort_file), str(single)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:  # a crash is a result too: that mode is not usable with this model
                results[mode].append(
                    {"error": f"exit {out.returncode}: {(out.stderr.strip().splitlines() or [''])[-1]}"}
                )
            else:
                results[mode].append(json.loads(out.stdout))
    imports = stats.median([r["imports_kib"] for r in results.pop("imports")]) / 1024
    size = sum((bundle.path / f).stat().st_size for f in bundle.model_files(args.variant)) / 2**20
    print(f"model {model.name}: {size:.1f} MiB; imports alone: peak {imports:.1f} MiB; medians of {args.runs} runs")
    print(f"{'mode':<12} {'load ms':>8} {'peak MiB':>9} {'over imports':>13} {'x model':>8}")
    for mode, rs in results.items():
        if any("error" in r for r in rs):
            print(f"{mode:<12} failed: {next(r['error'] for r in rs if 'error' in r)}")
            continue
        peak = stats.median([r["peak_kib"] for r in rs]) / 1024
        load = stats.median([r["load_s"] for r in rs]) * 1e3
        print(f"{mode:<12} {load:>8.1f} {peak:>9.1f} {peak - imports:>13.1f} {(peak - imports) / size:>8.2f}")


if __name__ == "__main__":
    main()
