"""``edgert tune --sustained``: the configurations that meet the budget in bench's rounds, best first, each held
under load (edgert.sustained) until one also meets the budget's sustained limits at the end of its run. A board
that throttles after two minutes loses to one that does not, even when it won the short rounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..bench.budget import Limit, evaluate
from ..bench.records import Summary
from ..errors import EdgertError


def hold(
    ranked: list[Any], limits: list[Limit], run_one: Callable[[Any], Summary], echo: Callable[[str], None]
) -> tuple[list[Any], Any | None]:
    """RANKED trials, best first, held one after another by RUN_ONE until one meets LIMITS (every one when there
    are none: then the first is chosen). Returns the trials with their sustained figures and verdicts, and the
    chosen one (None when every one misses)."""
    out = []
    chosen = None
    for t in ranked:
        if chosen is not None:
            out.append(t)
            continue
        s = run_one(t)
        rows = evaluate(limits, {t.label: s}) if limits else []
        failed = tuple(r.budget for r in rows if not r.passed)
        t = replace(t, p95_sustained=s.get("p95@sustained"), throughput_sustained=s.get("throughput@sustained"),
                    passed=t.passed is not False and not failed, failed=(*t.failed, *failed))  # fmt: skip
        echo(f"  held   {t.label}: p95 {_ms(t.p95_sustained)} at the end" + (f", misses {', '.join(failed)}"
                                                                               if failed else ""))  # fmt: skip
        out.append(t)
        if not failed:
            chosen = t
    return out, chosen


def sustained_run(bundle: Path, options: Any, sensors: Any) -> Callable[[Any], Summary]:
    """One trial held for options.sustained seconds at full duty, as ``bench --sustained`` would hold it."""
    from ..bench.config import BenchConfig
    from ..bench.runner import _Quiet
    from ..sustained.options import SustainedOptions
    from ..sustained.run import run

    def one(t: Any) -> Summary:
        given: dict[str, Any] = {"input_file": Path(options.input_file)} if options.input_file else {}
        config = BenchConfig(target=bundle, variant=t.variant, threads=(t.threads,), seq_len=options.seq_len,
                             memory=t.memory, **given)  # fmt: skip
        result = run(config, SustainedOptions(sustained=options.sustained), _Quiet(), sensors=sensors)
        if not result.complete:
            raise KeyboardInterrupt
        return result.summary()

    return one


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} ms"


__all__ = ["hold", "sustained_run", "EdgertError"]
