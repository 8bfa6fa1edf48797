"""A bench result as immutable, typed records: the raw samples and what produced them, the statistics derived from
them, and one JSON round trip with a format version (pyperf's ``Run``/``Benchmark`` are the model).

``BenchResult.to_json`` writes the fields and, beside them, the figures derived from them (percentiles, medians,
spreads, the summary) for people and scripts; ``from_json`` reads the fields back with every value checked and
recomputes the rest. Files written by earlier versions (``edgert.bench/1``) are read through ``_from_v1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import safepath, stats
from ..device import Description
from ..errors import EdgertError, RecordError
from .config import BenchConfig
from .noise import Noise
from .spec import ColdParts

SCHEMA = "edgert.bench/2"
#: earlier formats this version reads, each with the function that brings it to SCHEMA's layout
OLDER: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _positive(values: Sequence[float], what: str) -> None:
    """Times and rates are > 0: a 0 or a negative one is a broken file, and would be a log of 0 in compare."""
    bad = next((v for v in values if not v > 0), None)
    if bad is not None:
        raise ValueError(f"{what}: {bad!r} is not a number > 0")


@dataclass(frozen=True)
class Stats:
    """Summary of a latency sample, in milliseconds."""

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
    def of(cls, samples_ns: Sequence[float]) -> Stats:
        if not samples_ns:
            raise ValueError("no samples")
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        mean, std = float(ms.mean()), float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
        p50, p90, p95, p99 = stats.percentiles(ms.tolist(), [50, 90, 95, 99])
        return cls(
            len(ms), mean, std, std / mean if mean else 0.0, float(ms.min()), p50, p90, p95, p99, float(ms.max())
        )


@dataclass(frozen=True)
class Latency:
    """SingleStream: one item after another. The samples of every round pooled (for percentiles), and each
    round's median (independent summaries, for the spread and for compare)."""

    batch: int
    samples_ns: tuple[int, ...]
    rounds_p50_ms: tuple[float, ...]
    scenario: str = "SingleStream"

    def __post_init__(self) -> None:
        _positive(self.samples_ns, "latency samples")
        _positive(self.rounds_p50_ms, "latency round medians")

    def stats(self) -> Stats | None:
        return Stats.of(self.samples_ns) if self.samples_ns else None

    @property
    def spread(self) -> float | None:
        return stats.spread(self.rounds_p50_ms)

    def derived(self) -> dict[str, object]:
        return {"stats_ms": self.stats(), "spread": self.spread, "rounds": len(self.rounds_p50_ms)}


@dataclass(frozen=True)
class Throughput:
    """Offline: calls of ``batch`` items. Each round's rate counts the items its calls actually ran."""

    batch: int
    items_per_call: int
    samples_ns: tuple[int, ...]
    rounds_items_per_s: tuple[float, ...]
    scenario: str = "Offline"

    def __post_init__(self) -> None:
        if not self.rounds_items_per_s:
            raise ValueError(f"throughput batch {self.batch}: no rounds")
        _positive(self.samples_ns, f"throughput batch {self.batch} samples")
        _positive(self.rounds_items_per_s, f"throughput batch {self.batch} rates")

    @property
    def items_per_s(self) -> float:
        return stats.median(self.rounds_items_per_s)

    @property
    def spread(self) -> float | None:
        return stats.spread(self.rounds_items_per_s)

    def derived(self) -> dict[str, object]:
        return {"items_per_s": self.items_per_s, "ms_per_call": self.items_per_call * 1e3 / self.items_per_s,
                "spread": self.spread}  # fmt: skip


@dataclass(frozen=True)
class ThreadRun:
    """Everything measured at one thread setting. A run interrupted part way keeps what was measured; the rest
    stays None or empty."""

    threads: int  # what ran (0: onnxruntime's choice)
    threads_requested: int
    threads_source: str  # "--threads", "EDGERT_THREADS" or "onnxruntime's choice"
    init_ms: float | None = None
    first_ms: float | None = None
    warmup_ns: tuple[int, ...] = ()
    refused: tuple[str, ...] = ()  # batch sizes the model or input cannot take, each with the reason
    latency: Latency | None = None
    throughput: tuple[Throughput, ...] = ()

    @property
    def label(self) -> str:
        """How budgets and reports name this setting."""
        return f"threads={self.threads or 'auto'}"

    def warmup_stats(self) -> Stats | None:
        return Stats.of(self.warmup_ns) if self.warmup_ns else None

    def derived(self) -> dict[str, object]:
        return {"warmup_stats_ms": self.warmup_stats()}


