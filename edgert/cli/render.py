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
        rows.append(
            (
                "quantization",
                f"{q['mode']} {q.get('weights')} for {q.get('target')}, "
                f"per-channel {'on' if q.get('per_channel') else 'off'}",
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
    if "labels" in post:
        labels = post["labels"]
        rows.append(("labels", ", ".join(labels[:8]) + (f" ... ({len(labels)})" if len(labels) > 8 else "")))
    if prov:
        rows.append(("source", str(prov.get("source"))))
        versions = prov.get("versions") or {}
        rows.append(
            (
                "exported",
                f"{prov.get('exported_at')} in {prov.get('export_seconds')} s with "
                + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
            )
        )
    rows.append(("files", f"{len(bundle.files)} files, sha256 verified"))
    return rows


def print_card(bundle: Bundle) -> None:
    rows = card_rows(bundle)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        return
    table = Table(title=f"edgert bundle: {bundle.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
