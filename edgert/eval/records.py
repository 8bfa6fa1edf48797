"""An evaluation as immutable, typed records with one JSON form (``edgert.eval/1``), like bench's: the data set
and what was skipped in it, and per model variant its metrics with intervals, its slices, and its cost on this
device as bench measured it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import safepath
from ..device import Description
from ..errors import RecordError

SCHEMA = "edgert.eval/2"
#: earlier formats this version reads, each with the function that brings it to SCHEMA's layout: version 2 only
#: added fields (speech segment counts, per-item headline values), each with a default
OLDER: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"edgert.eval/1": lambda d: {**d, "schema": SCHEMA}}
#: metrics where lower is better (a ceiling on them is judged on the interval's upper bound; the worst slice is
#: the highest)
LOWER_IS_BETTER = ("ece", "mse", "mae")
#: the cost figures an evaluation takes from bench's summary, in its units
COST = ("p50", "p95", "rss", "energy", "throughput")


@dataclass(frozen=True)
class Metric:
    """A metric on the whole set, with its bootstrap interval (low, high)."""

    name: str
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Slice:
    """The headline metric on the items of one slice (``by`` names the slicing: a column, or a built-in one)."""

    by: str
    key: str
    items: int
    metric: Metric


@dataclass(frozen=True)
class Cost:
    """bench's figures for this variant on this device (ms, MiB, mJ per inference, items/s); None where not
    measured."""

    p50: float | None = None
    p95: float | None = None
    rss: float | None = None
    energy: float | None = None
    throughput: float | None = None
    energy_meter: str | None = None


@dataclass(frozen=True)
class ClassFigures:
    """One class of a classification set: precision, recall and F1 (0 where undefined), and its gold count."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SegmentCounts:
    """Speech sets: reference segments, detected segments, and reference segments that a detection overlaps."""

    reference: int
    detected: int
    matched: int


@dataclass(frozen=True)
class Evaluated:
    bundle: str
    variant: str
    model_sha256: str
    items: int
    metrics: tuple[Metric, ...]
    slices: tuple[Slice, ...] = ()
    #: the items the model could not take (a label it does not know, an unreadable image), counted
    unscored: int = 0
    cost: Cost | None = None
    #: classification: per-class figures, and the confusion matrix (gold along rows) in the same label order
    classes: tuple[ClassFigures, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    segments: SegmentCounts | None = None
    #: the headline metric per scored item, in the set's order, where it is a mean over items: what lets
    #: ``edgert compare`` test two results of the same set item by item
    per_item: tuple[float, ...] = ()

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def label(self) -> str:
        return f"{Path(self.bundle).name}:{self.variant}"

    def worst_slice(self) -> Slice | None:
        def badness(s: Slice) -> float:
            return s.metric.value if s.metric.name in LOWER_IS_BETTER else -s.metric.value

        return max(self.slices, key=badness, default=None)


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str
    path: str
    sha256: str
    items: int
    skipped: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One limit of a budget against one variant: quality is judged on its interval's lower bound."""

    variant: str
    limit: str
    measured: float | None
    passed: bool


@dataclass(frozen=True)
class Decision:
    """The --budget verdict: every variant's checks, and the cheapest variant that passes all of them (None:
    none does)."""

    budget: str
    chosen: str | None
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class EvalResult:
    created: str
    machine: Description
    software: dict[str, str | None]
    dataset: Dataset
    results: tuple[Evaluated, ...]
    headline: str
    front: tuple[str, ...] = ()
    decision: Decision | None = None
    seed: int = 0
    draws: int = 1000
    level: float = 0.95
    schema: str = SCHEMA

    def to_json(self) -> dict[str, object]:
        """The format version and the fields."""
        from .. import typed_json

        body: dict[str, object] = typed_json.dump(self)
        return {**body, "schema": SCHEMA}

    @classmethod
    def from_json(cls, data: object, what: str = "eval result") -> EvalResult:
        """DATA as a result, whichever format version wrote it; RecordError says what is wrong and where."""
        from .. import typed_json

        return typed_json.load_versioned(cls, data, what, SCHEMA, OLDER, "eval")

    def save(self, path: Path) -> None:
        body = json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"
        safepath.write_output(path, body, error=RecordError, what="eval result")


#: an evaluation is figures and up to one value per item: a file past this is not one
MAX_BYTES = 256 * 2**20


def load(path: str | Path) -> EvalResult:
    """An eval result file; RecordError (one line, saying where) for a file that is not one."""
    path = Path(path)
    try:
        text = safepath.read_bounded(path, MAX_BYTES, error=RecordError, what=str(path))
        data = json.loads(text)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return EvalResult.from_json(data, str(path))
