"""What `edgert bench` shows: rich tables on the terminal, Markdown, and an optional PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError
from .records import Stats


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def sections(r: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each table; shared by the terminal and Markdown renderers."""
    out = []
    t = r.get("target") or {}
    m = r.get("machine") or {}
    s = r.get("summary") or {}
    info = [
        ["model", f"{t.get('path', '-')} ({t.get('variant') or '-'}, {t.get('task', '-')})"],
        ["input", t.get("description", "-")],
        [
            "device",
            f"{m.get('cpu')} | {m.get('cores')} cores | {m.get('board') or m.get('machine')} | "
            f"governor {m.get('governor') or '-'}",
        ],
        ["software", f"onnxruntime {m.get('onnxruntime')} | kernels {m.get('kernels')} | {m.get('os')}"],
    ]
    if not r.get("complete"):
        info.append(["status", f"INCOMPLETE: interrupted during {r.get('interrupted_in')}"])
    out.append(("Run", ["", ""], info))
    phases = []
    for c in r.get("configs", []):
        label = str(c["threads"] or "auto")
        warm = (c.get("warmup") or {}).get("stats_ms") or {}
        phases.append([label, _f(c.get("init_ms"), "{:.1f}"), _f(c.get("first_ms")), _f(warm.get("p50"))])
    cold = r.get("cold_start") or {}
    out.append(("Phases (ms)", ["threads", "init", "first inference", "warmup p50"], phases))
    lat = []
    for c in r.get("configs", []):
        samples = (c.get("latency") or {}).get("samples") or []
        if samples:
            st = Stats.of(samples)
            lat.append(
                [str(c["threads"] or "auto"), str(st.count)]
                + [f"{getattr(st, k):.3f}" for k in ("p50", "p90", "p95", "p99", "max", "mean", "std")]
                + [f"{st.cv * 100:.1f}%"]
            )
    out.append(
        (
            "Latency, batch 1, SingleStream (ms)",
            ["threads", "n", "p50", "p90", "p95", "p99", "max", "mean", "std", "cv"],
            lat,
        )
    )
    thr = [
        [
            str(c["threads"] or "auto"),
            str(x["batch"]),
            f"{x['items_per_s']:.1f}",
            f"{x['batch'] * 1e3 / x['items_per_s']:.2f}",
        ]
        for c in r.get("configs", [])
        for x in c.get("throughput", [])
    ]
    out.append(("Throughput, Offline", ["threads", "batch", "items/s", "ms per batch"], thr))
    mem = r.get("memory") or {}
    res = [
        [
            "cold start (fresh process to first result)",
            f"{_f(s.get('cold'), '{:.0f}')} ms (median of {len(cold.get('runs', []))})",
        ],
        ["peak RSS (cold-start process)", f"{_f(s.get('rss'), '{:.1f}')} MiB"],
        ["peak RSS (this bench process)", f"{_f(mem.get('peak_rss_mib'), '{:.1f}')} MiB"],
        ["RSS added by loading", f"{_f(mem.get('load_rss_mib'), '{:.1f}')} MiB"],
        ["RSS added by running (arena on)", f"{_f(mem.get('run_rss_mib'), '{:.1f}')} MiB"],
        ["model file", f"{_f(mem.get('model_file_mib'), '{:.1f}')} MiB"],
    ]
    e = r.get("energy")
    if e:
        tag = " (ESTIMATED)" if e.get("estimated") else ""
        res.append(["energy per inference" + tag, f"{e['mj_per_inference']:.3f} mJ over {e['inferences']} runs"])
        res.append(["energy source", e["source"]])
    out.append(("Cold start, memory, energy", ["", ""], res))
    if r.get("budget"):
        rows = [
            [b["budget"], _f(b["measured"], "{:.3f}") + f" {b['unit']}", "PASS" if b["passed"] else "FAIL"]
            for b in r["budget"]
        ]
        out.append(("Budget", ["budget", "measured", "result"], rows))
    return out


def print_rich(r: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for title, header, rows in sections(r):
        if not rows:
            continue
        show = any(header)
        table = Table(title=title, show_header=show, title_justify="left")
        for h in header:
            table.add_column(h, justify="left" if not show or h in ("threads", "budget", "") else "right")
        for row in rows:
            style = "red" if row and row[-1] == "FAIL" else ("green" if row and row[-1] == "PASS" else None)
            table.add_row(*row, style=style)
        console.print(table)


def markdown(r: dict[str, Any]) -> str:
    lines = ["# edgert bench", ""]
    for title, header, rows in sections(r):
        if not rows:
            continue
        lines += [f"## {title}", ""]
        head = header if any(header) else ["", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib; run: pip install 'edgert[plot]'") from None
    fig, (ax_hist, ax_cdf, ax_thr) = plt.subplots(1, 3, figsize=(15, 4.2))
    for c in r.get("configs", []):
        samples = (c.get("latency") or {}).get("samples") or []
        if not samples:
            continue
        ms = np.sort(np.asarray(samples) / 1e6)
        label = f"threads {c['threads'] or 'auto'}"
        ax_hist.hist(ms, bins=60, alpha=0.6, label=label)
        ax_cdf.plot(ms, np.arange(1, len(ms) + 1) / len(ms), label=label)
        tp = c.get("throughput") or []
        ax_thr.plot([x["batch"] for x in tp], [x["items_per_s"] for x in tp], marker="o", label=label)
    ax_hist.set(title="Latency histogram, batch 1", xlabel="ms", ylabel="calls")
    ax_cdf.set(title="Latency CDF, batch 1", xlabel="ms", ylabel="fraction of calls")
    ax_cdf.grid(alpha=0.3)
    ax_thr.set(title="Throughput vs batch size", xlabel="batch size", ylabel="items/s", xscale="log")
    ax_thr.grid(alpha=0.3)
    for ax in (ax_hist, ax_cdf, ax_thr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    t = r.get("target") or {}
    fig.suptitle(f"edgert bench: {Path(t.get('path', '?')).name} ({t.get('variant')}) on {r['machine'].get('cpu')}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
