"""onnxruntime's integer GEMM forms beside its fp32 GEMM, at MiniLM's shapes on this CPU: which per-token form pays.

    python benchmarks/int8_gemm.py [--rounds 9] [--calls 50] [--tokens 128]

Per-token int8 (edgert/export/pertoken.py) computes each weight MatMul as one com.microsoft MatMulIntegerToFloat,
in one of two integer forms: u8 x u8 (8-bit weights stored as uint8, exact on every CPU) or u8 x s8 (int8
weights: onnxruntime's fast kernel, which on x86 without VNNI saturates unless one side has 7 bits, hence the
w7 recipe). This times the three products alone, as one-node graphs: fp32 MatMul, u8 x u8 and u8 x s8, at the
three shapes of a MiniLM layer for TOKENS rows (384x384 for Q, K, V and the attention output, 384x1536 and
1536x384 for the feed-forward), one thread, in interleaved rounds of CALLS calls, medians. The MAC-weighted
total is one layer's linear part (4 + 1 + 1 products). The ratio's 95% interval is Welch's t on the logs of the
rounds (edgert.stats.ratio_test). The u8 x s8 operands here are 7-bit weights, as in the w7 recipe, so every
form computes exactly.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import machine_line
from _results import write_section

FORMS = ("fp32", "u8 x u8", "u8 x s8")
#: (K, N, how many per MiniLM layer)
SHAPES = ((384, 384, 4), (384, 1536, 1), (1536, 384, 1))


def session(form: str, m: int, k: int, n: int, rng: np.random.Generator):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    if form == "fp32":
        inits = [numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")]
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        a_type = TensorProto.FLOAT
    else:
        if form == "u8 x s8":
            w, zero = rng.integers(-63, 64, (k, n)).astype(np.int8), np.zeros(n, np.int8)
        else:
            w, zero = rng.integers(0, 256, (k, n)).astype(np.uint8), np.full(n, 128, np.uint8)
        inits = [
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.ones(1, np.float32), "a_scale"),
            numpy_helper.from_array(np.full(n, 0.01, np.float32), "b_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
            numpy_helper.from_array(zero, "b_zero"),
        ]
        node = helper.make_node(
            "MatMulIntegerToFloat", ["A", "W", "a_scale", "b_scale", "a_zero", "b_zero"], ["Y"], domain="com.microsoft"
        )
        a_type = TensorProto.UINT8
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", a_type, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    if form == "fp32":
        x = rng.standard_normal((m, k)).astype(np.float32)
    else:
        x = rng.integers(0, 256, (m, k)).astype(np.uint8)
    return s, {"A": x}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--tokens", type=int, default=128)
    args = p.parse_args()
    from edgert import stats
    from edgert.device import quantization_target

    rng = np.random.default_rng(0)
    cases = {(f, s): session(f, args.tokens, s[0], s[1], rng) for f in FORMS for s in SHAPES}
    times: dict[tuple[str, tuple[int, int, int]], list[float]] = {c: [] for c in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(cases)[::-1]
        for c in order:
            s, feed = cases[c]
            s.run(None, feed)
            t0 = time.perf_counter()
            for _ in range(args.calls):
                s.run(None, feed)
            times[c].append((time.perf_counter() - t0) * 1e3 / args.calls)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    # one layer's linear part per round: each shape's time times how many of it a layer has
    layer = {f: [sum(times[f, s][r] * s[2] for s in SHAPES) for r in range(args.rounds)] for f in FORMS}
    lines = [
        f"{machine_line()}; quantization target {quantization_target()}\n",
        f"One-node graphs, {args.tokens} rows, one thread, {args.rounds} interleaved rounds of {args.calls} calls, "
        "medians; u8 x s8 with 7-bit weights (exact on every CPU).\n",
        "| product | " + " | ".join(f"{f} ms" for f in FORMS) + " | u8 x u8 x fp32 | u8 x s8 x fp32 |",
        "|---|" + "---|" * (len(FORMS) + 2),
    ]
    rows = [
        (f"{args.tokens}x{k} @ {k}x{n} (x{c} per layer)", {f: times[f, (k, n, c)] for f in FORMS}) for k, n, c in SHAPES
    ]
    rows.append(("one layer's linear part", layer))
    for label, t in rows:
        med = {f: stats.median(t[f]) for f in FORMS}
        cells = []
        for f in FORMS[1:]:
            rt = stats.ratio_test(t[f], t["fp32"])
            cells.append(f"{med['fp32'] / med[f]:.2f}x" + ("" if rt is None else f" [{rt.low:.2f}, {rt.high:.2f}]"))
        lines.append(f"| {label} | " + " | ".join(f"{med[f]:.3f}" for f in FORMS) + " | " + " | ".join(cells) + " |")
    body = "\n".join(lines)
    print(body)
    write_section(f"Integer GEMM forms ({quantization_target()})", body, "python benchmarks/int8_gemm.py")


if __name__ == "__main__":
    main()
