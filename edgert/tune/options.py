"""What ``edgert tune`` takes, declared once (the CLI builds its flags from these fields)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..bench.config import batch_sizes, thread_counts
from ..errors import OptionError
from ..modes import MEMORY_MODES
from ..options import check, option
from ..sustained.options import duration

OBJECTIVES = ("latency", "throughput", "memory", "energy")


def _threads() -> tuple[int, ...]:
    """1 up to the cores here, and onnxruntime's own choice."""
    return (*range(1, (os.cpu_count() or 1) + 1), 0)


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _modes(text: str) -> tuple[str, ...]:
    modes = _names(text)
    for m in modes:
        if m not in MEMORY_MODES:
            raise OptionError("memory", f"{m!r} is not a memory mode ({', '.join(MEMORY_MODES)})")
    if not modes:
        raise OptionError("memory", "nothing given")
    return modes


@dataclass(frozen=True)
class TuneOptions:
    budget: str | None = option(None, help='limits in bench\'s syntax, e.g. "p95<=20ms,rss<=150MB"')
    objective: str = option("latency", help="what the chosen configuration is best at", choices=OBJECTIVES)
    variants: tuple[str, ...] = option((), help="variants to try, e.g. fp32,int8", parse=_names, shown="every one")
    threads: tuple[int, ...] = option(
        (), help="thread counts to try, e.g. 1,2,4 (0 or auto: onnxruntime's choice)", parse=thread_counts,
        shown="1 to the cores here, and auto",
    )  # fmt: skip
    memory: tuple[str, ...] = option(
        MEMORY_MODES, help="memory modes to try, e.g. default,lean (lean: no memory arena)", parse=_modes
    )
    batch_sizes: tuple[int, ...] = option(
        (1, 8, 32), help="batch sizes, for the throughput objective", parse=batch_sizes
    )
    seq_len: int = option(128, help="tokens per text for text bundles")
    input_file: Path | None = option(
        None, help="inputs to measure on, as bench takes them", flag="--input", metavar="FILE", parse=Path
    )
    sustained: float | None = option(
        None, help="then hold each configuration that passes under load this long, best first, until one keeps the "
        "budget (its @sustained limits judge the run's end)", parse=duration, metavar="DURATION",
    )  # fmt: skip
    save: bool = option(True, help="remember the choice for this bundle on this device (edgert.load applies it)")

    def __post_init__(self) -> None:
        if not self.threads:
            object.__setattr__(self, "threads", _threads())  # frozen: the device's own default, set once
        check(self.objective in OBJECTIVES, "objective", f"must be one of {', '.join(OBJECTIVES)}")
        s = self.sustained
        check(s is None or 10 <= s <= 86400, "sustained", f"must be between 10 s and 24 h, got {s} s")
        check(2 <= self.seq_len <= 8192, "seq_len", f"must be between 2 and 8192, got {self.seq_len}")
