"""What bench tells its fresh processes, and what they answer: one typed JSON line each way.

The runner starts `edgert.bench.worker` (one round of latency and throughput) and `edgert.bench.cold` (cold
start) with a spec on the command line; each prints its answer as JSON lines that the runner reads back with the
same types. Defaults live in BenchConfig only: a spec is always written whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import BenchConfig, parse_shapes, parse_values


@dataclass(frozen=True)
class TargetSpec:
    """What a fresh process needs to open the same target (workload.open_spec reads it)."""

    target: Path
    variant: str | None
    threads: int
    seq_len: int
    shapes: tuple[str, ...]
    values: tuple[str, ...]
    input_file: Path | None
    memory: str = "default"

    @classmethod
    def of(cls, config: BenchConfig, threads: int) -> TargetSpec:
        return cls(
            config.target, config.variant, threads, config.seq_len, config.shapes, config.values, config.input_file,
            config.memory,
        )  # fmt: skip

    def parsed_shapes(self) -> dict[str, tuple[int, ...]]:
        return parse_shapes(list(self.shapes))

    def parsed_values(self) -> dict[str, float]:
        return parse_values(list(self.values))


@dataclass(frozen=True)
class WorkerSpec:
    """One round: warm up, time latency calls, then each batch size's throughput calls."""

    target: TargetSpec
    warmup: int
    min_time: float
    min_count: int
    max_time: float
    throughput_time: float
    batches: tuple[int, ...]

    @property
    def timeout(self) -> float:
        """Seconds after which a round has hung: every phase at its longest, and load time."""
        return self.max_time * (2 + len(self.batches)) + 300


@dataclass(frozen=True)
class BatchSamples:
    batch: int
    items: int  # items one call ran: what throughput counts
    samples_ns: tuple[int, ...]


@dataclass(frozen=True)
class RoundOutput:
    """A worker's answer: latency samples (ns per call) and per batch size its calls' samples."""

    latency_ns: tuple[int, ...]
    throughput: tuple[BatchSamples, ...]


@dataclass(frozen=True)
class ColdParts:
    """A cold-start process's first line, printed the moment its first result exists: parts of the wall time
    the parent measures from process start to this line."""

    load_ms: float
    prepare_inputs_ms: float
    first_ms: float


@dataclass(frozen=True)
class ColdPeak:
    """Its second line: the process's peak resident memory after the first result."""

    peak_rss_mib: float
