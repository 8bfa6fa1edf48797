"""The model card as a table: rich when it is installed, plain aligned text otherwise."""

from __future__ import annotations

from typing import Any

from ..bundle import Bundle


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def card_rows(bundle: Bundle) -> list[tuple[str, str]]:
    c: dict[str, Any] = bundle.card
    prov = bundle.provenance
    rows = [
        ("bundle", str(bundle.path)),
        ("task", bundle.task),
        ("models", ", ".join(f"{v}={f}" for v, f in bundle.models.items()) + f" (default {bundle.default_model})"),
    ]
    if "parameters" in c:
        rows.append(("parameters", f"{c['parameters']:,} (PyTorch), {c.get('onnx_parameters', 0):,} in the graph"))
    if "macs" in c:
        ref = "x".join(str(v) for v in c.get("reference_input", {}).values())
        rows.append(("compute", f"{c['macs'] / 1e9:.3f} GMACs = {c['flops'] / 1e9:.3f} GFLOPs at {ref}"))
    for v, n in (c.get("size_bytes") or {}).items():
        rows.append((f"size {v}", _mb(n)))
    if "opset" in c:
        rows.append(("opset", str(c["opset"])))
    q = c.get("quantization") or {}
    if q.get("mode") not in (None, "none"):
        rows.append(("quantization", f"{q.get('name', q['mode'])} for {q.get('target')}: weights {q.get('weights')}"))
        rows.append(("activations", str(q.get("activations"))))
    if q.get("vs_fp32"):
        v = q["vs_fp32"]
        rows.append(
            (
                "quantized vs fp32",
                f"worst cosine {v['min_cosine']:.4f}, mean {v['mean_cosine']:.4f} on {v['n']} held-apart texts"
                + (f", top-1 agreement {v['top1_agreement']:.4f}" if "top1_agreement" in v else ""),
            )
        )
    for variant, k in (c.get("candidates") or {}).items():
        v = k.get("vs_fp32") or {}
        rows.append((
            f"kept {variant}",
            f"{k.get('name')}: worst cosine {v.get('min_cosine', float('nan')):.4f}, mean "
            f"{v.get('mean_cosine', float('nan')):.4f}, {k.get('speedup_vs_fp32', float('nan')):.2f}x fp32 on the "
            "exporting CPU (edgert tune measures it here)",
        ))  # fmt: skip
    for variant, worst in (c.get("batch_invariance") or {}).items():
        ok = worst >= 0.9999
        rows.append(
            (
                f"batch invariance {variant}",
                f"worst cosine {worst:.6f} alone vs in batches of 32: "
                + ("batch-invariant" if ok else "NOT batch-invariant (outputs depend on batch-mates and padding)"),
            )
        )
    search = c.get("search")
    if search:
        t = search["timing"]
        budget = search.get("budget")
        if budget and "task" in budget:
            task, data = budget["task"], budget["task"]["data"]
            said = f"task budget {task['budget']} on {data['name']} ({data['items']} items, interval's lower bound), "
        else:
            said = f"budget {budget['metric']} >= {budget['value']}, " if budget else "fixed recipe, "
        rows.append(
            (
                "search",
                said
                + f"chosen {search.get('chosen') or 'none'}, default {search.get('default')}; "
                + f"timed on {t['cpu']} ({t['host_target']}{'' if t['on_target'] else ', NOT the target'}), "
                + "1 thread, batch 1, "
                + f"{t['items']} items"
                + (f" (one a {t['passage_tokens']}-token passage)" if t.get("passage_tokens") else ""),
            )
        )
        for r in search["candidates"]:
            if "error" in r:
                rows.append((f"  {r['recipe']}", f"failed: {r['error']}"))
                continue
            if "pruned" in r:
                rows.append((f"  {r['recipe']}", f"pruned, cannot win: {r['pruned']}"))
                continue
            rows.append(
                (
                    f"  {r['recipe']}",
                    f"{r['latency_ms']:.2f} ms ({r['speedup_vs_fp32']:.2f}x fp32), {r['size_bytes'] / 1e6:.1f} MB, "
                    f"worst cos {r['min_cosine']:.4f}, mean {r['mean_cosine']:.4f}, "
                    f"invariance {r['batch_invariance']:.6f}"
                    + (
                        f", {r['task']['metric']} {r['task']['value']:.4f} [{r['task']['low']:.4f}, "
                        f"{r['task']['high']:.4f}]"
                        if "task" in r
                        else ""
                    )
                    + ("" if r["recipe"] == "fp32" else (", meets" if r["meets_budget"] else ", misses")),
                )
            )
    if c.get("check"):
        ch = c["check"]
        rows.append(
            (
                "check",
                f"{ch['variant']} vs {ch['reference']}: worst cosine {ch['min_cosine']:.4f} on {ch['inputs']} "
                f"long-tail inputs (worst: {ch['worst_inputs'][0]['input']}), {ch['checked_at']}",
            )
        )
    for key, val in (c.get("agreement") or {}).items():
        if isinstance(val, dict):
            rows.append((f"agreement {key}", ", ".join(f"{k} {v:.6g}" for k, v in val.items())))
    post = bundle.post
    if bundle.pre.get("kind") == "text":
        rows.append(("text", f"max length {bundle.pre.get('max_length')}, dynamic padding"))
    if "pooling" in post:
        rows.append(
            (
                "output",
                f"{post.get('output')} -> {post['pooling']} pooling"
                f"{', L2-normalised' if post.get('normalize') else ''}, dim {post.get('dim')}",
            )
        )
    pre = bundle.pre
    if pre.get("kind") == "image" or "image_mean" in pre or "do_resize" in pre:
        rows.extend(_image_rows(pre))
    if pre.get("kind") == "audio":
        states = ", ".join(f"{x.get('input')}<-{x.get('output')} {x.get('shape')}" for x in pre.get("states") or [])
        rows.append(
            (
                "audio",
                f"{pre.get('sample_rate')} Hz, window {pre.get('window')} samples + context {pre.get('context', 0)} "
                f"into {pre.get('audio_input')}"
                + (f", rate into {pre['sample_rate_input']}" if pre.get("sample_rate_input") else "")
                + (f", state {states}" if states else ", no state"),
            )
        )
    if "output_kind" in post:
        kind = post["output_kind"]
        how = "used as they are" if kind == "probabilities" else "softmax (or sigmoid) applied by edgert"
        rows.append(("scores", f"{post.get('output')} holds {kind}: {how}"))
    if "labels" in post:
        labels = post["labels"]
        rows.append(("labels", ", ".join(labels[:8]) + (f" ... ({len(labels)})" if len(labels) > 8 else "")))
    if prov:
        rows.append(("source", str(prov.get("source"))))
        versions = prov.get("versions") or {}
        with_versions = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        if "imported_at" in prov:
            rows.append(("imported", f"{prov['imported_at']} (a ready ONNX file) with {with_versions}"))
        else:
            rows.append(
                ("exported", f"{prov.get('exported_at')} in {prov.get('export_seconds')} s with {with_versions}")
            )
    rows.extend(_evaluation_rows(c.get("evaluations")))
    rows.append(("files", f"{len(bundle.files)} files, sha256 verified"))
    return rows


