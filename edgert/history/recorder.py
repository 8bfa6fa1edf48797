"""``--record`` (or ``EDGERT_RECORD=1``): after a run has written its own output, its result goes into the store.
Recording never costs the run: a store that is locked, full, read-only or newer than this edgert gives one line
on stderr and the command keeps its exit code."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..errors import RecordError
from .store import Store, StoreError, check_url, default_url


def wanted(flag: bool) -> bool:
    return flag or os.environ.get("EDGERT_RECORD", "") not in ("", "0")


def url_for(given: str | None) -> str:
    """The store a run will record into, checked before any measuring (a bad URL is a usage error)."""
    return check_url(given or default_url())


def record(result: Any, url: str, say: Callable[[str], None]) -> int:
    """Writes RESULT (a bench or eval result, or runs already made) as runs; returns how many were added (0 when
    it could not)."""
    from ..bench.records import BenchResult
    from .records import Run, from_bench, from_eval

    try:
        if isinstance(result, list) and all(isinstance(r, Run) for r in result):
            runs = result
        else:
            runs = from_bench(result) if isinstance(result, BenchResult) else from_eval(result)
        with Store(url) as store:
            added = store.add(runs)
            where = store.where
    except (StoreError, RecordError) as exc:
        say(f"edgert: warning: not recorded in the history: {exc}")
        return 0
    say(f"history: recorded {added} run(s) in {where}")
    return added