@dataclass(frozen=True)
class ColdStart:
    """Fresh processes from start to first result (the parent's wall clock), their parts and peak memory."""

    runs_ms: tuple[float, ...]
    parts: tuple[ColdParts, ...]
    peak_rss_mib: tuple[float, ...]

    def __post_init__(self) -> None:
        _positive(self.runs_ms, "cold start")
        if not len(self.runs_ms) == len(self.parts) == len(self.peak_rss_mib):
            raise ValueError("cold start: runs, parts and peak_rss_mib differ in length")

    @property
    def median_ms(self) -> float | None:
        return stats.median(self.runs_ms) if self.runs_ms else None

    def derived(self) -> dict[str, object]:
        return {"median_ms": self.median_ms}


@dataclass(frozen=True)
class Energy:
    meter: str
    source: str  # where the figure comes from, in words; says "estimated" for an estimate
    estimated: bool
    inferences: int
    seconds: float
    joules: float
    idle_w: float | None = None  # sampled meters: the idle power measured first

    def __post_init__(self) -> None:
        if self.inferences < 1 or not self.joules >= 0:  # a coarse meter may read 0 J over a short run
            raise ValueError(f"energy: {self.joules!r} J over {self.inferences} inferences is not a measurement")

    @property
    def mj_per_inference(self) -> float:
        return self.joules * 1e3 / self.inferences

    def derived(self) -> dict[str, object]:
        return {"mj_per_inference": self.mj_per_inference}


@dataclass(frozen=True)
class Memory:
    """In MiB. rss_* are this bench process's; the cold-start processes' peaks are in ColdStart."""

    rss_start_mib: float
    load_rss_mib: float  # added by loading the model
    model_file_mib: float  # the graph and its external weights
    arena: bool = True
    rss_after_run_mib: float | None = None
    run_rss_mib: float | None = None  # added by the first runs (the arena)
    peak_rss_mib: float | None = None


@dataclass(frozen=True)
class InputFacts:
    """What one item is, as far as its kind has facts: tokens per text, an audio window, image sizes, the raw
    inputs' shapes."""

    mean_tokens: float | None = None
    window_ms: float | None = None
    image: str | None = None  # WxH of the frames given
    model_input: str | None = None  # WxH the model takes
    inputs: str | None = None  # a raw model's inputs, as built
    shapes: dict[str, tuple[int, ...]] | None = None  # arrays from an .npz


@dataclass(frozen=True)
class TargetInfo:
    path: str
    kind: str  # the workload: "text", "image", "audio" or "raw"
    task: str
    variant: str | None
    description: str
    model_bytes: int
    model_sha256: dict[str, str]
    latency_batch: int = 1
    input: InputFacts = field(default_factory=InputFacts)


@dataclass(frozen=True)
class Summary:
    """The figures budgets judge, in their canonical units (ms, MiB, mJ, items/s); None where not measured."""

    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None
    cold: float | None = None
    init: float | None = None
    first: float | None = None
    rss: float | None = None  # the cold-start process's peak: a process that only loads and runs the model
    load_rss: float | None = None
    energy: float | None = None
    throughput: float | None = None  # the best batch size's items actually run per second
    # a sustained run's last window (edgert.sustained); budgets name them p95@sustained and so on
    p50_sustained: float | None = None
    p95_sustained: float | None = None
    p99_sustained: float | None = None
    throughput_sustained: float | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name.replace("_sustained", "@sustained") for f in fields(cls))

    def get(self, metric: str) -> float | None:
        if metric not in self.names():
            raise KeyError(metric)
        value: float | None = getattr(self, metric.replace("@sustained", "_sustained"))
        return value


@dataclass(frozen=True)
class BudgetRow:
    """One limit judged on one configuration."""

    budget: str  # as written, e.g. "p95<=20ms"
    config: str  # e.g. "threads=1"
    metric: str
    limit: float  # in the canonical unit
    unit: str
    measured: float | None
    passed: bool

    @property
    def status(self) -> str:
        """ "passed", "violated", or "not measured": a budget that could not be checked does not pass, but it is
        not called violated either."""
        return "passed" if self.passed else ("not measured" if self.measured is None else "violated")

    def derived(self) -> dict[str, object]:
        return {"status": self.status}


