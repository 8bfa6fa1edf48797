"""The device room: what CPU and board this is (architecture, the ISA features that decide quantisation targets
and kernel speed, core types), its power profile, its energy meters (edgert.device.meters), how many threads a
session gets, and the one description of it that `edgert device` shows and every bench result records."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import SessionError

_X86_FEATURES = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "f16c", "fma")
_ARM_FEATURES = ("asimd", "asimddp", "sve", "sve2", "i8mm", "fphp", "asimdhp", "bf16")
_ARM_NAMES = {"asimd": "neon", "asimddp": "dotprod"}


#: Arm's CPU part numbers (``CPU part`` in /proc/cpuinfo, implementer 0x41) for the cores found on boards.
ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
}


def _cpuinfo_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


@lru_cache(maxsize=4)
def cpu_features(cpuinfo: str = "/proc/cpuinfo", machine: str | None = None) -> tuple[str, ...]:
    """ISA features by their common names (avx2, avx512_vnni, amx, neon, dotprod, sve ...), sorted."""
    machine = machine or platform.machine()
    flags: set[str] = set()
    for line in _cpuinfo_lines(Path(cpuinfo)):
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if machine in ("aarch64", "arm64"):
        found = {_ARM_NAMES.get(f, f) for f in _ARM_FEATURES if f in flags}
        if machine in ("aarch64", "arm64"):
            found.add("neon")  # Advanced SIMD is mandatory on AArch64
    else:
        found = {f for f in _X86_FEATURES if f in flags}
        if "amx_tile" in found:
            found.add("amx")
    return tuple(sorted(found))


def core_types(cpuinfo: str = "/proc/cpuinfo") -> dict[str, int]:
    """Cores by type: Arm cores by their ``CPU part`` (big.LITTLE boards list two kinds), x86 by model name."""
    counts: dict[str, int] = {}
    for line in _cpuinfo_lines(Path(cpuinfo)):
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        name = None
        if key == "CPU part":
            name = ARM_PARTS.get(value.lower(), f"Arm part {value}")
        elif key == "model name" and not value.startswith("ARMv"):
            name = value
        if name:
            counts[name] = counts.get(name, 0) + 1
    return counts


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's name: x86 ``model name``; on Arm, the core types (qemu and most boards print only 'ARMv8')."""
    for line in _cpuinfo_lines(Path(cpuinfo)):
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not value.strip().startswith("ARMv"):
            return value.strip()
    cores = core_types(cpuinfo)
    if cores:
        return " + ".join(f"{n}x {name}" for name, n in cores.items())
    for line in _cpuinfo_lines(Path(cpuinfo)):
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine()


#: Why a u8 x s8 per-token model (int8-pertoken-vnni) cannot run right on this CPU, as every message says it
U8S8_SATURATES = "onnxruntime's u8 x s8 products saturate on this CPU (x86 without VNNI or AMX)"


def u8s8_exact(features: tuple[str, ...] | None = None, machine: str | None = None) -> bool:
    """Whether onnxruntime's u8 x s8 integer GEMM is exact here for full 8-bit operands: on arm64 (dot-product
    or widening multiplies) and on x86 with VNNI or AMX; on other x86 it multiplies with vpmaddubsw, which
    saturates pairs of products at 32767."""
    machine = machine or platform.machine()
    if machine in ("aarch64", "arm64"):
        return True
    feats = set(features if features is not None else cpu_features(machine=machine))
    return bool(feats & {"avx512_vnni", "avx_vnni", "amx_int8"})


def quantization_target(features: tuple[str, ...] | None = None, machine: str | None = None) -> str:
    """The quantisation preset that fits this CPU: arm64_dotprod (Pi 5 class), arm64 (Pi 4 class: no dot-product
    instructions, so int8 compute has no fast kernel), avx512_vnni, avx512 or avx2."""
    machine = machine or platform.machine()
    feats = set(features if features is not None else cpu_features(machine=machine))
    if machine in ("aarch64", "arm64"):
        return "arm64_dotprod" if "dotprod" in feats else "arm64"
    if "avx512_vnni" in feats:
        return "avx512_vnni"
    if "avx512f" in feats or "avx512bw" in feats:
        return "avx512"
    return "avx2"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def board_model(root: str = "/") -> str | None:
    """The board, e.g. 'Raspberry Pi 5 Model B Rev 1.0', from the device tree (ARM boards) or DMI (PCs)."""
    r = Path(root)
    dmi = (_read(str(r / "sys/class/dmi/id/sys_vendor")), _read(str(r / "sys/class/dmi/id/product_name")))
    return (
        _read(str(r / "proc/device-tree/model"))
        or _read(str(r / "sys/firmware/devicetree/base/model"))
        or (" ".join(x for x in dmi if x) or None)
    )


@dataclass(frozen=True)
class Profile:
    """Defaults for a kind of device: power per busy core for the energy estimate, and where the figure is from."""

    name: str
    watts_per_core: float
    source: str


