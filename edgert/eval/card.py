"""An evaluation recorded in each bundle's card (``card.evaluations``): per data set and variant, the metrics with
their intervals, the set's sha256, the device and the date. A new evaluation of the same set and variant replaces
the old one; other entries are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .records import EvalResult


def entries(result: EvalResult) -> dict[str, list[dict[str, Any]]]:
    """bundle path -> the card entries this result makes for it."""
    out: dict[str, list[dict[str, Any]]] = {}
    d = result.dataset
    for r in result.results:
        entry: dict[str, Any] = {
            "dataset": d.name,
            "dataset_sha256": d.sha256,
            "kind": d.kind,
            "items": r.items,
            "variant": r.variant,
            "model_sha256": r.model_sha256,
            "metrics": {m.name: {"value": m.value, "low": m.low, "high": m.high} for m in r.metrics},
            "interval": f"{result.level:.0%} percentile bootstrap, {result.draws} draws, seed {result.seed}",
            "device": result.machine.cpu,
            "date": result.created,
            "edgert": result.software.get("edgert"),
        }
        worst = r.worst_slice()
        if worst is not None:
            entry["worst_slice"] = {"by": worst.by, "key": worst.key, "items": worst.items, "value": worst.metric.value}
        if r.cost is not None:
            entry["cost"] = {"p50_ms": r.cost.p50, "rss_mib": r.cost.rss, "energy_mj": r.cost.energy}
        out.setdefault(r.bundle, []).append(entry)
    return out


def record(result: EvalResult) -> list[Path]:
    """Writes RESULT into every bundle's card; returns the bundles written."""
    from ..bundle import Bundle, update_card

    written = []
    for path, new in entries(result).items():
        bundle = Bundle.open(path)
        old = bundle.card.get("evaluations")
        replaced = {(n["dataset_sha256"], n["variant"]) for n in new}
        kept = [
            e
            for e in (old if isinstance(old, list) else [])
            if not (isinstance(e, dict) and (e.get("dataset_sha256"), e.get("variant")) in replaced)
        ]
        update_card(Path(path), "evaluations", kept + new)
        written.append(Path(path))
    return written
