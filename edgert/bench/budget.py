"""Budgets: "p95<=20ms,rss<=150MB,energy<=5mJ,cold<=500ms" or a TOML file, checked against a result."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import BudgetError
from .records import BudgetRow, Summary

# metric -> its kind, which says the units it takes; the metrics are Summary's fields (a test holds them equal)
METRICS = {
    "p50": "time",
    "p90": "time",
    "p95": "time",
    "p99": "time",
    "max": "time",
    "mean": "time",
    "cold": "time",
    "init": "time",
    "first": "time",
    "rss": "memory",
    "load_rss": "memory",
    "energy": "energy",
    "throughput": "rate",
    # over the last window of a sustained run (bench --sustained)
    "p50@sustained": "time",
    "p95@sustained": "time",
    "p99@sustained": "time",
    "throughput@sustained": "rate",
}
SUSTAINED = tuple(m for m in METRICS if m.endswith("@sustained"))
#: what a sustained run measures besides its last window: the latency of every call and the items they ran
SUSTAINED_RUN = ("p50", "p90", "p95", "p99", "max", "mean", "throughput", *SUSTAINED)
UNITS = {
    "time": {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3},  # to ms
    "memory": {
        "B": 1 / 2**20,
        "KB": 1e3 / 2**20,
        "MB": 1e6 / 2**20,
        "GB": 1e9 / 2**20,
        "KiB": 1 / 1024,
        "MiB": 1.0,
        "GiB": 1024.0,
    },  # to MiB
    "energy": {"uJ": 1e-3, "µJ": 1e-3, "mJ": 1.0, "J": 1e3},  # to mJ
    "rate": {"/s": 1.0, "items/s": 1.0, "qps": 1.0},
}
CANONICAL = {"time": "ms", "memory": "MiB", "energy": "mJ", "rate": "/s"}
_TOKEN = re.compile(
    r"^\s*([a-z_0-9]+(?:@sustained)?)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([A-Za-zµ/]*)\s*$"
)


@dataclass(frozen=True)
class Limit:
    metric: str
    op: str
    value: float  # in the canonical unit of the metric's kind
    text: str

    def check(self, measured: float) -> bool:
        return {
            "<=": measured <= self.value,
            "<": measured < self.value,
            ">=": measured >= self.value,
            ">": measured > self.value,
        }[self.op]

    @property
    def unit(self) -> str:
        return CANONICAL[METRICS[self.metric]]


def parse_token(token: str) -> Limit:
    m = _TOKEN.match(token)
    if not m:
        raise BudgetError(f"budget: cannot parse {token.strip()!r}; expected METRIC<=VALUEUNIT, e.g. p95<=20ms")
    metric, op, number, unit = m.groups()
    if metric not in METRICS:
        raise BudgetError(f"budget: unknown metric {metric!r} in {token.strip()!r} (known: {', '.join(METRICS)})")
    kind = METRICS[metric]
    units = UNITS[kind]
    unit = unit or CANONICAL[kind]
    if unit not in units:
        raise BudgetError(
            f"budget: unknown unit {unit!r} in {token.strip()!r}; {metric} takes {', '.join(u for u in units)}"
        )
    value = float(number) * units[unit]
    if not math.isfinite(value):  # 1e999 parses as inf: a limit nothing can violate
        raise BudgetError(f"budget: {token.strip()!r} is not a finite limit")
    return Limit(metric, op, value, token.strip())


def parse(spec: str) -> list[Limit]:
    tokens = [t for t in spec.split(",") if t.strip()]
    if not tokens:
        raise BudgetError("budget: empty; expected e.g. 'p95<=20ms,rss<=150MB'")
    return [parse_token(t) for t in tokens]


def load_file(path: str | Path) -> list[Limit]:
    """TOML: a [budget] table of metric = "<=20ms" (or a bare "20ms", meaning <= ; >= for throughput)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BudgetError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("budget", data)
    limits = []
    for metric, value in table.items():
        text = str(value).strip()
        if text[:1] not in "<>":
            text = (">=" if metric == "throughput" else "<=") + text
        limits.append(parse_token(f"{metric}{text}"))
    if not limits:
        raise BudgetError(f'{path}: no budget entries (write e.g. [budget] p95 = "20ms")')
    return limits


def unmeasurable(limits: list[Limit], cold_runs: int, energy_meter: str, sustained: bool = False) -> list[str]:
    """Budgets that a run with these settings cannot measure, each with the reason: refused before the run."""
    out = []
    for lim in limits:
        if sustained and lim.metric not in SUSTAINED_RUN:
            out.append(f"{lim.text} (a sustained run measures {', '.join(SUSTAINED_RUN)})")
            continue
        if not sustained and lim.metric in SUSTAINED:
            out.append(f"{lim.text} (measured by a sustained run: give --sustained DURATION)")
            continue
        if lim.metric in ("cold", "rss") and cold_runs == 0:
            out.append(f"{lim.text} (measured in the cold-start runs, and --cold-runs is 0)")
        if lim.metric == "energy" and energy_meter == "off":
            out.append(f"{lim.text} (--energy-meter is off)")
    return out


def evaluate(limits: list[Limit], summaries: dict[str, Summary]) -> list[BudgetRow]:
    """One row per limit and configuration (e.g. "threads=1"): the measured value, and whether it passed. A
    budget that could not be checked does not pass, but it is not called violated either (BudgetRow.status).
    Every configuration is judged; each row names the one it judges.
    """
    rows = []
    for lim in limits:
        for config, summary in summaries.items():
            measured = summary.get(lim.metric)
            ok = measured is not None and lim.check(measured)
            rows.append(BudgetRow(lim.text, config, lim.metric, lim.value, lim.unit, measured, ok))
    return rows
