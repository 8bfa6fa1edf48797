"""Energy meters, chosen automatically: RAPL, hwmon (INA219/INA226, Jetson INA3221), Raspberry Pi 5's PMIC, or an
estimate from CPU time. Counters are read before and after; power meters are sampled in a thread and have the
idle power subtracted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgertError, MeterUnavailable

POWERCAP = Path("/sys/class/powercap")
HWMON = Path("/sys/class/hwmon")


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


# Counters


class RaplMeter:
    """Intel/AMD RAPL through powercap: package zones' energy_uj, which wrap at max_energy_range_uj."""

    name = "rapl"
    kind = "counter"
    estimated = False

    def __init__(self, root: Path = POWERCAP):
        zones = sorted(p for p in root.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        if not zones:
            raise MeterUnavailable(f"no RAPL package zones under {root}")
        self.zones = []
        for z in zones:
            try:
                _read_int(z / "energy_uj")
            except PermissionError:
                raise MeterUnavailable(
                    f"RAPL present but not readable ({z / 'energy_uj'}): run as root or add a udev rule "
                    "that makes energy_uj readable"
                ) from None
            except (OSError, ValueError) as exc:
                raise MeterUnavailable(f"RAPL zone {z} unreadable: {exc}") from None
            self.zones.append((z, _read_int(z / "max_energy_range_uj")))
        names = [(z / "name").read_text().strip() if (z / "name").exists() else z.name for z, _ in self.zones]
        self.source = f"RAPL powercap ({', '.join(names)})"

    def read(self) -> list[int]:
        return [_read_int(z / "energy_uj") for z, _ in self.zones]

    def start(self) -> None:
        self._start = self.read()

    def stop(self) -> float:
        """Joules since start(), across one wraparound per zone at most (a zone wraps after minutes, not ms)."""
        total_uj = 0
        for (_, max_range), a, b in zip(self.zones, self._start, self.read()):
            total_uj += b - a if b >= a else (max_range - a) + b
        return total_uj / 1e6


# Power meters, sampled


class _Sampled:
    kind = "sampled"
    estimated = False
    interval = 0.01

    def power_w(self) -> float:
        raise NotImplementedError

    def idle(self, seconds: float = 1.0) -> float:
        """Mean power with nothing running: subtracted so that the result is the model's energy."""
        samples = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            samples.append(self.power_w())
            time.sleep(self.interval)
        self.idle_w = sum(samples) / len(samples)
        return self.idle_w

    def start(self) -> None:
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

        def loop() -> None:
            while not self._stop.is_set():
                self._samples.append((time.perf_counter(), self.power_w()))
                self._stop.wait(self.interval)

        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        t1 = time.perf_counter()
        samples = self._samples or [(t1, self.power_w())]
        mean_w = sum(p for _, p in samples) / len(samples)
        return max(mean_w - getattr(self, "idle_w", 0.0), 0.0) * (t1 - self._t0)


class HwmonMeter(_Sampled):
    """hwmon power sensors: ina2xx (power1_input in µW, or curr1_input mA x in1_input mV) and Jetson's ina3221
    (per-rail inN_input mV and currN_input mA; the VDD_IN rail, when labelled, is the board total)."""

    name = "hwmon"

    def __init__(self, root: Path = HWMON):
        self.reader: Callable[[], float] | None = None
        for dev in sorted(root.glob("hwmon*")):
            chip = (dev / "name").read_text().strip() if (dev / "name").exists() else ""
            try:
                if chip.startswith("ina3221"):
                    self.reader, self.source = self._ina3221(dev)
                elif chip.startswith(("ina2", "ina226", "ina219")):
                    self.reader, self.source = self._ina2xx(dev, chip)
            except PermissionError:
                raise MeterUnavailable(f"hwmon {chip} at {dev} present but not readable: run as root") from None
            if self.reader:
                break
        if self.reader is None:
            raise MeterUnavailable(f"no INA219/INA226/INA3221 power sensor under {root}")

    @staticmethod
    def _ina2xx(dev: Path, chip: str) -> tuple[Callable[[], float], str]:
        if (dev / "power1_input").exists():
            _read_int(dev / "power1_input")
            return (lambda: _read_int(dev / "power1_input") / 1e6), f"hwmon {chip} power1_input ({dev.name})"
        _read_int(dev / "curr1_input")
        _read_int(dev / "in1_input")
        return (
            lambda: _read_int(dev / "curr1_input") / 1e3 * _read_int(dev / "in1_input") / 1e3
        ), f"hwmon {chip} curr1_input x in1_input ({dev.name})"

    @staticmethod
    def _ina3221(dev: Path) -> tuple[Callable[[], float], str]:
        rails: dict[str, str] = {}
        for label in sorted(dev.glob("in*_label")):
            m = re.fullmatch(r"in(\d+)_label", label.name)
            if m is None:
                continue
            n = m.group(1)
            if (dev / f"curr{n}_input").exists() and (dev / f"in{n}_input").exists():
                rails[label.read_text().strip()] = n
        if not rails:
            raise MeterUnavailable(f"ina3221 at {dev} has no labelled rails with current and voltage")
        total = next((r for r in rails if r.upper() in ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")), None)
        chosen = [total] if total else sorted(rails)

        def read() -> float:
            return sum(
                _read_int(dev / f"in{rails[r]}_input") / 1e3 * _read_int(dev / f"curr{rails[r]}_input") / 1e3
                for r in chosen
            )

        read()
        return read, f"hwmon ina3221 {'+'.join(chosen)} ({dev.name})"

    def power_w(self) -> float:
        assert self.reader is not None  # set by __init__, or it raised
        return self.reader()


_PMIC_LINE = re.compile(r"^\s*(\S+?)_(A|V)\s+(current|volt)\(\d+\)=([0-9.]+)(A|V)\s*$")


def parse_pmic(output: str) -> float:
    """Watts from `vcgencmd pmic_read_adc`: current and voltage lines paired by rail name, summed."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in output.splitlines():
        m = _PMIC_LINE.match(line)
        if m:
            rail, _, what, value, _ = m.groups()
            (amps if what == "current" else volts)[rail] = float(value)
    rails = sorted(set(amps) & set(volts))
    if not rails:
        raise ValueError("no rail has both current and voltage in vcgencmd output")
    return sum(amps[r] * volts[r] for r in rails)


class PmicMeter(_Sampled):
    """Raspberry Pi 5: `vcgencmd pmic_read_adc`, per-rail current x voltage, summed over rails."""

    name = "vcgencmd"
    interval = 0.05  # each reading runs a process

    def __init__(self, run: Callable[[], str] | None = None):
        if run is None:
            exe = shutil.which("vcgencmd")
            if exe is None:
                raise MeterUnavailable("vcgencmd not found (Raspberry Pi 5 only)")

            def run() -> str:
                return subprocess.run([exe, "pmic_read_adc"], capture_output=True, text=True, timeout=5).stdout

        self.run = run
        try:
            parse_pmic(self.run())
        except (ValueError, OSError, subprocess.SubprocessError) as exc:
            raise MeterUnavailable(f"vcgencmd pmic_read_adc gave no power readings ({exc}); Pi 5 only") from None
        self.source = "Raspberry Pi 5 PMIC (vcgencmd pmic_read_adc, all rails)"

    def power_w(self) -> float:
        return parse_pmic(self.run())


# Estimate


@dataclass
class EstimateMeter:
    """CPU time of this process x a per-core power profile. Never a measurement; always labelled estimated."""

    watts_per_core: float
    profile: str
    name: str = "estimate"
    kind: str = "estimate"
    estimated: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.watts_per_core <= 1000:
            raise EdgertError(f"watts per core must be above 0 (and at most 1000), got {self.watts_per_core}")

    @property
    def source(self) -> str:
        return f"estimated: CPU time x {self.watts_per_core:g} W per busy core (profile {self.profile})"

    def start(self) -> None:
        t = os.times()
        self._cpu = t.user + t.system

    def stop(self) -> float:
        t = os.times()
        return (t.user + t.system - self._cpu) * self.watts_per_core


def profile_for(board: str | None, machine: str, root: str = "/") -> tuple[str, float]:
    """(profile name, watts per busy core) of the detected board; see ``edgert.device.PROFILES``."""
    from . import profile_for as _profile

    p = _profile(board, machine, root)
    return p.name, p.watts_per_core


METERS = ("rapl", "hwmon", "vcgencmd")


def probe(powercap: Path = POWERCAP, hwmon: Path = HWMON, pmic: Callable[[], str] | None = None) -> dict[str, Any]:
    """Every real meter: the usable ones, and why each other one is not."""
    found, why = {}, {}
    for name, make in (
        ("rapl", lambda: RaplMeter(powercap)),
        ("hwmon", lambda: HwmonMeter(hwmon)),
        ("vcgencmd", lambda: PmicMeter(pmic)),
    ):
        try:
            found[name] = make()
        except MeterUnavailable as exc:
            why[name] = str(exc)
    return {"usable": found, "unavailable": why}


def choose(choice: str, board: str | None, machine: str, watts_per_core: float | None = None, **probe_kw: Any) -> Any:
    """The meter for `--energy-meter CHOICE` (auto: the first real one, else the estimate)."""

    if choice == "estimate" or (choice == "auto" and watts_per_core is not None):
        profile, w = profile_for(board, machine)
        return EstimateMeter(watts_per_core or w, "user" if watts_per_core else profile)
    found = probe(**probe_kw)
    if choice == "auto":
        for name in METERS:
            if name in found["usable"]:
                return found["usable"][name]
        profile, w = profile_for(board, machine)
        return EstimateMeter(w, profile)
    if choice not in METERS:
        raise EdgertError(f"unknown energy meter {choice!r} (auto, {', '.join(METERS)}, estimate, off)")
    if choice not in found["usable"]:
        raise EdgertError(f"energy meter {choice} is not usable here: {found['unavailable'][choice]}")
    return found["usable"][choice]
