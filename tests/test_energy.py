"""Energy readers against fixture trees laid out as the kernel lays them out, and recorded vcgencmd output."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgert.device import meters as energy

from .helpers import PMIC_OUTPUT


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content + "\n")


def _rapl(root: Path, energy_uj: int, max_uj: int = 262143328850) -> None:
    _write(
        root,
        {
            "intel-rapl:0/name": "package-0",
            "intel-rapl:0/energy_uj": str(energy_uj),
            "intel-rapl:0/max_energy_range_uj": str(max_uj),
            # a sub-zone (cores) is inside package-0 and must not be counted again
            "intel-rapl:0/intel-rapl:0:0/name": "core",
            "intel-rapl:0/intel-rapl:0:0/energy_uj": "5",
            "intel-rapl:0:0/energy_uj": "123",
        },
    )


def test_rapl_difference_in_joules(tmp_path):
    _rapl(tmp_path, 1_000_000)
    meter = energy.RaplMeter(tmp_path)
    assert meter.source == "RAPL powercap (package-0)"
    meter.start()
    (tmp_path / "intel-rapl:0/energy_uj").write_text("3500000\n")
    assert meter.stop() == pytest.approx(2.5)


def test_rapl_wraparound(tmp_path):
    _rapl(tmp_path, 999_000, max_uj=1_000_000)
    meter = energy.RaplMeter(tmp_path)
    meter.start()
    (tmp_path / "intel-rapl:0/energy_uj").write_text("4000\n")  # wrapped past 1_000_000
    assert meter.stop() == pytest.approx((1_000 + 4_000) / 1e6)


def test_rapl_two_packages_are_summed(tmp_path):
    _rapl(tmp_path, 10)
    _write(
        tmp_path,
        {"intel-rapl:1/name": "package-1", "intel-rapl:1/energy_uj": "20", "intel-rapl:1/max_energy_range_uj": "1000"},
    )
    meter = energy.RaplMeter(tmp_path)
    meter.start()
    (tmp_path / "intel-rapl:0/energy_uj").write_text("1000010")
    (tmp_path / "intel-rapl:1/energy_uj").write_text("10")  # wrapped: 980 + 10
    assert meter.stop() == pytest.approx((1_000_000 + 990) / 1e6)


def test_rapl_permission_denied_message_when_root(tmp_path, monkeypatch):
    # The kernel's EACCES on energy_uj for non-root (Linux >= 5.10); root ignores mode bits, so inject it.
    _rapl(tmp_path, 1)
    real = Path.read_text

    def deny(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(energy.MeterUnavailable, match="RAPL present but not readable.*udev rule"):
        energy.RaplMeter(tmp_path)


def test_no_rapl(tmp_path):
    with pytest.raises(energy.MeterUnavailable, match="no RAPL package zones"):
        energy.RaplMeter(tmp_path)


def test_hwmon_ina226_power(tmp_path):
    _write(
        tmp_path,
        {
            "hwmon0/name": "acpitz",
            "hwmon0/temp1_input": "40000",
            "hwmon1/name": "ina226",
            "hwmon1/power1_input": "2350000",
            "hwmon1/curr1_input": "470",
            "hwmon1/in1_input": "5000",
        },
    )
    meter = energy.HwmonMeter(tmp_path)
    assert meter.power_w() == pytest.approx(2.35)
    assert "ina226 power1_input" in meter.source


def test_hwmon_ina219_from_current_and_voltage(tmp_path):
    _write(tmp_path, {"hwmon2/name": "ina219", "hwmon2/curr1_input": "400", "hwmon2/in1_input": "5100"})
    assert energy.HwmonMeter(tmp_path).power_w() == pytest.approx(0.4 * 5.1)


def test_hwmon_jetson_ina3221_uses_the_total_rail(tmp_path):
    _write(
        tmp_path,
        {
            "hwmon3/name": "ina3221",
            "hwmon3/in1_label": "VDD_IN",
            "hwmon3/in1_input": "5072",
            "hwmon3/curr1_input": "1120",
            "hwmon3/in2_label": "VDD_CPU_GPU_CV",
            "hwmon3/in2_input": "5072",
            "hwmon3/curr2_input": "400",
            "hwmon3/in3_label": "VDD_SOC",
            "hwmon3/in3_input": "5072",
            "hwmon3/curr3_input": "300",
        },
    )
    meter = energy.HwmonMeter(tmp_path)
    assert meter.power_w() == pytest.approx(5.072 * 1.120)  # VDD_IN already includes the other rails
    assert "VDD_IN" in meter.source


def test_hwmon_ina3221_without_total_sums_rails(tmp_path):
    _write(
        tmp_path,
        {
            "hwmon0/name": "ina3221",
            "hwmon0/in1_label": "VDD_GPU",
            "hwmon0/in1_input": "1000",
            "hwmon0/curr1_input": "2000",
            "hwmon0/in2_label": "VDD_CPU",
            "hwmon0/in2_input": "1000",
            "hwmon0/curr2_input": "1000",
        },
    )
    assert energy.HwmonMeter(tmp_path).power_w() == pytest.approx(3.0)


def test_no_power_sensor(tmp_path):
    _write(tmp_path, {"hwmon0/name": "k10temp"})
    with pytest.raises(energy.MeterUnavailable, match="no INA219/INA226/INA3221"):
        energy.HwmonMeter(tmp_path)


def test_pmic_output_parsing():
    want = 0.090264 * 3.71232 + 0.061962 * 3.312576 + 0.17641 * 1.801536 + 0.024402 * 1.111968 + 0.905 * 0.85
    assert energy.parse_pmic(PMIC_OUTPUT) == pytest.approx(want)
    with pytest.raises(ValueError):
        energy.parse_pmic('error=1 error_msg="Command not registered"')


def test_sampled_meter_subtracts_idle_power():
    readings = iter([PMIC_OUTPUT] * 1000)
    meter = energy.PmicMeter(run=lambda: next(readings))
    meter.interval = 0.001
    idle = meter.idle(0.02)
    assert idle == pytest.approx(energy.parse_pmic(PMIC_OUTPUT))
    meter.start()
    joules = meter.stop()
    assert joules == pytest.approx(0.0, abs=1e-9)  # the same power as idle: nothing attributable to the model


def test_sampled_meter_integrates_extra_power():
    state = {"w": 2.0}
    meter = energy._Sampled()
    meter.power_w = lambda: state["w"]
    meter.interval = 0.001
    meter.idle(0.01)
    state["w"] = 5.0
    import time

    before = time.perf_counter()
    meter.start()
    time.sleep(0.2)
    joules = meter.stop()
    elapsed = time.perf_counter() - before
    # the meter's own window holds the 0.2 s sleep and lies inside `elapsed`: bounds no busy machine can break
    assert 3.0 * 0.2 <= joules <= 3.0 * elapsed


def test_estimate_uses_cpu_time():
    meter = energy.EstimateMeter(watts_per_core=2.0, profile="test")
    meter.start()
    x = 0
    for i in range(2_000_000):
        x += i
    joules = meter.stop()
    cpu = joules / 2.0
    assert 0.01 < cpu < 5
    assert meter.estimated and "estimated" in meter.source


def test_auto_falls_back_to_estimate_here(tmp_path):
    meter = energy.choose("auto", None, "x86_64", powercap=tmp_path, hwmon=tmp_path, pmic=lambda: "")
    assert isinstance(meter, energy.EstimateMeter) and meter.estimated


def test_auto_prefers_a_real_meter(tmp_path):
    _rapl(tmp_path / "powercap", 5)
    meter = energy.choose("auto", None, "x86_64", powercap=tmp_path / "powercap", hwmon=tmp_path)
    assert meter.name == "rapl" and not meter.estimated


def test_explicit_unusable_meter_is_an_error(tmp_path):
    from edgert.errors import EdgertError

    with pytest.raises(EdgertError, match="energy meter rapl is not usable here: no RAPL"):
        energy.choose("rapl", None, "x86_64", powercap=tmp_path, hwmon=tmp_path)


def test_profiles():
    assert energy.profile_for("Raspberry Pi 5 Model B Rev 1.0", "aarch64")[0] == "raspberry pi 5"
    assert energy.profile_for("Raspberry Pi 4 Model B Rev 1.4", "aarch64")[0] == "raspberry pi 4"
    assert energy.profile_for(None, "aarch64")[0] == "aarch64"
