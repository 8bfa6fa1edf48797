"""A store's runs as JSON lines (``edgert.history/1``, one run a line), out and back in: how a device without
network hands its history over. Importing skips a run the store already has (by its uid) and a line that is not
a run, naming it with its line number; the rest are added in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import safepath
from ..errors import RecordError
from .records import Run
from .store import Filter, Store, StoreError

#: a history file is a few KB a run: one past this is not one
MAX_BYTES = 1 << 30


@dataclass
class Imported:
    added: int = 0
    known: int = 0
    bad: list[str] = field(default_factory=list)  # "file:line: why", the first 20
    bad_count: int = 0


def export_jsonl(store: Store, path: Path, where: Filter | None = None) -> int:
    runs = store.runs(where)
    body = "".join(r.line() + "\n" for r in runs)
    safepath.write_output(path, body, error=StoreError, what="history export")
    return len(runs)


def import_jsonl(store: Store, path: Path) -> Imported:
    text = safepath.read_bounded(path, MAX_BYTES, error=StoreError, what="history file")
    out = Imported()
    runs = []
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            runs.append(Run.from_json(json.loads(line), f"{path.name}:{number}"))
        except (json.JSONDecodeError, RecursionError, RecordError) as exc:
            out.bad_count += 1
            if len(out.bad) < 20:
                why = str(exc) if isinstance(exc, RecordError) else f"{path.name}:{number}: not JSON"
                out.bad.append(why)
    out.added = store.add(runs)
    out.known = len(runs) - out.added
    return out
