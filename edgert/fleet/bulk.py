"""Bulk inference on the fleet: embed or classify a large set of texts with a bundle, on every device at once.

The texts are cut into shards of consecutive lines. Each shard is a task any device may take; the device loads the
bundle once per worker process and keeps it for every later shard. A worker that dies has its shards run again on
another device (the scheduler's retries); each shard is written once, as ``part-NNNNN.npy`` with its rows in input
order, beside ``index.json`` (the bundle's id, the variant, each part's rows and sha256). Shards already written
by an earlier run with the same bundle, variant, shard size and input are kept, so a run that stopped goes on where
it stopped. Only a window of shards is in flight, so the coordinator's memory does not grow with the input.

With a selection of devices, each shard is restricted to the selected devices' workers as they are when it is
submitted; a shard whose device dies runs again on another selected one. When none of the selected devices has been
in the cluster for GRACE seconds, the run stops with an error that says how many parts are written (a rerun keeps
them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cluster import joined
from .device_side import FLEET_RESOURCE, FleetError, classify_shard, embed_shard

INDEX = "index.json"


def knee(result: Any, share: float = 0.95) -> int | None:
    """The smallest batch whose throughput (the median of its rounds) is within SHARE of the best one a bench
    result measured, on the thread setting with the best throughput: larger batches cost memory and latency for
    little more."""
    best: list[tuple[int, float]] = []
    for c in result.configs:
        rows = [(t.batch, t.items_per_s) for t in c.throughput]
        if rows and (not best or max(v for _, v in rows) > max(v for _, v in best)):
            best = rows
    if not best:
        return None
    top = max(v for _, v in best)
    return min(b for b, v in best if v >= share * top)


def shards(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    shard: list[str] = []
    for line in lines:
        shard.append(line)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


@dataclass(frozen=True)
class BulkResult:
    rows: int
    parts: int
    kept: int  # parts an earlier run had already written
    out: Path


def _npy_bytes(array: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def run_bulk(
    client: Any,
    bid: str,
    texts: Iterable[str],
    out: Path,
    *,
    task: str = "embed",
    variant: str | None = None,
    batch_size: int = 32,
    shard_size: int = 2048,
    input_sha256: str = "",
    window: int | None = None,
    devices: list[str] | None = None,
    grace: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> BulkResult:
    """Runs TASK ("embed" or "classify") over TEXTS on DEVICES (names; all the fleet's devices when None); writes
    the parts and index under OUT."""
    from distributed import as_completed, wait

    fn = {"embed": embed_shard, "classify": classify_shard}.get(task)
    if fn is None:
        raise FleetError(f"bulk task {task!r}: give embed or classify")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"bundle": bid, "variant": variant, "task": task, "shard_size": shard_size, "input": input_sha256}
    index_path = out / INDEX
    kept: dict[int, dict[str, Any]] = {}
    if index_path.is_file():
        old = json.loads(index_path.read_text())
        if {k: old.get(k) for k in meta} == meta:
            kept = {int(p["part"]): p for p in old.get("parts", []) if _intact(out, p)}
    everyone = sorted(joined(client))
    chosen = sorted(devices) if devices else everyone
    restrict = chosen != everyone  # the whole fleet needs no restriction: any device may take any shard
    window = window or 2 * max(1, len(chosen))
    parts: dict[int, dict[str, Any]] = dict(kept)
    rows = sum(int(p["rows"]) for p in kept.values())
    pending = as_completed()
    futures: dict[Any, tuple[int, int]] = {}

    def present() -> list[str]:
        """The addresses of the devices that may take a shard now: the selected ones (any device, for the whole
        fleet)."""
        return [a for n, a in joined(client).items() if not restrict or n in chosen]

    def gone() -> FleetError:
        client.cancel(list(futures))
        return FleetError(
            f"no selected device has been in the cluster for {grace:g} s ({', '.join(chosen)}); "
            f"{len(parts)} part(s) are written under {out} and a rerun keeps them"
        )

    def where() -> dict[str, Any]:
        """The restriction of the next shard; waits up to GRACE for a selected device, so a shard never goes to a
        device that was not selected while the selected ones restart."""
        if not restrict:
            return {}
        end = time.monotonic() + grace
        while not (addresses := present()):
            if time.monotonic() >= end:
                raise gone()
            time.sleep(0.5)
        return {"workers": addresses, "allow_other_workers": False}

    def next_done() -> Any:
        """The next finished shard; FleetError when no selected device has been there for GRACE seconds."""
        gone_since: float | None = None
        while True:
            try:
                wait(list(futures), timeout=min(5.0, grace), return_when="FIRST_COMPLETED")
                return next(pending)
            except TimeoutError:
                pass
            if present():
                gone_since = None
                continue
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since >= grace:
                raise gone()

    def collect(f: Any) -> None:
        nonlocal rows
        part, n = futures.pop(f)
        array = f.result()
        if len(array) != n:
            raise FleetError(f"part {part}: the device returned {len(array)} rows for {n} texts")
        data = _npy_bytes(array)
        name = f"part-{part:05d}.npy"
        tmp = out / f".{name}.partial"
        tmp.write_bytes(data)
        os.replace(tmp, out / name)
        holders = client.who_has(f).get(f.key) or ()
        names = {a: n for n, a in joined(client).items()}
        made_on = ",".join(sorted(names.get(a, a) for a in holders)) or "?"  # which device made it, for the record
        parts[part] = {"part": part, "file": name, "rows": n, "sha256": hashlib.sha256(data).hexdigest(),
                       "device": made_on}  # fmt: skip
        rows += n
        if progress is not None:
            progress(rows, len(parts))
        _write_index(index_path, meta, parts)

    for part, shard in enumerate(shards(texts, shard_size)):
        if part in kept:
            continue
        f = client.submit(fn, bid, variant, shard, batch_size, resources={FLEET_RESOURCE: 1}, pure=False,
                          retries=2, key=f"edgert-{task}-part-{part:05d}-{bid[:8]}-{os.urandom(4).hex()}",
                          **where())  # fmt: skip
        futures[f] = (part, len(shard))
        pending.add(f)
        while len(futures) >= window:
            collect(next_done())
    while futures:
        collect(next_done())
    _write_index(index_path, meta, parts)
    return BulkResult(rows=rows, parts=len(parts), kept=len(kept), out=out)


def _intact(out: Path, part: dict[str, Any]) -> bool:
    path = out / str(part.get("file", ""))
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == part.get("sha256")


def _write_index(path: Path, meta: dict[str, Any], parts: dict[int, dict[str, Any]]) -> None:
    body = {**meta, "rows": sum(int(p["rows"]) for p in parts.values()), "parts": [parts[k] for k in sorted(parts)]}
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)


def read_parts(out: Path) -> Any:
    """Every part under OUT, in order, as one array (for checking a run, or a set that fits in memory)."""
    import numpy as np

    index = json.loads((out / INDEX).read_text())
    return np.concatenate([np.load(out / p["file"], allow_pickle=False) for p in index["parts"]])
