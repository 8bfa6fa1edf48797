"""What a sustained run watches each second, read in the kernel's own formats: CPU frequency (cpufreq
``scaling_cur_freq``, kHz), temperatures (thermal zones' ``temp`` and hwmon ``temp*_input``, millidegrees Celsius)
and, on a Raspberry Pi, the firmware's throttle flags (``vcgencmd get_throttled``).

A series the device does not have is named with the reason; a sensor that is present but cannot be read is an
error before anything is measured (``Sensors.probe`` raises), so a long run never ends with a silent gap.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgertError

#: vcgencmd get_throttled's bits (Raspberry Pi firmware documentation): 0-3 now, 16-19 since boot
THROTTLE_BITS = {
    0: "under-voltage",
    1: "frequency capped",
    2: "throttled",
    3: "soft temperature limit",
}
#: the bits that mean the CPU runs slower than asked because of heat or power
SLOWING = (1, 2, 3)
_THROTTLED = re.compile(r"^\s*throttled=(0x[0-9a-fA-F]+)\s*$")


@dataclass(frozen=True)
class Throttle:
    """One ``get_throttled`` word, decoded."""

    raw: int

    def _names(self, shift: int) -> tuple[str, ...]:
        return tuple(name for bit, name in THROTTLE_BITS.items() if self.raw >> (bit + shift) & 1)

    @property
    def now(self) -> tuple[str, ...]:
        return self._names(0)

    @property
    def since_boot(self) -> tuple[str, ...]:
        return self._names(16)

    @property
    def slowing(self) -> bool:
        """The CPU is held below its asked-for clock at this moment."""
        return any(self.raw >> bit & 1 for bit in SLOWING)


def parse_throttled(text: str) -> Throttle:
    """``throttled=0x50005`` as vcgencmd prints it."""
    for line in text.splitlines():
        m = _THROTTLED.match(line)
        if m:
            return Throttle(int(m.group(1), 16))
    raise ValueError(f"not a get_throttled answer: {text.strip()[:60]!r}")


@dataclass(frozen=True)
class Reading:
    """One second's readings; None where the device has no such sensor."""

    freq_mhz: float | None = None  # mean over the CPUs
    freq_min_mhz: float | None = None
    temp_c: float | None = None  # the hottest sensor
    temps: dict[str, float] = field(default_factory=dict)
    throttled: int | None = None  # the raw get_throttled word


def _read_number(path: Path) -> int:
    return int(path.read_text().strip())


def _sensor_name(path: Path) -> str:
    text = path.read_text().strip() if path.exists() else ""
    return text or path.parent.name


class Sensors:
    """The sensors of this device under ROOT (a recorded tree in tests), found once."""

    def __init__(self, root: str | Path = "/", throttled: Callable[[], str] | None | bool = True):
        root = Path(root)
        self.unavailable: dict[str, str] = {}
        self.sources: dict[str, str] = {}
        cpu = root / "sys/devices/system/cpu"
        self.freq_paths = sorted(
            cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"), key=lambda p: int(p.parent.parent.name[3:])
        )
        if self.freq_paths:
            self.sources["frequency"] = f"cpufreq scaling_cur_freq ({len(self.freq_paths)} CPUs)"
        else:
            self.unavailable["frequency"] = f"no cpufreq under {cpu} (a VM or a kernel without cpufreq)"
        self.temp_paths: list[tuple[str, Path]] = []
        for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
            if (zone / "temp").exists():
                self.temp_paths.append((f"{_sensor_name(zone / 'type')} ({zone.name})", zone / "temp"))
        for dev in sorted((root / "sys/class/hwmon").glob("hwmon*")):
            chip = _sensor_name(dev / "name")
            for t in sorted(dev.glob("temp*_input")):
                label = dev / t.name.replace("_input", "_label")
                which = label.read_text().strip() if label.exists() else t.name.replace("_input", "")
                self.temp_paths.append((f"{chip} {which} ({dev.name})", t))
        if self.temp_paths:
            self.sources["temperature"] = f"{len(self.temp_paths)} sensors (thermal zones, hwmon)"
        else:
            self.unavailable["temperature"] = "no thermal zones or hwmon temperatures"
        self.throttled: Callable[[], str] | None = None
        if callable(throttled):
            self.throttled = throttled
        elif throttled:
            exe = shutil.which("vcgencmd")
            if exe is not None:

                def run() -> str:
                    return subprocess.run(
                        [exe, "get_throttled"], capture_output=True, text=True, timeout=5, check=False
                    ).stdout

                self.throttled = run
        if self.throttled is not None:
            self.sources["throttle"] = "vcgencmd get_throttled"
        else:
            self.unavailable["throttle"] = "no vcgencmd (Raspberry Pi firmware only)"

    def probe(self) -> Reading:
        """One reading of every sensor found; a present sensor that cannot be read raises, naming it."""
        for path in self.freq_paths:
            self._check(_read_number, path, f"CPU frequency {path}")
        for name, path in self.temp_paths:
            self._check(_read_number, path, f"temperature {name} {path}")
        if self.throttled is not None:
            run = self.throttled
            self._check(lambda _: parse_throttled(run()), None, "vcgencmd get_throttled")
        return self.read()

    @staticmethod
    def _check(read: Callable[[Path], object], path: Path | None, what: str) -> None:
        try:
            read(path or Path())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise EdgertError(f"sensor {what} is present but cannot be read ({reason})") from None

    def read(self) -> Reading:
        """This second's values; a sensor that fails now (a CPU taken offline, a zone gone) is left out of it."""
        freqs = []
        for path in self.freq_paths:
            try:
                freqs.append(_read_number(path) / 1e3)
            except (OSError, ValueError):
                continue
        temps = {}
        for name, path in self.temp_paths:
            try:
                temps[name] = _read_number(path) / 1e3
            except (OSError, ValueError):
                continue
        raw = None
        if self.throttled is not None:
            try:
                raw = parse_throttled(self.throttled()).raw
            except (OSError, ValueError, subprocess.SubprocessError):
                raw = None
        return Reading(
            freq_mhz=sum(freqs) / len(freqs) if freqs else None,
            freq_min_mhz=min(freqs) if freqs else None,
            temp_c=max(temps.values()) if temps else None,
            temps=temps,
            throttled=raw,
        )
