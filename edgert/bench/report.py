"""What `edgert bench` shows: rich tables on the terminal, Markdown, and an optional PNG plot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import safepath
from ..device import THREADS_ENV
from ..errors import EdgertError, MissingDependencyError
from .records import BenchResult, ThreadRun

if TYPE_CHECKING:
    from rich.console import Console


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _threads(c: ThreadRun) -> str:
    """The thread count that ran, and what set it when it was not the flag."""
    n = str(c.threads or "auto")
    return f"{n} ({THREADS_ENV})" if c.threads_source == THREADS_ENV else n


Section = tuple[str, list[str], list[list[str]]]


def sections(r: BenchResult) -> list[Section]:
    """(title, header, rows) for each table; shared by the terminal and Markdown renderers."""
    out: list[Section] = []
    t = r.target
    m = r.machine
    s = r.summary()
    info = [
        ["model", f"{t.path} ({t.variant or '-'}, {t.task})" if t else "-"],
        ["input", t.description if t else "-"],
    ]
    if r.settings.memory != "default":
        info.append(["memory mode", f"{r.settings.memory} (no memory arena: buffers go back after each call)"])
    window = t.input.window_ms if t else None
    if window and s.p50:
        info.append(["real-time factor", f"{s.p50 / window:.4f} (p50 time per window / its {window:g} ms)"])
    info += [
        ["device", f"{m.cpu} | {m.cores} cores | {m.board or m.machine} | governor {m.governor or '-'}"],
        ["software", f"onnxruntime {m.onnxruntime} | kernels {m.kernels} | {m.os}"],
    ]
    noise = r.noise
    if noise is not None:
        load = noise.load_start
        state = [f"load {load[0]:.2f} on {noise.cpus} CPUs" if load else "load -"]
        if noise.steal is not None:
            state.append(f"steal {noise.steal:.1%}")
        state.append(f"other processes {noise.other_processes_cores:.2f} cores")
        if noise.freq_mhz:
            state.append(f"{noise.freq_mhz:.0f} MHz")
        info.append(["machine state", " | ".join(state)])
        if noise.noisy:
            info.append(["NOISY", "; ".join(noise.reasons)])
    for c in r.configs:
        for why in c.refused:
            info.append(["refused", why])
    if not r.complete:
        info.append(["status", f"INCOMPLETE: interrupted during {r.interrupted_in}"])
    out.append(("Run", ["", ""], info))
    phases = []
    for c in r.configs:
        warm = c.warmup_stats()
        phases.append([_threads(c), _f(c.init_ms, "{:.1f}"), _f(c.first_ms), _f(warm.p50 if warm else None)])
    out.append(("Phases (ms)", ["threads", "init", "first inference", "warmup p50"], phases))
    lat = []
    for c in r.configs:
        st = c.latency.stats() if c.latency is not None else None
        if c.latency is not None and st is not None:
            lat.append(
                [_threads(c), str(st.count), str(len(c.latency.rounds_p50_ms))]
                + [f"{getattr(st, k):.3f}" for k in ("p50", "p90", "p95", "p99", "max")]
                + [_pct(c.latency.spread)]
            )
    batch = t.latency_batch if t else 1
    out.append(
        (
            f"Latency, batch {batch}, SingleStream (ms)",
            ["threads", "n", "rounds", "p50", "p90", "p95", "p99", "max", "spread"],
            lat,
        )
    )
    thr = [
        [
            _threads(c),
            str(x.batch),
            f"{x.items_per_s:.1f}",
            f"{x.items_per_call * 1e3 / x.items_per_s:.2f}",
            _pct(x.spread),
        ]
        for c in r.configs
        for x in c.throughput
    ]
    out.append(("Throughput, Offline", ["threads", "batch", "items/s", "ms per batch", "spread"], thr))
    mem = r.memory
    cold_n = len(r.cold_start.runs_ms) if r.cold_start is not None else 0
    res = [
        ["cold start (fresh process to first result)", f"{_f(s.cold, '{:.0f}')} ms (median of {cold_n})"],
        ["peak RSS (cold-start process)", f"{_f(s.rss, '{:.1f}')} MiB"],
        ["peak RSS (this bench process)", f"{_f(mem.peak_rss_mib if mem else None, '{:.1f}')} MiB"],
        ["RSS added by loading", f"{_f(mem.load_rss_mib if mem else None, '{:.1f}')} MiB"],
        ["RSS added by running (arena on)", f"{_f(mem.run_rss_mib if mem else None, '{:.1f}')} MiB"],
        ["model file", f"{_f(mem.model_file_mib if mem else None, '{:.1f}')} MiB"],
    ]
    e = r.energy
    if e is not None:
        tag = " (ESTIMATED)" if e.estimated else ""
        res.append(["energy per inference" + tag, f"{e.mj_per_inference:.3f} mJ over {e.inferences} runs"])
        res.append(["energy source", e.source])
    out.append(("Cold start, memory, energy", ["", ""], res))
    if r.budget:
        rows = [
            [
                b.budget,
                b.config,
                f"{b.measured:.3f} {b.unit}" if b.measured is not None else "not measured",
                {"passed": "PASS", "violated": "FAIL"}.get(b.status, "NOT MEASURED"),
            ]
            for b in r.budget
        ]
        out.append(("Budget", ["budget", "config", "measured", "result"], rows))
    return out


def _fits(header: list[str], rows: list[list[str]], width: int, gap: int, edge: int) -> bool:
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(header)]
    return sum(widths) + gap * (len(widths) - 1) + edge <= width


def print_rich(r: BenchResult, console: Console | None = None) -> None:
    print_tables(sections(r), console)


def print_tables(tables: list[Section], console: Console | None = None) -> None:
    """Tables that never cut a number: boxed when they fit the terminal, then without borders, then stacked
    (one line of "name value" pairs per row, wrapped between pairs) when even that is too wide. bench's report
    and eval's print through here."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    width = console.width
    for title, header, rows in tables:
        if not rows:
            continue
        show = any(header)
        heads = header if show else [""] * len(header)
        style_of = {"FAIL": "red", "PASS": "green"}
        boxed = _fits(heads, rows, width, 3, 4)
        if boxed or _fits(heads, rows, width, 1, 0):
            plain = not boxed
            table = Table(
                title=title,
                show_header=show,
                title_justify="left",
                box=None if plain else box.HEAVY_HEAD,
                padding=(0, 1) if not plain else (0, 0, 0, 1),
                show_edge=not plain,
            )
            for h in heads:
                table.add_column(
                    h,
                    justify="left" if not show or h in ("threads", "budget", "variant", "") else "right",
                    no_wrap=True,
                )
            for row in rows:
                table.add_row(*(Text(c) for c in row), style=style_of.get(row[-1]) if row else None)
            console.print(table)
            continue
        console.print(Text(title, style="italic"))
        for row in rows:
            pairs = [f"{h} {v}" for h, v in zip(heads, row)] if show else [": ".join(row)]
            lines, line = [], ""
            for pair in pairs:  # wrap between pairs, never inside one
                if line and len(line) + 3 + len(pair) > width:
                    lines.append(line)
                    line = "  " + pair
                else:
                    line = f"{line} | {pair}" if line else pair
            lines.append(line)
            for ln in lines:
                console.print(Text(ln, style=style_of.get(row[-1], "") if row else ""), soft_wrap=True)