#: Chosen by the detected board; every figure is rough and every estimate is labelled as one.
PROFILES = {
    "raspberry pi 4": Profile(
        "raspberry pi 4",
        0.8,
        "chipwired.com/raspberry-pi-power-use: a Pi 4 measured at the USB supply, 2.2 W idle and 5.4 W under high "
        "CPU load; (5.4 - 2.2) W over 4 cores",
    ),
    "raspberry pi 5": Profile(
        "raspberry pi 5",
        1.6,
        "no public per-core measurement found; twice the Pi 4 figure, as Raspberry Pi's 27 W supply for the Pi 5 "
        "is to the Pi 4's 15 W. The board's own PMIC (vcgencmd pmic_read_adc) is measured instead when present",
    ),
    "jetson orin nano": Profile(
        "jetson orin nano",
        1.5,
        "NVIDIA Jetson Orin Nano module power budget of 7 W to 15 W (datasheet); about 9 W of the 15 W mode over "
        "its 6 Cortex-A78AE cores. Its INA3221 rails (hwmon) are measured instead when present",
    ),
    "aarch64": Profile("aarch64", 1.5, "no board recognised: the Jetson figure, as a middle of Arm boards"),
    "x86_64-laptop": Profile(
        "x86_64-laptop",
        3.5,
        "15 W sustained package power, the default TDP Intel and AMD publish for U-series laptop CPUs, over 4 "
        "cores. RAPL is measured instead when readable",
    ),
    "x86_64": Profile("x86_64", 6.0, "a server or desktop core at full load: rough; RAPL is measured when readable"),
}


def profile_for(board: str | None, machine: str, root: str = "/") -> Profile:
    """The profile of the detected board, else of the architecture (a battery says laptop)."""
    b = (board or "").lower()
    for key in ("raspberry pi 5", "raspberry pi 4", "jetson orin nano"):
        if key in b:
            return PROFILES[key]
    if "jetson" in b:
        return PROFILES["jetson orin nano"]
    if machine in ("aarch64", "arm64"):
        return PROFILES["aarch64"]
    supply = Path(root) / "sys/class/power_supply"
    if (supply / "BAT0").exists() or (supply / "BAT1").exists():
        return PROFILES["x86_64-laptop"]
    return PROFILES["x86_64"]


@dataclass(frozen=True)
class Device:
    """What ``detect`` reads off a machine (or a recorded tree of one, for tests)."""

    machine: str
    cpu: str
    cores: dict[str, int]
    features: tuple[str, ...]
    board: str | None
    quantization_target: str
    profile: Profile


def detect(root: str = "/", machine: str | None = None) -> Device:
    """Reads ``root``/proc/cpuinfo, the device tree and DMI. ``root`` other than "/" is a recorded tree."""
    machine = machine or platform.machine()
    cpuinfo = str(Path(root) / "proc/cpuinfo")
    features = cpu_features(cpuinfo, machine)
    board = board_model(root)
    return Device(
        machine=machine,
        cpu=cpu_model(cpuinfo),
        cores=core_types(cpuinfo),
        features=features,
        board=board,
        quantization_target=quantization_target(features, machine),
        profile=profile_for(board, machine, root),
    )


def os_name() -> str:
    pretty = None
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip('"')
    return f"{pretty or platform.system()} (kernel {platform.release()})"


def governor() -> str | None:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def versions(dists: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions of these distributions (None: not installed): the one version reader."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


@dataclass(frozen=True)
class Description:
    """Everything `edgert device` shows, and what every bench result records as its machine. Fields that older
    results may lack have defaults."""

    cpu: str
    machine: str
    cores: int | None = None
    core_types: dict[str, int] = field(default_factory=dict)
    profile: str = ""
    features: tuple[str, ...] = ()
    board: str | None = None
    os: str = ""
    governor: str | None = None
    python: str = ""
    onnxruntime: str = ""
    providers: tuple[str, ...] = ()
    kernels: str = ""
    quantization_target: str = ""


def describe() -> Description:
    """This device, onnxruntime and the kernels in use."""
    import onnxruntime as ort

    from .. import kernels

    found = detect()
    return Description(
        cpu=found.cpu,
        machine=found.machine,
        cores=os.cpu_count(),
        core_types=dict(found.cores),
        profile=found.profile.name,
        features=tuple(cpu_features()),
        board=board_model(),
        os=os_name(),
        governor=governor(),
        python=platform.python_version(),
        onnxruntime=ort.__version__,
        providers=tuple(ort.get_available_providers()),
        kernels=kernels.IMPLEMENTATION,
        quantization_target=quantization_target(),
    )


THREADS_ENV = "EDGERT_THREADS"


def threads_override() -> int | None:
    """The thread count EDGERT_THREADS sets for every session, or None; the one place that reads it."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if not env:
        return None
    try:
        threads = int(env)
    except ValueError:
        raise SessionError(f"{THREADS_ENV} must be a whole number, got {env!r}") from None
    if threads < 0:
        raise SessionError(f"{THREADS_ENV} must be >= 0, got {threads}")
    return threads


def threads_in_effect(requested: int) -> tuple[int, str]:
    """The intra-op thread count a session really gets, and what set it (EDGERT_THREADS wins over the request)."""
    override = threads_override()
    if override is not None:
        return override, THREADS_ENV
    return requested, ("requested" if requested else "onnxruntime's choice")
