"""A sustained run as an immutable record with a versioned JSON form: each second's latencies and items beside
the CPU clock, temperatures and throttle word read at its end; the start and end windows, the change between
them, and the first throttle are derived from those seconds, never stored apart from them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import safepath, stats
from ..bench.records import BudgetRow, Summary
from ..device import Description
from ..device.sensors import Throttle
from ..errors import EdgertError

SCHEMA = "edgert.sustained/1"
#: a frequency below this share of the highest seen so far counts as a drop where no throttle flags exist
FREQ_DROP = 0.90


@dataclass(frozen=True)
class Second:
    t: float  # when the period's calls ended, seconds since the timed run began
    busy: float  # seconds spent in calls
    items: int
    samples_ns: tuple[int, ...]
    freq_mhz: float | None = None
    freq_min_mhz: float | None = None
    temp_c: float | None = None
    temps: dict[str, float] = field(default_factory=dict)
    throttled: int | None = None

    @property
    def p50_ms(self) -> float:
        return stats.median(self.samples_ns) / 1e6

    @property
    def p95_ms(self) -> float:
        return stats.percentiles(self.samples_ns, [95])[0] / 1e6


@dataclass(frozen=True)
class Window:
    """The seconds from START to END: their latency over every call, and items per second spent calling."""

    start: float
    end: float
    seconds: int
    calls: int
    p50: float
    p95: float
    p99: float
    throughput: float
    freq_mhz: float | None
    temp_c: float | None


@dataclass(frozen=True)
class FirstThrottle:
    t: float | None  # None: never within the run
    how: str  # what decided it: the flags, a frequency drop, or why it cannot be told


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class SustainedResult:
    created: str
    machine: Description
    software: dict[str, str | None]
    target: str
    variant: str | None
    threads: int
    batch: int
    duration: float  # as asked
    duty: float
    window: float
    sources: dict[str, str]
    unavailable: dict[str, str]
    throttled_before: int | None  # the throttle word read before the run
    seconds: tuple[Second, ...] = ()
    budget: tuple[BudgetRow, ...] = ()
    complete: bool = False

    @property
    def elapsed(self) -> float:
        return self.seconds[-1].t if self.seconds else 0.0

    def window_of(self, start: float, end: float) -> Window | None:
        """The seconds whose calls ended after START and by END."""
        picked = [s for s in self.seconds if start < s.t <= end + 1e-9]
        if not picked:
            return None
        samples = [x for s in picked for x in s.samples_ns]
        p50, p95, p99 = (v / 1e6 for v in stats.percentiles(samples, [50, 95, 99]))
        busy = sum(s.busy for s in picked)
        return Window(
            start, min(end, self.elapsed), len(picked), len(samples), p50, p95, p99,
            sum(s.items for s in picked) / busy if busy > 0 else 0.0,
            _mean([s.freq_mhz for s in picked if s.freq_mhz is not None]),
            _mean([s.temp_c for s in picked if s.temp_c is not None]),
        )  # fmt: skip

    @property
    def first(self) -> Window | None:
        return self.window_of(0.0, self.window)

    @property
    def last(self) -> Window | None:
        """The last WINDOW seconds; none while the run is too short to have a last window apart from the first."""
        if self.elapsed < 2 * self.window:
            return None
        return self.window_of(self.elapsed - self.window, self.elapsed)

    def _medians(self, w: Window | None) -> list[float]:
        if w is None:
            return []
        return [s.p50_ms for s in self.seconds if w.start < s.t <= w.end + 1e-9]

    @property
    def change(self) -> stats.RatioTest | None:
        """The last window's per-second median latency relative to the first's (above 1: slower at the end)."""
        return stats.ratio_test(self._medians(self.first), self._medians(self.last))

    @property
    def first_throttle(self) -> FirstThrottle:
        if "throttle" in self.sources:
            for s in self.seconds:
                if s.throttled is not None and Throttle(s.throttled).slowing:
                    return FirstThrottle(s.t, f"vcgencmd: {', '.join(Throttle(s.throttled).now)}")
            return FirstThrottle(None, "none: vcgencmd reported no throttling")
        if "frequency" in self.sources:
            peak = 0.0
            for s in self.seconds:
                if s.freq_mhz is None:
                    continue
                if peak and s.freq_mhz < FREQ_DROP * peak:
                    return FirstThrottle(s.t, f"CPU clock fell to {s.freq_mhz:.0f} MHz from {peak:.0f} (no throttle "
                                         "flags on this device)")  # fmt: skip
                peak = max(peak, s.freq_mhz)
            return FirstThrottle(None, f"none: the CPU clock never fell below {FREQ_DROP:.0%} of its peak")
        return FirstThrottle(None, "cannot be told here: no throttle flags and no CPU clock readings")

    def summary(self) -> Summary:
        figures: dict[str, float | None] = {}
        if self.seconds:
            whole = self.window_of(-1.0, self.elapsed)
            assert whole is not None
            samples = [x for s in self.seconds for x in s.samples_ns]
            figures.update(p50=whole.p50, p95=whole.p95, p99=whole.p99, throughput=whole.throughput,
                           p90=stats.percentiles(samples, [90])[0] / 1e6, max=max(samples) / 1e6,
                           mean=sum(samples) / len(samples) / 1e6)  # fmt: skip
        end = self.last or self.first  # a run shorter than two windows has one window: it is also its last
        if end is not None:
            figures.update(p50_sustained=end.p50, p95_sustained=end.p95, p99_sustained=end.p99,
                           throughput_sustained=end.throughput)  # fmt: skip
        return Summary(**figures)

    @property
    def label(self) -> str:
        return f"threads={self.threads or 'auto'}, sustained"

    def with_budget(self, rows: list[BudgetRow]) -> SustainedResult:
        return replace(self, budget=tuple(rows))

    def to_json(self) -> dict[str, object]:
        from .. import typed_json

        body: dict[str, object] = typed_json.dump(self)
        return {"schema": SCHEMA, **body}

    @classmethod
    def from_json(cls, data: object, what: str = "sustained result") -> SustainedResult:
        from .. import typed_json

        return typed_json.load_versioned(cls, data, what, SCHEMA, {}, "sustained")


def save(result: SustainedResult, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n"
    safepath.write_output(path, body, error=EdgertError, what="--json")
    return path