def _evaluation_rows(evaluations: object) -> list[tuple[str, str]]:
    """One row per recorded evaluation (edgert eval --record): its first metric with the interval, on which set."""
    rows = []
    for e in evaluations if isinstance(evaluations, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("metrics"), dict) or not e["metrics"]:
            continue
        name, m = next(iter(e["metrics"].items()))
        try:
            shown = f"{name} {float(m['value']):.3f} [{float(m['low']):.3f}, {float(m['high']):.3f}]"
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited entry that is not edgert's: not shown
        sha = str(e.get("dataset_sha256", ""))[:12]
        rows.append(
            (
                f"eval {e.get('variant')}",
                f"{shown} on {e.get('dataset')} ({e.get('items')} items, {sha}), {e.get('date')}",
            )
        )
    return rows


def _image_rows(pre: dict[str, Any]) -> list[tuple[str, str]]:
    size = pre.get("size")
    size = (
        f"shortest edge {size['shortest_edge']}"
        if isinstance(size, dict) and "shortest_edge" in size
        else f"{size.get('height')}x{size.get('width')}"
        if isinstance(size, dict)
        else str(size)
    )
    crop = pre.get("crop_size")
    from ..kernels.resample import NAMES

    resample = NAMES.get(pre.get("resample", 2), pre.get("resample"))  # Pillow's filter codes
    steps = [f"resize to {size} ({resample})" if pre.get("do_resize", True) else "no resize"]
    if pre.get("do_center_crop"):
        steps.append(f"center crop {crop.get('height')}x{crop.get('width')}" if isinstance(crop, dict) else "crop")
    if pre.get("do_rescale", True):
        steps.append(f"x {pre.get('rescale_factor', 1 / 255):.6g}")
    if pre.get("do_normalize"):
        steps.append(f"- mean {pre.get('image_mean')} / std {pre.get('image_std')}")
    order = f"{pre.get('channel_order', 'RGB')}, {pre.get('layout', 'NCHW')}"
    return [("image", ", ".join(steps) + f"; {order}")]


def print_rows(rows: list[tuple[str, str]]) -> None:
    """Key-value rows as plain aligned text: the one plain table printer."""
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def tuned_row(bundle: Bundle) -> list[tuple[str, str]]:
    """What edgert.load applies to this bundle on this device, when edgert tune chose it."""
    from .. import tuned

    decision = tuned.lookup(tuned.bundle_key({n: e.sha256 for n, e in bundle.files.items()}), tuple(bundle.models))
    return [("tuned here", decision.describe())] if decision is not None else []


def print_card(bundle: Bundle) -> None:
    rows = card_rows(bundle) + tuned_row(bundle)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print_rows(rows)
        return
    table = Table(title=f"edgert bundle: {bundle.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
