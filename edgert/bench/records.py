"""Benchmark data as immutable records: raw samples plus metadata, statistics derived from them, versioned JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import safepath, stats
from ..errors import EdgertError

SCHEMA = "edgert.bench/1"


@dataclass(frozen=True)
class Stats:
    """Summary of a latency sample, in milliseconds."""

    fields = ("count", "mean", "std", "cv", "min", "p50", "p90", "p95", "p99", "max")
    count: int
    mean: float
    std: float
    cv: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples_ns: list[int] | tuple[int, ...]) -> Stats:
        if not samples_ns:
            raise ValueError("no samples")
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        mean, std = float(ms.mean()), float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
        p50, p90, p95, p99 = stats.percentiles(ms, [50, 90, 95, 99])
        return cls(
            len(ms), mean, std, std / mean if mean else 0.0, float(ms.min()), p50, p90, p95, p99, float(ms.max())
        )

    def as_dict(self) -> dict[str, float]:
        return {f: getattr(self, f) for f in self.fields}


@dataclass(frozen=True)
class Run:
    """One measured phase: raw samples (ns per call, or items/s) and what produced them."""

    name: str
    unit: str
    samples: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def stats(self) -> Stats:
        return Stats.of(self.samples)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples"] = list(self.samples)
        if self.unit == "ns" and self.samples:
            d["stats_ms"] = self.stats().as_dict()
        return d


def save(result: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Writes atomically: a Ctrl-C while saving never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"schema": SCHEMA, **result}, indent=1) + "\n"
    safepath.write_output(path, body, error=EdgertError, what="--json")  # never replaces a symlink or device
    return path


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise EdgertError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise EdgertError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise EdgertError(f"{path}: not an edgert bench result (schema {found!r}, expected {SCHEMA!r})")
    return data
