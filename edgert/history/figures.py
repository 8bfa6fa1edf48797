"""``edgert history plot`` and ``report``: a series drawn with its rounds and its steps, and one static HTML file
with a figure per device x model x metric (the images inline, no script, no server: it opens from a USB stick).
matplotlib (the ``plot`` extra) is imported here only."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import safepath
from ..errors import EdgertError, MissingDependencyError
from .records import Run
from .trend import Series, Step, noise, series, series_of, steps


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("plots need matplotlib; run: pip install 'edgert[plot]'") from None
    return plt


def figure(s: Series, found: Sequence[Step], fmt: str = "png") -> bytes:
    """The series' values in run order, each run's rounds as faint dots, and a line at each step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    x = list(range(1, len(s.runs) + 1))
    for i, rounds in enumerate(s.rounds(), 1):
        if rounds:
            ax.plot([i] * len(rounds), rounds, ".", color="tab:gray", alpha=0.35, markersize=4)
    ax.plot(x, s.values, "o-", color="tab:blue", markersize=4, label="run (median of its rounds)")
    for st in found:
        ax.axvline(st.index + 0.5, color="tab:red" if st.worse else "tab:green", alpha=0.7)
        ax.annotate(f"{st.ratio:.2f}x", (st.index + 0.6, max(s.values)), color="tab:red" if st.worse else "tab:green")
    better = "higher" if s.higher_is_better else "lower"
    ax.set(xlabel="run", ylabel=f"{s.metric} ({s.unit}, {better} is better)" if s.unit else s.metric)
    ax.set_title(s.label, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _write(path: Path, data: bytes | str, what: str) -> Path:
    safepath.write_output(path, data, error=EdgertError, what=what)
    return path


def plot(runs: Sequence[Run], metric: str, path: Path, threshold: float) -> list[Path]:
    """One image per series of METRIC: PATH itself for one, PATH's stem with a number for several."""
    found = series_of(runs, metric)
    out = []
    for i, s in enumerate(found, 1):
        target = path if len(found) == 1 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        out.append(_write(target, figure(s, steps(s, threshold), path.suffix.lstrip(".") or "png"), "plot"))
    return out


def report(runs: Sequence[Run], path: Path, threshold: float, metrics: Sequence[str] | None = None) -> int:
    """One HTML file: per series of each metric (all metrics with rounds when none are named), its figure and
    its steps. Returns the number of figures."""
    names = list(metrics or sorted({m.name for r in runs for m in r.measures if m.rounds}))
    sections, count = [], 0
    for name in names:
        for s in series(runs, name):
            found = steps(s, threshold)
            png = base64.b64encode(figure(s, found)).decode("ascii")
            rows = "".join(
                f"<tr><td>{st.index + 1}</td><td>{html.escape(s.runs[st.index].created)}</td>"
                f"<td>{st.before:.4g} &rarr; {st.after:.4g} {html.escape(s.unit)}</td><td>{st.ratio:.2f}x "
                f"{'worse' if st.worse else 'better'}</td><td>{st.p_value:.2g}</td></tr>"
                for st in found
            )
            table = (
                f"<table><tr><th>run</th><th>date</th><th>level</th><th>change</th><th>p</th></tr>{rows}</table>"
                if found
                else "<p>No step.</p>"
            )
            sections.append(
                f"<section><h2>{html.escape(s.label)}</h2><p>{len(s.runs)} runs; one run varies by about "
                f"{noise(s.values, s.rounds()) * 100:.1f}%.</p>"
                f'<img alt="{html.escape(s.label)}" src="data:image/png;base64,{png}">{table}</section>'
            )
            count += 1
    if not count:
        raise EdgertError("no series to report: the store has no run with rounds (edgert bench --record adds some)")
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>edgert history</title>'
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        f"<h1>edgert history</h1><p>{len(runs)} runs, {count} series, steps beyond {threshold:.0%}; made {made}.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
    _write(path, page, "report")
    return count
