"""Sustained runs: the throttle word and the sensors decoded from recorded Raspberry Pi 4 and 5, Jetson Orin and
x86 laptop trees (against hand-decoded values); the windows, the change, the first throttle and the budget's
sustained figures computed from the seconds a run recorded (NumPy as the oracle); an unreadable sensor refused
before measuring; and `edgert bench --sustained` end to end, interrupted too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgert.bench import budget
from edgert.bench.config import BenchConfig
from edgert.device import describe
from edgert.device.sensors import Sensors, Throttle, parse_throttled
from edgert.errors import BudgetError, EdgertError, OptionError
from edgert.sustained import records, report
from edgert.sustained.options import SustainedOptions, duration, fraction
from edgert.sustained.records import Second, SustainedResult

from .helpers import EMULATED

DEVICES = Path(__file__).parent / "data" / "devices"

# vcgencmd get_throttled as the firmware prints it, decoded by hand from the documented bits
THROTTLED = {
    "throttled=0x0\n": ((), (), False),
    "throttled=0x50000\n": ((), ("under-voltage", "throttled"), False),  # bits 16 and 18: earlier, not now
    "throttled=0x50005\n": (("under-voltage", "throttled"), ("under-voltage", "throttled"), True),
    "throttled=0x80008\n": (("soft temperature limit",), ("soft temperature limit",), True),
    "throttled=0xe0002\n": (("frequency capped",), ("frequency capped", "throttled", "soft temperature limit"), True),
    "throttled=0x1\n": (("under-voltage",), (), False),  # low voltage alone does not slow the CPU
}


@pytest.mark.parametrize("text", list(THROTTLED), ids=[t.strip() for t in THROTTLED])
def test_throttle_word_decoded(text):
    now, since, slowing = THROTTLED[text]
    t = parse_throttled(text)
    assert (t.now, t.since_boot, t.slowing) == (now, since, slowing)
    assert t.raw == int(text.split("=")[1], 16)


@pytest.mark.parametrize("text", ["", 'error=1 error_msg="Command not registered"', "throttled=12"])
def test_throttle_word_that_is_not_one(text):
    with pytest.raises(ValueError, match="not a get_throttled answer"):
        parse_throttled(text)


# device -> (mean MHz, min MHz, hottest °C, its sensor, sensor count), decoded by hand from the recorded files
TREES = {
    "raspberry-pi-4": (1800.0, 1800.0, 61.835, "cpu-thermal (thermal_zone0)", 1),
    "raspberry-pi-5": (2400.0, 2400.0, 54.25, "cpu-thermal (thermal_zone0)", 1),
    # four cores at 1510.4 MHz and two at 729.6: (4 x 1510.4 + 2 x 729.6) / 6
    "jetson-orin-nano": (7500.8 / 6, 729.6, 48.968, "tj-thermal (thermal_zone3)", 4),
    # eight clocks summing to 20,600,338 kHz; acpitz 45, x86_pkg_temp 71, coretemp 71 and 68
    "x86_64-laptop": (20600338 / 8 / 1e3, 400.0, 71.0, "x86_pkg_temp (thermal_zone1)", 4),
}


@pytest.mark.parametrize("name", list(TREES))
def test_recorded_trees_decoded(name):
    mean, low, hottest, which, n = TREES[name]
    s = Sensors(DEVICES / name, throttled=False)
    r = s.probe()
    assert r.freq_mhz == pytest.approx(mean, rel=1e-12) and r.freq_min_mhz == pytest.approx(low, rel=1e-12)
    assert r.temp_c == pytest.approx(hottest) and r.temps[which] == pytest.approx(hottest) and len(r.temps) == n
    assert set(s.sources) == {"frequency", "temperature"} and set(s.unavailable) == {"throttle"}
    assert r.throttled is None


def test_laptop_names_hwmon_sensors_by_label():
    temps = Sensors(DEVICES / "x86_64-laptop", throttled=False).read().temps
    assert temps["coretemp Package id 0 (hwmon4)"] == 71.0 and temps["coretemp Core 0 (hwmon4)"] == 68.0
    assert temps["acpitz (thermal_zone0)"] == 45.0


def test_pi_throttle_flags_read_through_vcgencmd():
    s = Sensors(DEVICES / "raspberry-pi-4", throttled=lambda: "throttled=0x50005\n")
    r = s.probe()
    assert r.throttled == 0x50005 and Throttle(r.throttled).now == ("under-voltage", "throttled")
    assert s.sources["throttle"] == "vcgencmd get_throttled"


def test_a_device_without_sensors_says_why():
    s = Sensors(DEVICES / "graviton3", throttled=False)
    assert s.sources == {} and set(s.unavailable) == {"frequency", "temperature", "throttle"}
    assert "no cpufreq" in s.unavailable["frequency"]
    r = s.probe()
    assert (r.freq_mhz, r.temp_c, r.temps, r.throttled) == (None, None, {}, None)


def test_a_sensor_that_cannot_be_read_fails_before_measuring(tmp_path):
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("not a number\n")
    s = Sensors(tmp_path, throttled=False)
    with pytest.raises(EdgertError, match=r"sensor temperature cpu-thermal \(thermal_zone0\) .*temp is present but"):
        s.probe()
    from edgert.sustained import run

    started = []
    config = BenchConfig(target=tmp_path / "unused.onnx", threads=(1,))
    with pytest.raises(EdgertError, match="present but cannot be read"):
        run.run(config, SustainedOptions(sustained=60), _Progress(started), sensors=s)
    assert started == []  # refused before the model's process started

    broken = Sensors(DEVICES / "raspberry-pi-4", throttled=lambda: "VCHI initialization failed\n")
    with pytest.raises(EdgertError, match="sensor vcgencmd get_throttled is present but cannot be read"):
        broken.probe()


class _Progress:
    def __init__(self, log: list[str]):
        self.log = log

    def phase(self, name: str, total: float | None = None) -> None:
        self.log.append(name)

    def update(self, done: float) -> None:
        pass


# options and budgets


def test_durations_duties_and_windows():
    assert [duration(t) for t in ("90", "90s", "5m", "1.5h", "2 min")] == [90, 90, 300, 5400, 120]
    assert fraction("50%") == 0.5 and fraction("0.25") == 0.25
    with pytest.raises(OptionError, match="not a duration"):
        duration("five minutes")
    with pytest.raises(OptionError, match="between 10 s and 24 h"):
        SustainedOptions(sustained=5)
    with pytest.raises(OptionError, match="between 5% and 100%"):
        SustainedOptions(sustained=60, duty=1.5)
    assert SustainedOptions(sustained=300).window == 60 and SustainedOptions(sustained=60).window == 15


def test_sustained_budgets_parse_and_are_refused_where_unmeasurable():
    (lim,) = budget.parse("p95@sustained<=30ms")
    assert (lim.metric, lim.op, lim.value, lim.unit) == ("p95@sustained", "<=", 30.0, "ms")
    (rate,) = budget.parse("throughput@sustained>=50/s")
    assert rate.metric == "throughput@sustained" and rate.value == 50
    with pytest.raises(BudgetError, match="unknown metric 'rss@sustained'"):
        budget.parse("rss@sustained<=10MB")
    limits = budget.parse("p95@sustained<=30ms,cold<=1s,p50<=5ms")
    plain = budget.unmeasurable(limits, 3, "auto")
    assert plain == ["p95@sustained<=30ms (measured by a sustained run: give --sustained DURATION)"]
    sustained = budget.unmeasurable(limits, 3, "auto", sustained=True)
    assert len(sustained) == 1 and sustained[0].startswith("cold<=1s (a sustained run measures p50, p90")


# figures from recorded seconds


def _result(seconds: list[Second], **kw) -> SustainedResult:
    base = dict(
        created="2026-12-06T00:00:00+00:00", machine=describe(), software={}, target="/b/minilm", variant="int8",
        threads=1, batch=2, duration=float(len(seconds)), duty=1.0, window=10.0,
        sources={"frequency": "cpufreq", "temperature": "zones"}, unavailable={"throttle": "no vcgencmd"},
        throttled_before=None, seconds=tuple(seconds), complete=True,
    )  # fmt: skip
    return SustainedResult(**{**base, **kw})


def _seconds(n: int, rng: np.random.Generator, slow_after: int = 10**9, freq=None) -> list[Second]:
    out = []
    for i in range(n):
        scale = 1.5 if i >= slow_after else 1.0
        samples = tuple(int(x) for x in rng.normal(10e6 * scale, 0.3e6, size=50).clip(1e6))
        f = freq(i) if freq else 2400.0
        out.append(Second(i + 1.0, sum(samples) / 1e9, 2 * len(samples), samples, f, f, 50.0 + i / 10, {}, None))
    return out


def test_windows_change_and_summary_from_the_seconds():
    rng = np.random.default_rng(1)
    secs = _seconds(40, rng, slow_after=30)
    r = _result(secs)
    first, last = r.first, r.last
    assert first is not None and last is not None
    assert (first.seconds, last.seconds) == (10, 10) and (last.start, last.end) == (30.0, 40.0)
    every_first = np.concatenate([s.samples_ns for s in secs[:10]])
    every_last = np.concatenate([s.samples_ns for s in secs[30:]])
    assert first.p95 == pytest.approx(np.percentile(every_first, 95) / 1e6)
    assert last.p50 == pytest.approx(np.percentile(every_last, 50) / 1e6)
    busy = sum(s.busy for s in secs[30:])
    assert last.throughput == pytest.approx(2 * every_last.size / busy)  # items run per second spent running
    assert first.temp_c == pytest.approx(np.mean([50 + i / 10 for i in range(10)]))
    test = r.change
    assert test is not None and test.low > 1.0 and test.ratio == pytest.approx(1.5, rel=0.05)
    assert report.verdict(r).startswith("slower at the end: median latency 1.5")
    s = r.summary()
    every = np.concatenate([x.samples_ns for x in secs])
    assert s.p95 == pytest.approx(np.percentile(every, 95) / 1e6) and s.max == every.max() / 1e6
    assert s.get("p95@sustained") == pytest.approx(last.p95) and s.get("throughput@sustained") == last.throughput
    rows = budget.evaluate(budget.parse("p95@sustained<=13ms,p50<=13ms"), {r.label: s})
    assert [(b.metric, b.passed) for b in rows] == [("p95@sustained", False), ("p50", True)]


def test_steady_run_is_not_called_slower_and_a_short_one_is_not_compared():
    r = _result(_seconds(40, np.random.default_rng(2)))
    assert report.verdict(r).startswith("no change told apart from noise")
    short = _result(_seconds(15, np.random.default_rng(3)))
    assert short.last is None and short.change is None
    assert "under two 10 s windows" in report.verdict(short)
    # a run shorter than two windows has one window, the first, and it is also its last
    assert short.summary().get("p95@sustained") == pytest.approx(short.first.p95)  # type: ignore[union-attr]


def test_first_throttle_from_flags_then_from_the_clock():
    secs = _seconds(20, np.random.default_rng(4))
    flagged = [s if s.t < 12 else Second(**{**s.__dict__, "throttled": 0x80008 if s.t < 15 else 0x80000})
               for s in secs]  # fmt: skip
    r = _result(flagged, sources={"throttle": "vcgencmd get_throttled"}, unavailable={})
    assert (r.first_throttle.t, r.first_throttle.how) == (12.0, "vcgencmd: soft temperature limit")
    none = _result([Second(**{**s.__dict__, "throttled": 0x50000}) for s in secs],
                   sources={"throttle": "vcgencmd get_throttled"})  # fmt: skip
    assert none.first_throttle.t is None  # since-boot bits alone are not throttling now
    clock = _result(_seconds(20, np.random.default_rng(5), freq=lambda i: 1800.0 if i < 8 else 1500.0))
    assert clock.first_throttle.t == 9.0 and "fell to 1500 MHz from 1800" in clock.first_throttle.how
    dip = _result(_seconds(20, np.random.default_rng(6), freq=lambda i: 1800.0 if i != 5 else 1700.0))
    assert dip.first_throttle.t is None  # a 5.6% dip is not a drop
    blind = _result(secs, sources={}, unavailable={})
    assert blind.first_throttle.t is None and "cannot be told here" in blind.first_throttle.how


def test_result_saves_and_loads_whole(tmp_path):
    r = _result(_seconds(12, np.random.default_rng(7)))
    path = records.save(r, tmp_path / "s.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "edgert.sustained/1"
    assert SustainedResult.from_json(data) == r


# end to end

pytestmark_e2e = pytest.mark.skipif(EMULATED, reason="a sustained run is seconds of real load; qemu is not a device")


def _bench(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgert.cli.main", "bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}, **kw)  # fmt: skip


@pytestmark_e2e
def test_bench_sustained_end_to_end(minilm_bundle, tmp_path):
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    limits = "p95@sustained<=10s,throughput@sustained>=0.01/s"
    p = _bench(str(minilm_bundle), "--sustained", "12s", "--duty", "50%", "--threads", "1", "--seq-len", "16",
               "--budget", limits, "--json", str(out), "--plot", str(png))  # fmt: skip
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr
    r = SustainedResult.from_json(json.loads(out.read_text()))
    assert r.complete and 11 <= len(r.seconds) <= 13 and r.duty == 0.5 and r.threads == 1 and r.batch == 1
    assert all(s.items == len(s.samples_ns) for s in r.seconds)  # batch 1: an item per call
    assert all(s.busy == pytest.approx(sum(s.samples_ns) / 1e9) for s in r.seconds)
    every = np.concatenate([s.samples_ns for s in r.seconds])
    assert r.summary().p95 == pytest.approx(np.percentile(every, 95) / 1e6)
    assert [b.passed for b in r.budget] == [True, True]
    for words in ("under load: each span of 1 s", "start and end", "first throttle", "duty cycle", "PASS"):
        assert words in stdout
    for series in ("frequency", "temperature", "throttle"):  # each is read here or said to be missing, and why
        assert f"{series} from" in stdout or f"no {series}" in stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytestmark_e2e
@pytest.mark.parametrize("who", ["group", "parent"])
def test_bench_sustained_interrupted_keeps_its_seconds(minilm_bundle, tmp_path, who):
    """A Ctrl-C at a terminal reaches the whole group; `kill -INT` reaches edgert alone, which tells its worker.
    Either way the run ends with 130 and the seconds it measured are saved."""
    out = tmp_path / "s.json"
    with open(tmp_path / "stderr", "w+") as err:  # a file, not a pipe: nothing here waits on it filling up
        p = subprocess.Popen(
            [sys.executable, "-m", "edgert.cli.main", "bench", str(minilm_bundle), "--sustained", "120s", "--threads",
             "1", "--seq-len", "16", "--json", str(out)],
            stdout=subprocess.DEVNULL, stderr=err, text=True, env={**os.environ, "COLUMNS": "200"},
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and _ticks_seen(p.pid) < 5:
            time.sleep(1)
        if who == "group":
            os.killpg(p.pid, signal.SIGINT)
        else:
            os.kill(p.pid, signal.SIGINT)
        try:
            p.wait(timeout=120)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        err.seek(0)
        stderr = err.read()
    assert p.returncode == 130, stderr
    r = SustainedResult.from_json(json.loads(out.read_text()))
    assert not r.complete and len(r.seconds) >= 1
    n = len(r.seconds)
    said = f"interrupted after {r.elapsed:.0f} s of the sustained run; the {n} second{'s' if n != 1 else ''} so far"
    assert said in stderr


def _ticks_seen(pid: int) -> float:
    """Seconds of CPU the model's process has used: past loading and warming up, about the seconds it has run."""
    import psutil

    try:
        children = psutil.Process(pid).children()
        return sum(sum(c.cpu_times()[:2]) for c in children)
    except psutil.Error:
        return 0.0


def test_plot_draws_every_series_a_device_has(tmp_path):
    pytest.importorskip("matplotlib")
    secs = [
        Second(**{**s.__dict__, "throttled": 0x80008 if s.t > 10 else 0})
        for s in _seconds(20, np.random.default_rng(8))
    ]
    r = _result(secs, sources={"frequency": "cpufreq", "temperature": "zones", "throttle": "vcgencmd"}, unavailable={})
    png = report.plot(r, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "soft temperature limit" in " ".join(row[-1] for row in report.series_rows(r))


def test_fleet_bench_refuses_sustained_before_shipping(tmp_path):
    from edgert.cli.fleet import _check_passthrough
    from edgert.cli.main import build_parser

    with pytest.raises(EdgertError, match="--sustained is not run through the fleet yet"):
        _check_passthrough(build_parser(), "bench", tmp_path, ["--sustained", "5m"])
