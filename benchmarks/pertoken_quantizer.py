"""The per-token row quantizer, one QuantizeLinear against the four ops it replaced, on the same model.

    python benchmarks/pertoken_quantizer.py [--bundle DIR] [--rounds 15] [--calls 20]

The bundle's int8 model (a per-token recipe, which quantizes each row with one per-axis QuantizeLinear) is
rewritten back into the older chain, Div by the row scale, Round, Add the zero point, Cast to uint8, with nothing
else changed. Both run on one thread in one process, in interleaved rounds: first their outputs are checked to be
bitwise equal at several lengths and batches, then each round times CALLS calls per model at 16 and 128 tokens.
The ratio's 95% interval is Welch's t on the logs of the rounds (edgert.stats.ratio_test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import default_bundle, machine_line
from _results import write_section


def four_op_chain(model) -> int:
    """Replaces each per-token QuantizeLinear block by the four ops edgert's rewrite emits below opset 13
    (edgert.export.pertoken.quantize_rows), in place; returns how many."""
    from onnx import numpy_helper

    from edgert.export.pertoken import quantize_rows

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    offset = float(numpy_helper.to_array(inits["pt_zero_u8"]))
    graph.initializer.append(numpy_helper.from_array(np.array(offset, np.float32), "pt_offset"))
    blocks = sorted({n.name[: -len("_quantize")] for n in graph.node if n.name.endswith("_quantize")})
    for p in blocks:
        made = {f"{p}_{s}" for s in ("xshape", "x2", "s1", "s1shape", "zp", "q2", "q")}
        old = [n for n in graph.node if n.output and n.output[0] in made]
        x = next(n for n in old if n.op_type == "Shape" and n.output[0] == f"{p}_xshape").input[0]
        at = list(graph.node).index(old[0])
        for n in old:
            graph.node.remove(n)
        chain, _ = quantize_rows(p, x, 0, opset=12)
        for i, n in enumerate(chain):
            graph.node.insert(at + i, n)
    return len(blocks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=None)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=20)
    args = p.parse_args()

    import onnx
    import onnxruntime as ort

    from edgert import stats

    bundle = args.bundle or default_bundle()
    path = bundle / "model.int8.onnx"
    model = onnx.load(str(path))
    if not any(n.name.endswith("_quantize") for n in model.graph.node):
        raise SystemExit(f"{path}: no per-token QuantizeLinear blocks (not a per-token int8 model of this edgert)")
    with tempfile.TemporaryDirectory() as tmp:
        n = four_op_chain(model)
        old = Path(tmp) / "four_ops.onnx"
        onnx.save(model, str(old), save_as_external_data=True, location="four_ops.onnx.data")
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sessions = {
            "QuantizeLinear": ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]),
            "Div, Round, Add, Cast": ort.InferenceSession(str(old), so, providers=["CPUExecutionProvider"]),
        }
        names = [i.name for i in sessions["QuantizeLinear"].get_inputs()]
        rng = np.random.default_rng(0)

        def feed(batch: int, seq: int) -> dict[str, np.ndarray]:
            ids = rng.integers(1000, 30000, (batch, seq)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            mask = np.ones((batch, seq), np.int64)
            if batch > 1:
                mask[1, seq // 2 :] = 0
            d = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((batch, seq), np.int64)}
            return {k: d[k] for k in names}

        for batch, seq in [(1, 2), (1, 9), (1, 40), (1, 128), (3, 57), (8, 256)]:
            f = feed(batch, seq)
            a, b = (s.run(None, f)[0] for s in sessions.values())
            if not np.array_equal(a, b):
                raise SystemExit(f"outputs differ at batch {batch}, {seq} tokens: max |diff| {np.abs(a - b).max()}")
        times: dict[tuple[str, int], list[float]] = {(k, t): [] for k in sessions for t in (16, 128)}
        feeds = {t: feed(1, t) for t in (16, 128)}
        for r in range(args.rounds):
            order = list(sessions) if r % 2 == 0 else list(sessions)[::-1]
            for tokens in (16, 128):
                for k in order:
                    t0 = time.perf_counter()
                    for _ in range(args.calls):
                        sessions[k].run(None, feeds[tokens])
                    times[k, tokens].append((time.perf_counter() - t0) * 1e3 / args.calls)
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    lines = [
        f"{machine_line()}\n",
        f"{bundle.name}'s int8 model, {n} row quantizers; one thread, batch 1, {args.rounds} interleaved rounds of "
        f"{args.calls} calls, medians. Outputs bitwise equal at 2 to 256 tokens and batches of 1, 3 and 8.\n",
        "| row quantizer | 16 tokens ms | 128 tokens ms |",
        "|---|---|---|",
    ]
    for k in sessions:
        lines.append(f"| {k} | {stats.median(times[k, 16]):.2f} | {stats.median(times[k, 128]):.2f} |")
    for tokens in (16, 128):
        rt = stats.ratio_test(times["Div, Round, Add, Cast", tokens], times["QuantizeLinear", tokens])
        if rt is not None:
            lines.append(
                f"\nAt {tokens} tokens QuantizeLinear takes {rt.ratio:.3f}x the time of the four ops "
                f"[{rt.low:.3f}, {rt.high:.3f}]" + ("" if rt.high < 1 or rt.low > 1 else ": within noise")
            )
    body = "\n".join(lines)
    print(body)
    write_section("Per-token row quantizer", body, "python benchmarks/pertoken_quantizer.py")


if __name__ == "__main__":
    main()
