"""Resident memory of this process: current (psutil) and peak (VmHWM on Linux)."""

from __future__ import annotations

import sys
from pathlib import Path

MIB = 1024 * 1024


def rss_mib() -> float:
    import psutil

    rss: int = psutil.Process().memory_info().rss
    return rss / MIB


def peak_rss_mib() -> float:
    """The high-water mark of this process's RSS. VmHWM is per process image; ru_maxrss would carry a parent's
    peak across fork and exec, so it is only the fallback off Linux."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024
