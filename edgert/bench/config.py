"""What `edgert bench` measures and how long: ``BenchConfig``, each option declared once (default, help, flag) for
the library and for the command line, which generates its arguments from these fields.

Light on purpose (the standard library and edgert.options): the CLI builds its parser from it before anything
heavy is imported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..device.meters import METERS
from ..errors import OptionError
from ..modes import MEMORY_MODES
from ..options import check, option

ENERGY_METERS = ("auto", *METERS, "estimate", "off")
#: `--quick`: short runs for a smoke test; options given still win
QUICK = {
    "min_time": 1.0, "min_count": 30, "throughput_time": 0.3, "cold_runs": 1, "energy_time": 0.5, "warmup": 5,
    "rounds": 5,
}  # fmt: skip


def _ints(text: str, name: str, auto: bool) -> tuple[int, ...]:
    out = []
    for tok in (t.strip() for t in text.split(",") if t.strip()):
        if auto and tok == "auto":
            out.append(0)
            continue
        try:
            out.append(int(tok))
        except ValueError:
            raise OptionError(name, f"{tok!r} is not a whole number (got {text!r})") from None
    if not out:
        raise OptionError(name, "nothing given")
    return tuple(out)


def thread_counts(text: str) -> tuple[int, ...]:
    """'1,2,4' or 'auto' (0: onnxruntime's choice)."""
    return _ints(text, "threads", auto=True)


def batch_sizes(text: str) -> tuple[int, ...]:
    return _ints(text, "batch_sizes", auto=False)


def parse_shapes(specs: list[str]) -> dict[str, tuple[int, ...]]:
    """--shape name=1x128 (repeatable, or comma-separated)."""
    shapes = {}
    for spec in (s for item in specs for s in item.split(",") if s.strip()):
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*(\d+(?:x\d+)*)\s*", spec)
        if not m:
            raise OptionError("shapes", f"{spec!r}: expected NAME=DxDx..., e.g. input_ids=1x128")
        shapes[m.group(1)] = tuple(int(d) for d in m.group(2).split("x"))
    return shapes


def parse_values(specs: list[str]) -> dict[str, float]:
    """--value name=16000 (repeatable, or comma-separated): an input filled with that value."""
    values = {}
    for spec in (s for item in specs for s in item.split(",") if s.strip()):
        m = re.fullmatch(r"\s*([^=\s]+)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*", spec)
        if not m:
            raise OptionError("values", f"{spec!r}: expected NAME=NUMBER, e.g. sample_rate=16000")
        values[m.group(1)] = float(m.group(2))
    return values


@dataclass(frozen=True)
class BenchConfig:
    target: Path = option(help="the bundle directory or .onnx file", cli=False)
    variant: str | None = option(None, help="fp32 or int8", shown="the bundle's")
    threads: tuple[int, ...] = option(
        (0,), help="intra-op threads to sweep, e.g. 1,2,4 (auto: onnxruntime's choice)", parse=thread_counts,
        shown="auto",
    )  # fmt: skip
    batch_sizes: tuple[int, ...] = option((1, 8, 32), help="batch sizes for the throughput runs", parse=batch_sizes)
    memory: str = option("default", help="the session's memory mode (lean: no memory arena)", choices=MEMORY_MODES)
    seq_len: int = option(128, help="tokens per text for text bundles")
    shapes: tuple[str, ...] = option(
        (), help="shape of an input with dynamic dimensions (bare ONNX); the first dimension is the batch",
        flag="--shape", metavar="NAME=DxD", many=True,
    )  # fmt: skip
    input_file: Path | None = option(
        None, help="texts (one per line), an image, a WAV file or a .npz of input arrays", flag="--input",
        metavar="FILE", parse=Path,
    )  # fmt: skip
    min_time: float = option(3.0, help="seconds of latency runs in all, at least")
    min_count: int = option(100, help="latency runs in all, at least")
    max_time: float = option(60.0, help="seconds per timed phase, at most")
    warmup: int = option(10, help="warmup runs")
    throughput_time: float = option(1.0, help="seconds per batch size in all")
    cold_runs: int = option(3, help="fresh processes for cold start (0: skip)")
    energy_meter: str = option("auto", help="the energy meter", choices=ENERGY_METERS)
    energy_time: float = option(2.0, help="seconds of the energy run")
    watts_per_core: float | None = option(None, help="power profile for the energy estimate", shown="the device's")
    rounds: int = option(10, help="independent worker processes that share the timed runs; compare tests their medians")
    values: tuple[str, ...] = option(
        (), help="fill a raw model's input with a value, e.g. sample_rate=16000 (scalars need one)", flag="--value",
        metavar="NAME=NUMBER", many=True,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check(self.threads and all(t >= 0 for t in self.threads), "threads", "takes counts >= 0 (0 or auto)")
        check(self.batch_sizes and all(b >= 1 for b in self.batch_sizes), "batch_sizes", "takes sizes >= 1")
        check(2 <= self.seq_len <= 8192, "seq_len", f"must be between 2 and 8192, got {self.seq_len}")
        for name in ("min_time", "max_time", "throughput_time", "energy_time"):
            check(math.isfinite(getattr(self, name)), name, f"must be finite, got {getattr(self, name)}")
        check(self.min_time >= 0, "min_time", f"must be >= 0 seconds, got {self.min_time}")
        check(self.max_time > 0, "max_time", f"must be > 0 seconds, got {self.max_time}")
        check(self.min_count >= 1, "min_count", f"must be at least 1, got {self.min_count}")
        check(self.cold_runs >= 0, "cold_runs", f"must be >= 0, got {self.cold_runs}")
        check(self.warmup >= 0, "warmup", f"must be >= 0, got {self.warmup}")
        check(1 <= self.rounds <= 100, "rounds", f"must be between 1 and 100, got {self.rounds}")
        check(self.throughput_time >= 0, "throughput_time", f"must be >= 0 seconds, got {self.throughput_time}")
        check(self.energy_time > 0, "energy_time", f"must be > 0 seconds, got {self.energy_time}")
        w = self.watts_per_core
        check(
            w is None or (math.isfinite(w) and 0 < w <= 1000), "watts_per_core",
            f"must be a power in watts, above 0 (and at most 1000), got {w}",
        )  # fmt: skip
        check(self.memory in MEMORY_MODES, "memory", f"must be one of {', '.join(MEMORY_MODES)}, got {self.memory!r}")
        check(self.energy_meter in ENERGY_METERS, "energy_meter", f"must be one of {', '.join(ENERGY_METERS)}")
        parse_shapes(list(self.shapes))
        parse_values(list(self.values))
