"""The state of the machine while `edgert bench` ran: load, CPU time stolen by a hypervisor, the frequency
governor and frequency, and other processes busy on the CPU. A run on a busy machine says so, and `edgert
compare` does not let such a run fail CI unless asked to.

Everything is read from /proc and /sys (Linux); what cannot be read is None, never a guess.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Other processes using this much CPU on average during the run make it noisy (in cores).
BUSY_CORES = 0.25
#: More than this share of CPU time stolen by the hypervisor makes it noisy. Steal on a shared cloud VM moves
#: between 0.3% and 8% from one minute to the next; below 5% it cannot by itself make a 10% change.
STEAL = 0.05


@dataclass
class Snapshot:
    when: float
    load: tuple[float, float, float] | None
    cpu: list[int] | None  # /proc/stat's aggregate cpu line, in clock ticks
    procs: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (name, utime + stime ticks)
    own: float = 0.0  # CPU seconds of this process and its waited-for children (the bench's workers)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _cpu_ticks() -> list[int] | None:
    text = _read("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    return [int(x) for x in text.splitlines()[0].split()[1:]]


def _proc_ticks() -> dict[int, tuple[str, int]]:
    out = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        text = _read(f"/proc/{entry.name}/stat")
        if not text:
            continue
        # the name is in parentheses and may hold spaces; fields after it are space-separated
        name = text[text.find("(") + 1 : text.rfind(")")]
        rest = text[text.rfind(")") + 2 :].split()
        try:
            out[int(entry.name)] = (name, int(rest[11]) + int(rest[12]))  # utime, stime
        except (IndexError, ValueError):
            continue
    return out


def snapshot() -> Snapshot:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return Snapshot(time.monotonic(), load, _cpu_ticks(), _proc_ticks(), own)


def _governor_and_freq() -> tuple[str | None, float | None]:
    base = "/sys/devices/system/cpu/cpu0/cpufreq"
    gov = (_read(f"{base}/scaling_governor") or "").strip() or None
    khz = (_read(f"{base}/scaling_cur_freq") or "").strip()
    return gov, (int(khz) / 1000 if khz.isdigit() else None)


@dataclass(frozen=True)
class BusyProcess:
    name: str
    pid: int
    cores: float


@dataclass(frozen=True)
class Noise:
    """The machine's state over a run. Only ``noisy`` and ``reasons`` decide anything; the rest is evidence."""

    noisy: bool = False
    reasons: tuple[str, ...] = ()
    seconds: float | None = None
    load_start: tuple[float, float, float] | None = None
    load_end: tuple[float, float, float] | None = None
    cpus: int | None = None
    other_processes_cores: float = 0.0
    busy_processes: tuple[BusyProcess, ...] = ()
    steal: float | None = None
    governor: str | None = None
    freq_mhz: float | None = None
    round_spread: dict[str, float | None] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)


def state(before: Snapshot, after: Snapshot, spreads: dict[str, float | None]) -> Noise:
    """What the machine did between two snapshots, and whether that makes the run noisy (with the reasons).

    Noisy means evidence from outside the measurement: other processes busy on the CPU, or time stolen by a
    hypervisor. The spread between rounds is recorded but is not such evidence: a fresh process per round
    varies by 10-20% on a quiet shared VM (memory layout, placement), and compare's interval already widens
    with it."""
    elapsed = max(after.when - before.when, 1e-9)
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    me = os.getpid()
    busy = []
    for pid, (name, ticks) in after.procs.items():
        if pid == me or pid not in before.procs or before.procs[pid][0] != name:
            continue
        cores = (ticks - before.procs[pid][1]) / hz / elapsed
        if cores > 0.01:
            busy.append((cores, name, pid))
    busy.sort(reverse=True)
    other = sum(c for c, _, _ in busy)  # processes alive at both ends, by name
    steal = None
    if before.cpu and after.cpu and len(after.cpu) > 7:
        total = sum(after.cpu) - sum(before.cpu)
        steal = (after.cpu[7] - before.cpu[7]) / total if total > 0 else 0.0
        # All CPU time spent while we ran (user, nice, system, irq, softirq), less our own and our workers':
        # this also counts short-lived processes (a compiler, a package manager's scripts) that no snapshot sees.
        spent = sum(after.cpu[i] - before.cpu[i] for i in (0, 1, 2, 5, 6)) / hz
        other = max(other, (spent - (after.own - before.own)) / elapsed)
    gov, mhz = _governor_and_freq()
    reasons = []
    if other >= BUSY_CORES:
        top = ", ".join(f"{n} {c:.2f}" for c, n, _ in busy[:3])
        reasons.append(f"other processes used {other:.2f} cores" + (f" (among them {top})" if top else ""))
    if steal is not None and steal >= STEAL:
        reasons.append(f"{steal:.1%} of CPU time stolen by the hypervisor")
    return Noise(
        noisy=bool(reasons),
        reasons=tuple(reasons),
        seconds=elapsed,
        load_start=before.load,
        load_end=after.load,
        cpus=os.cpu_count(),
        other_processes_cores=other,
        busy_processes=tuple(BusyProcess(n, p, c) for c, n, p in busy[:5]),
        steal=steal,
        governor=gov,
        freq_mhz=mhz,
        round_spread=dict(spreads),
        thresholds={"busy_cores": BUSY_CORES, "steal": STEAL},
    )