@dataclass(frozen=True)
class BenchResult:
    created: str  # ISO 8601, UTC
    machine: Description
    software: dict[str, str | None]
    settings: BenchConfig
    configs: tuple[ThreadRun, ...] = ()
    target: TargetInfo | None = None
    memory: Memory | None = None
    noise: Noise | None = None
    cold_start: ColdStart | None = None
    energy: Energy | None = None
    budget: tuple[BudgetRow, ...] = ()
    complete: bool = False
    interrupted_in: str | None = None  # the phase a Ctrl-C stopped

    def summary(self) -> Summary:
        """The figures of the first thread setting (summaries() has every one)."""
        return self._summary(self.configs[0] if self.configs else None)

    def summaries(self) -> dict[str, Summary]:
        """One summary per thread setting, named as budgets name the configuration they judge."""
        return {c.label: self._summary(c) for c in self.configs}

    def _summary(self, c: ThreadRun | None) -> Summary:
        figures: dict[str, float | None] = {}
        if c is not None:
            st = c.latency.stats() if c.latency is not None else None
            if st is not None:
                figures.update({k: getattr(st, k) for k in ("p50", "p90", "p95", "p99", "max", "mean")})
            figures["init"], figures["first"] = c.init_ms, c.first_ms
            figures["throughput"] = max((t.items_per_s for t in c.throughput), default=None)
        if self.cold_start is not None and self.cold_start.runs_ms:
            figures["cold"] = self.cold_start.median_ms
            figures["rss"] = max(self.cold_start.peak_rss_mib)
        # rss is always the cold-start process's peak; the bench process's own peak (harness, every thread
        # setting) is kept apart in memory.peak_rss_mib.
        if self.memory is not None:
            figures["load_rss"] = self.memory.load_rss_mib
        if self.energy is not None:
            figures["energy"] = self.energy.mj_per_inference
        return Summary(**figures)

    def derived(self) -> dict[str, object]:
        return {"summary": self.summary()}

    def with_budget(self, rows: Sequence[BudgetRow]) -> BenchResult:
        return replace(self, budget=tuple(rows))

    def to_json(self) -> dict[str, object]:
        """The JSON object ``save`` writes: the format version, the fields, and the figures derived from them."""
        from .. import typed_json

        body: dict[str, object] = typed_json.dump(self)
        return {"schema": SCHEMA, **body}

    @classmethod
    def from_json(cls, data: object, what: str = "bench result") -> BenchResult:
        """DATA as a result, whichever format version wrote it; RecordError says what is wrong and where."""
        from .. import typed_json

        return typed_json.load_versioned(cls, data, what, SCHEMA, OLDER, "bench")


def save(result: BenchResult, path: str | os.PathLike[str]) -> Path:
    """Writes atomically: a Ctrl-C while saving never leaves half a file; never replaces a symlink or device."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n"
    safepath.write_output(path, body, error=EdgertError, what="--json")
    return path


def load(path: str | os.PathLike[str]) -> BenchResult:
    path = Path(path)
    try:
        text = safepath.read_bounded(path, MAX_BYTES, error=RecordError, what=str(path))
        data = json.loads(text, parse_constant=_no_constant)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return BenchResult.from_json(data, str(path))


#: a bench result is samples and a few facts: a file past this is not one (a long run writes a few MiB)
MAX_BYTES = 256 * 2**20


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


# --- earlier formats ---------------------------------------------------------------------------------------------

#: target keys that v1 wrote flat and v2 keeps under target.input
_V1_INPUT = tuple(f.name for f in fields(InputFacts))


def _from_v1(d: dict[str, Any]) -> dict[str, Any]:
    """edgert.bench/1 (edgert 0.1 up to typed results): each phase a Run dict {name, unit, samples, meta,
    stats_ms}, the throughput rates beside their run, the target's input facts flat, cold starts as "runs"."""
    out = {k: v for k, v in d.items() if k not in ("schema", "configs", "target", "cold_start", "summary")}
    configs = []
    for c in d.get("configs") or []:
        new = {k: c[k] for k in ("threads", "threads_requested", "threads_source", "init_ms", "first_ms") if k in c}
        new.setdefault("threads_requested", c["threads"])
        new.setdefault("threads_source", "--threads" if c["threads"] else "onnxruntime's choice")
        new["refused"] = c.get("refused") or []
        new["warmup_ns"] = (c.get("warmup") or {}).get("samples") or []
        lat = c.get("latency")
        if lat:
            new["latency"] = {
                "batch": (lat.get("meta") or {}).get("batch", (d.get("target") or {}).get("latency_batch", 1)),
                "samples_ns": lat.get("samples") or [],
                "rounds_p50_ms": lat.get("rounds_p50_ms") or [],
            }
        new["throughput"] = [
            {
                "batch": t["batch"],
                "items_per_call": t.get("items_per_call", t["batch"]),
                "samples_ns": (t.get("run") or {}).get("samples") or [],
                "rounds_items_per_s": t.get("rounds_items_per_s") or [t["items_per_s"]],
            }
            for t in c.get("throughput") or []
        ]
        configs.append(new)
    out["configs"] = configs
    target = d.get("target")
    if target:
        out["target"] = {k: v for k, v in target.items() if k not in _V1_INPUT}
        out["target"]["input"] = {k: target[k] for k in _V1_INPUT if k in target}
    cold = d.get("cold_start")
    if cold:
        out["cold_start"] = {"runs_ms": cold["runs"], "parts": cold["parts"], "peak_rss_mib": cold["peak_rss_mib"]}
    return out


OLDER["edgert.bench/1"] = _from_v1