def _md(cell: str) -> str:
    """A Markdown table cell: a | would end the cell, a newline the row."""
    return " ".join(str(cell).split()).replace("|", "\\|")


def markdown(r: BenchResult) -> str:
    return markdown_tables("edgert bench", sections(r))


def markdown_tables(heading: str, tables: list[Section], notes: list[str] | None = None) -> str:
    """A Markdown report: a heading, a section per non-empty table, and NOTES as a list after them."""
    lines = [f"# {_md(heading)}", ""]
    for title, header, rows in tables:
        if not rows:
            continue
        lines += [f"## {_md(title)}", ""]
        head = header if any(header) else ["", ""]
        lines += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += [f"- {_md(n)}" for n in notes or []]
    return "\n".join(lines) + ("\n" if notes else "")


def plot(r: BenchResult, path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib; run: pip install 'edgert[plot]'") from None
    fig, (ax_hist, ax_cdf, ax_thr) = plt.subplots(1, 3, figsize=(15, 4.2))
    batches: list[int] = []
    for c in r.configs:
        if c.latency is None or not c.latency.samples_ns:
            continue
        ms = np.sort(np.asarray(c.latency.samples_ns) / 1e6)
        label = f"threads {c.threads or 'auto'}"
        ax_hist.hist(ms, bins=60, alpha=0.6, label=label)
        ax_cdf.plot(ms, np.arange(1, len(ms) + 1) / len(ms), label=label)
        ax_thr.plot([x.batch for x in c.throughput], [x.items_per_s for x in c.throughput], marker="o", label=label)
        batches = sorted({x.batch for x in c.throughput} | set(batches))
    ax_hist.set(title="Latency histogram, batch 1", xlabel="ms", ylabel="calls")
    ax_cdf.set(title="Latency CDF, batch 1", xlabel="ms", ylabel="fraction of calls")
    ax_cdf.grid(alpha=0.3)
    ax_thr.set(title="Throughput vs batch size", xlabel="batch size", ylabel="items/s", xscale="log")
    ax_thr.grid(alpha=0.3)
    if batches:  # the batch sizes that ran, not the log axis' decades
        ax_thr.set_xticks(batches, [str(b) for b in batches])
        ax_thr.minorticks_off()
    for ax in (ax_hist, ax_cdf, ax_thr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    t = r.target
    device = r.machine.board or r.machine.cpu
    name, variant = (Path(t.path).name, t.variant) if t else ("?", None)
    fig.suptitle(f"edgert bench: {name} ({variant}) on {device}")
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """FIG written to PATH atomically (a temporary file, then a rename), never through a symlink or device."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safepath.check_output(path, error=EdgertError, what="--plot")
    tmp = path.with_name(f".{path.name}.{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    plt.close(fig)
    return path
