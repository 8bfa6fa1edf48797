"""Device detection on recorded trees of real boards: board, core types, ISA features, preset, profile, meter."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgert import device
from edgert.device import meters as energy

from .helpers import PMIC_OUTPUT

DEVICES = Path(__file__).parent / "data" / "devices"

#: name: (machine, board, cores, features that must be there, features that must not, preset, profile, meter)
EXPECTED = {
    "raspberry-pi-4": (
        "aarch64",
        "Raspberry Pi 4 Model B Rev 1.4",
        {"Cortex-A72": 4},
        {"neon"},
        {"dotprod", "i8mm", "sve"},
        "arm64",
        "raspberry pi 4",
        "estimate",
    ),
    "raspberry-pi-5": (
        "aarch64",
        "Raspberry Pi 5 Model B Rev 1.0",
        {"Cortex-A76": 4},
        {"neon", "dotprod", "asimdhp"},
        {"i8mm", "sve"},
        "arm64_dotprod",
        "raspberry pi 5",
        "vcgencmd",
    ),
    "jetson-orin-nano": (
        "aarch64",
        "NVIDIA Jetson Orin Nano Developer Kit",
        {"Cortex-A78AE": 6},
        {"neon", "dotprod"},
        {"i8mm", "sve"},
        "arm64_dotprod",
        "jetson orin nano",
        "hwmon",
    ),
    "x86_64-laptop": (
        "x86_64",
        "LENOVO 20XW00A1US",
        {"11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz": 8},
        {"avx2", "avx512f", "avx512_vnni", "fma"},
        {"amx"},
        "avx512_vnni",
        "x86_64-laptop",
        "rapl",
    ),
    "graviton3": (
        "aarch64",
        None,
        {"Neoverse-V1": 2},
        {"dotprod", "i8mm", "sve", "bf16"},
        set(),
        "arm64_dotprod",
        "aarch64",
        "estimate",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detects_recorded_device(name):
    machine, board, cores, has, lacks, preset, profile, meter = EXPECTED[name]
    root = DEVICES / name
    found = device.detect(str(root), machine=machine)
    assert found.board == board
    assert found.cores == cores
    assert has <= set(found.features), found.features
    assert not lacks & set(found.features), found.features
    assert found.quantization_target == preset
    assert found.profile.name == profile and found.profile.source
    pmic = (lambda: PMIC_OUTPUT) if name == "raspberry-pi-5" else (lambda: "")
    chosen = energy.choose(
        "auto",
        found.board,
        machine,
        powercap=root / "sys/class/powercap",
        hwmon=root / "sys/class/hwmon",
        pmic=pmic,
    )
    assert chosen.name == meter, chosen


def test_cpu_names_the_cores_not_qemus_armv8_line(tmp_path):
    (tmp_path / "proc").mkdir()
    text = (
        (DEVICES / "raspberry-pi-5/proc/cpuinfo")
        .read_text()
        .replace("processor", "model name\t: ARMv8 Processor\nprocessor")
    )
    (tmp_path / "proc/cpuinfo").write_text(text)
    assert device.detect(str(tmp_path), machine="aarch64").cpu == "4x Cortex-A76"


def test_unknown_arm_part_is_named_by_its_number(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xfff\n")
    assert device.core_types(str(tmp_path / "proc/cpuinfo")) == {"Arm part 0xfff": 1}


def test_every_profile_states_its_source():
    for p in device.PROFILES.values():
        assert p.watts_per_core > 0 and len(p.source) > 20, p
