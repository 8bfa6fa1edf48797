"""``edgert eval --plot``: the headline metric, with its interval, against p50 and against energy per item, one
point per variant, the Pareto front joined and marked. matplotlib (the ``plot`` extra) is imported here only."""

from __future__ import annotations

import io
from pathlib import Path

from .. import safepath
from ..errors import EdgertError, MissingDependencyError
from .records import LOWER_IS_BETTER, EvalResult, Evaluated, Metric


def _points(result: EvalResult, cost: str) -> list[tuple[Evaluated, float, Metric]]:
    """(variant, its COST figure, its headline metric) for the variants that have both."""
    out = []
    for r in result.results:
        value = getattr(r.cost, cost, None) if r.cost is not None else None
        m = r.metric(result.headline)
        if value is not None and m is not None:
            out.append((r, float(value), m))
    return out


def plot(result: EvalResult, path: Path) -> Path:
    """Writes the figure to PATH (any suffix matplotlib saves) and returns it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("--plot needs matplotlib; run: pip install 'edgert[plot]'") from None
    panels = [(cost, unit) for cost, unit in (("p50", "p50 latency, ms"), ("energy", "energy per item, mJ"))]
    panels = [(c, u) for c, u in panels if _points(result, c)]
    if not panels:
        raise EdgertError("--plot: no variant has cost figures to plot against")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    estimated = any(r.cost is not None and r.cost.energy_meter == "estimate" for r in result.results)
    for ax, (cost, unit) in zip(axes[0], panels):
        points = _points(result, cost)
        for r, x, m in points:
            on = r.label in result.front
            ax.errorbar(
                x, m.value, yerr=[[m.value - m.low], [m.high - m.value]], fmt="o" if on else "s",
                color="tab:red" if on else "tab:gray", capsize=3,
            )  # fmt: skip
            ax.annotate(r.label, (x, m.value), textcoords="offset points", xytext=(6, 4), fontsize=8)
        front = sorted((x, m.value) for r, x, m in points if r.label in result.front)
        if cost == "p50" and len(front) > 1:
            ax.plot([f[0] for f in front], [f[1] for f in front], color="tab:red", alpha=0.5, label="Pareto front")
            ax.legend()
        better = "lower" if result.headline in LOWER_IS_BETTER else "higher"
        label = unit + (" (ESTIMATED)" if cost == "energy" and estimated else "")
        ax.set(xlabel=label, ylabel=f"{result.headline} ({better} is better)")
        ax.grid(alpha=0.3)
    d = result.dataset
    fig.suptitle(
        f"edgert eval: {d.name} ({d.items:,} {d.kind} items), {result.level:.0%} intervals, on {result.machine.cpu}"
    )
    fig.tight_layout()
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    plt.close(fig)
    safepath.write_output(path, buffer.getvalue(), error=EdgertError, what="--plot")
    return path
