"""What CPU this is: architecture and the ISA features that decide quantisation targets and kernel speed."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

_X86_FEATURES = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "f16c", "fma")
_ARM_FEATURES = ("asimd", "asimddp", "sve", "sve2", "i8mm", "fphp", "asimdhp", "bf16")
_ARM_NAMES = {"asimd": "neon", "asimddp": "dotprod"}


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


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    for line in _cpuinfo_lines(Path(cpuinfo)):
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine()


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


def board_model() -> str | None:
    """The board, e.g. 'Raspberry Pi 5 Model B Rev 1.0', from the device tree (ARM boards) or DMI (PCs)."""
    return (
        _read("/proc/device-tree/model")
        or _read("/sys/firmware/devicetree/base/model")
        or (
            " ".join(x for x in (_read("/sys/class/dmi/id/sys_vendor"), _read("/sys/class/dmi/id/product_name")) if x)
            or None
        )
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


def describe() -> dict:
    """Everything `edgert device` shows, and what every bench result records."""
    import os

    import onnxruntime as ort

    from . import kernels

    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "features": list(cpu_features()),
        "board": board_model(),
        "os": os_name(),
        "governor": governor(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "kernels": kernels.IMPLEMENTATION,
        "quantization_target": quantization_target(),
    }
