"""A sustained run as tables (the terminal, Markdown) and as a plot of latency, CPU clock, temperature and
throttling against time. Tables print through bench's renderer, so a number is never cut."""

from __future__ import annotations

import math
from pathlib import Path

from ..device.sensors import Throttle
from ..errors import MissingDependencyError
from .records import Second, SustainedResult, Window

Section = tuple[str, list[str], list[list[str]]]
#: about this many rows in the printed series; the JSON keeps every second
ROWS = 15


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _flags(word: int | None) -> str:
    if word is None:
        return "-"
    now = Throttle(word).now
    return ", ".join(now) if now else "none"


def _bucket(elapsed: float) -> int:
    return max(1, math.ceil(elapsed / ROWS))


def series_rows(r: SustainedResult) -> list[list[str]]:
    """The four series in spans of a few seconds: latency over every call in the span, the mean CPU clock, the
    hottest temperature, and the throttle flags seen at any second of the span."""
    step = _bucket(r.elapsed)
    rows = []
    n = max(1, round(r.elapsed / step))  # the last span takes the remainder, never a span of a few calls
    for i in range(n):
        start, end = i * step, (r.elapsed if i == n - 1 else (i + 1) * step)
        w = r.window_of(start, end)
        picked: list[Second] = [s for s in r.seconds if start < s.t <= end + 1e-9]
        if w is not None:
            word = None
            words = [s.throttled for s in picked if s.throttled is not None]
            if words:
                word = 0
                for x in words:
                    word |= x
            temps = [s.temp_c for s in picked if s.temp_c is not None]
            hottest = max(temps) if temps else None
            rows.append([
                f"{start:.0f}-{end:.0f} s", str(w.calls), _f(w.p50, "{:.3f} ms"), _f(w.p95, "{:.3f} ms"),
                _f(w.throughput, "{:.1f}"), _f(w.freq_mhz, "{:.0f} MHz"), _f(hottest, "{:.1f} °C"),
                _flags(word),
            ])  # fmt: skip
    return rows


def _window_row(name: str, w: Window | None) -> list[str]:
    if w is None:
        return [name, "-", "-", "-", "-", "-", "-"]
    return [
        f"{name} ({w.start:.0f}-{w.end:.0f} s)", _f(w.p50, "{:.3f} ms"), _f(w.p95, "{:.3f} ms"),
        _f(w.p99, "{:.3f} ms"), _f(w.throughput, "{:.1f} items/s"), _f(w.freq_mhz, "{:.0f} MHz"),
        _f(w.temp_c, "{:.1f} °C"),
    ]  # fmt: skip


def verdict(r: SustainedResult) -> str:
    """What the end of the run did against its start, in words a reader can sign."""
    if r.last is None:
        return f"start and end not compared: the run lasted {r.elapsed:.0f} s, under two {r.window:g} s windows"
    test = r.change
    if test is None:
        return "start and end not compared: fewer than three seconds in a window"
    span = f"{test.ratio:.3f}x [{test.low:.3f}, {test.high:.3f}] ({test.confidence:.0%} interval, per-second medians)"
    if test.low > 1.0:
        return f"slower at the end: median latency {span}"
    if test.high < 1.0:
        return f"faster at the end: median latency {span}"
    return f"no change told apart from noise: median latency {span}"


def sections(r: SustainedResult) -> list[Section]:
    name = Path(r.target).name
    head = ["seconds", "calls", "p50", "p95", "items/s", "CPU clock", "hottest", "throttle flags"]
    out: list[Section] = [(f"{name} under load: each span of {_bucket(r.elapsed)} s", head, series_rows(r))]
    w_head = ["window", "p50", "p95", "p99", "throughput", "CPU clock", "temperature"]
    out.append(("start and end", w_head, [_window_row("first", r.first), _window_row("last", r.last)]))
    first = r.first_throttle
    facts = [
        ["duration", f"{r.elapsed:.0f} s of {r.duration:g} s asked" + ("" if r.complete else " (interrupted)")],
        ["duty cycle", f"{r.duty:.0%} of each second, batch {r.batch}, threads {r.threads or 'auto'}"],
        ["change", verdict(r)],
        ["first throttle", (f"at {first.t:.0f} s: " if first.t is not None else "") + first.how],
    ]
    if r.throttled_before is not None and Throttle(r.throttled_before).since_boot:
        facts.append(["before the run", "since boot: " + ", ".join(Throttle(r.throttled_before).since_boot)])
    facts += [[f"{k} from", v] for k, v in r.sources.items()]
    facts += [[f"no {k}", v] for k, v in r.unavailable.items()]
    out.append(("sustained run", ["", ""], facts))
    if r.budget:
        rows = [[b.budget, _f(b.measured, "{:.3f} " + b.unit), "PASS" if b.passed else b.status.upper()]
                for b in r.budget]  # fmt: skip
        out.append(("budget", ["budget", "measured", "verdict"], rows))
    return out


def print_rich(r: SustainedResult) -> None:
    from ..bench.report import print_tables

    print_tables(sections(r))


def markdown(r: SustainedResult) -> str:
    from ..bench.report import markdown_tables

    return markdown_tables("edgert bench --sustained", sections(r))


def plot(r: SustainedResult, path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib; run: pip install 'edgert[plot]'") from None
    t = [s.t for s in r.seconds]
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    ax_lat, ax_freq, ax_temp, ax_thr = axes
    ax_lat.plot(t, [s.p50_ms for s in r.seconds], label="p50")
    ax_lat.plot(t, [s.p95_ms for s in r.seconds], label="p95")
    ax_lat.set(ylabel="latency, ms", title="latency per second")
    ax_lat.legend()
    series = (
        (ax_freq, "frequency", [s.freq_mhz for s in r.seconds], "CPU clock, MHz"),
        (ax_temp, "temperature", [s.temp_c for s in r.seconds], "hottest, °C"),
        (ax_thr, "throttle", [None if s.throttled is None else int(Throttle(s.throttled).slowing)
                              for s in r.seconds], "throttled (0/1)"),
    )  # fmt: skip
    for ax, key, values, label in series:
        ax.set(ylabel=label)
        if key in r.unavailable:
            ax.text(0.5, 0.5, f"not on this device: {r.unavailable[key]}", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        else:
            ax.plot(t, [float("nan") if v is None else v for v in values], drawstyle="steps-post")
    for ax in axes:
        ax.grid(alpha=0.3)
    ax_thr.set(xlabel="seconds")
    device = r.machine.board or r.machine.cpu
    fig.suptitle(f"edgert bench --sustained: {Path(r.target).name} ({r.variant or 'default'}) on {device}")
    from ..bench.report import save_figure

    return save_figure(fig, path)
