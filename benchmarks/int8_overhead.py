"""Where an int8 model's time goes at 128 tokens, against fp32, and the speed-up it could reach at most.

    python benchmarks/int8_overhead.py BUNDLE [--variant int8] [--runs 40]

Both graphs run on one thread, batch 1, one 128-token input, alternately (each run of one followed by a run of the
other, so both see the same noise), with onnxruntime's profiler on. The time is split by operator type, and the
weight products (MatMuls whose second input is an initializer; in the int8 graph the integer products) apart from
the rest. The ceiling is the speed-up the int8 graph would have if everything it adds around its integer
products (the activations' quantization, the row scales, reshapes) cost nothing: fp32's time over the int8
integer products plus fp32's own time outside its weight products. Writes the table to RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import machine_line
from _results import write_section

INTEGER_PRODUCTS = {"MatMulIntegerToFloat", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulNBits"}


def _weight_products(path: Path) -> set[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return {n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits}


def _session(path: Path, prefix: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = prefix
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _by_op(profile: str, weight_nodes: set[str], runs: int) -> tuple[dict[str, float], float, int]:
    """ms per run by operator type, ms per run of the weight products, and the number of nodes run per run."""
    events = json.load(open(profile))
    os.remove(profile)
    by: collections.Counter[str] = collections.Counter()
    weights = 0.0
    nodes = 0
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op = e["args"]["op_name"]
        node = e["name"][: -len("_kernel_time")]
        by[op] += e["dur"]
        nodes += 1
        if op in INTEGER_PRODUCTS or node in weight_nodes:
            weights += e["dur"]
    scale = 1e-3 / runs
    return {op: d * scale for op, d in by.items()}, weights * scale, nodes // runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--variant", default="int8")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=128)
    args = ap.parse_args()
    from edgert.bundle import Bundle

    bundle = Bundle.open(args.bundle)
    paths = {"fp32": args.bundle / bundle.models["fp32"], args.variant: args.bundle / bundle.models[args.variant]}
    recipe = bundle.card.get("quantization", {}).get("name", args.variant)
    work = Path(tempfile.mkdtemp(prefix="edgert-prof-"))
    sessions = {name: _session(p, str(work / name)) for name, p in paths.items()}
    names = {i.name for i in sessions["fp32"].get_inputs()}
    n = args.tokens
    ids = np.full((1, n), 2000, np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    feeds = {"input_ids": ids, "attention_mask": np.ones((1, n), np.int64)}
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.zeros((1, n), np.int64)
    warm = 5
    for _ in range(warm):  # profiled too, and counted: the profile cannot leave them out, so they are few
        for s in sessions.values():
            s.run(None, feeds)
    for r in range(args.runs):
        for name in list(sessions)[r % 2 :] + list(sessions)[: r % 2]:
            sessions[name].run(None, feeds)
    total_runs = warm + args.runs
    result = {}
    for name, s in sessions.items():
        ops, weights, nodes = _by_op(s.end_profiling(), _weight_products(paths[name]), total_runs)
        result[name] = {"ops": ops, "total": sum(ops.values()), "weights": weights, "nodes": nodes}
    fp, q = result["fp32"], result[args.variant]
    ceiling = fp["total"] / (q["weights"] + fp["total"] - fp["weights"])
    rows = [
        "| graph | nodes run | all ops ms | weight products ms | the rest ms | x fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result.items():
        rows.append(
            f"| {name} | {r['nodes']} | {r['total']:.2f} | {r['weights']:.2f} | {r['total'] - r['weights']:.2f} | "
            f"{fp['total'] / r['total']:.2f}x |"
        )
    top = sorted(set(fp["ops"]) | set(q["ops"]), key=lambda op: -max(fp["ops"].get(op, 0), q["ops"].get(op, 0)))
    ops = ["| operator | fp32 ms | int8 ms |", "|---|---|---|"]
    ops += [f"| {op} | {fp['ops'].get(op, 0):.2f} | {q['ops'].get(op, 0):.2f} |" for op in top[:14]]
    body = (
        f"{machine_line()}\n\n{args.bundle.name}: {recipe}. One thread, batch 1, one {n}-token input; "
        f"{args.runs} alternating runs of each graph after {warm} warm-up runs (all {total_runs} profiled), "
        "onnxruntime's per-node kernel times (profiler on, which adds a little to each node).\n\n"
        + "\n".join(rows)
        + f"\n\nThe int8 graph's integer products run {fp['weights'] / q['weights']:.2f}x fp32's weight products. "
        f"If all it adds around them cost nothing, it would run **{ceiling:.2f}x** fp32: its ceiling with these "
        "kernels.\n\n" + "\n".join(ops)
    )
    print(body)
    write_section(
        f"int8 overhead at {n} tokens ({bundle.card.get('search', {}).get('target', 'host')})",
        body,
        "python benchmarks/int8_overhead.py " + " ".join(sys.argv[1:]),
    )


if __name__ == "__main__":
    main()
