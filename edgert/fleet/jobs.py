"""The coordinator's side of a fleet command: ship the bundle (and any data the command names) to the devices that
lack it, run the command on each device, and gather one outcome per device.

Every outcome is accounted for: a device's command either returns (with its exit code and result), fails (its worker
died more often than the scheduler allows, or the command raised), or its device leaves the cluster and does not come
back within the grace period. A worker killed mid-run is restarted by its nanny and the scheduler runs the job again
on the same device (work for a device asks for that device's resource, so it never runs elsewhere); the attempt
count says so. Each device has exactly one future, so nothing is counted twice.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle, sha256_file
from .cluster import Device, joined
from .device_side import (
    DATA_TOKEN,
    FleetError,
    holds,
    holds_data,
    listing_id,
    receive,
    run_command,
    seal,
    seal_data,
)

CHUNK = 8 * 2**20  # bytes per shipped message: big enough to be fast, small enough for a Pi's memory


def bundle_id(root: Path) -> str:
    """A bundle's identity on the wire: the sha256 of its edgert.json, which lists every other file's sha256."""
    return hashlib.sha256((root / "edgert.json").read_bytes()).hexdigest()


@dataclass(frozen=True)
class Shipped:
    device: str
    sent_bytes: int  # 0 when the device already held it
    error: str | None = None  # the device refused it (verification failed on arrival)


def _send(client: Any, device: Device, kind: str, payload: str, root: Path, names: list[str]) -> list[Any]:
    futures = []
    for name in names:
        with (root / name).open("rb") as f:
            offset = 0
            while True:
                chunk = f.read(CHUNK)
                if not chunk and offset:
                    break
                futures.append(
                    client.submit(receive, kind, payload, name, offset, chunk,
                                  resources={device.resource: 1}, pure=False)
                )  # fmt: skip
                offset += len(chunk)
                if not chunk:
                    break
    return futures


def ship(client: Any, bundle: Path, devices: list[Device], say: Callable[[str], None]) -> dict[str, Shipped]:
    """Sends BUNDLE to each device that does not hold it, verified on arrival there. The bundle is verified here
    first: a bundle whose files do not match its own manifest is never sent."""
    try:
        b = Bundle.open(bundle, verify=True)
    except FleetError:
        raise
    bid = bundle_id(bundle)
    names = ["edgert.json", *sorted(b.files)]
    size = sum((bundle / n).stat().st_size for n in names)
    held = client.gather([client.submit(holds, bid, resources={d.resource: 1}, pure=False) for d in devices])
    out: dict[str, Shipped] = {}
    seals = {}
    for d, has in zip(devices, held, strict=True):
        if has:
            out[d.name] = Shipped(d.name, 0)
            say(f"{d.name}: holds {bundle.name} ({bid[:12]}) already")
            continue
        say(f"{d.name}: sending {bundle.name} ({size / 2**20:.1f} MiB)")
        parts = _send(client, d, "bundles", bid, bundle, names)
        seals[d.name] = client.submit(seal, bid, *parts, resources={d.resource: 1}, pure=False)
    for name, f in seals.items():
        try:
            f.result()
            out[name] = Shipped(name, size)
        except FleetError as exc:
            out[name] = Shipped(name, size, str(exc))
            say(f"{name}: refused {bundle.name}: {exc}")
    return out


def ship_data(client: Any, path: Path, devices: list[Device], say: Callable[[str], None]) -> str:
    """Sends a file or folder the command reads (eval's --data, check's --file) to every device; returns the
    argument that names the device's verified copy."""
    if path.is_dir():
        root, names = path, sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    else:
        root, names = path.parent, [path.name]
    listing = [(n, (root / n).stat().st_size, sha256_file(root / n)) for n in names]
    did = listing_id(listing)
    held = client.gather([client.submit(holds_data, did, resources={d.resource: 1}, pure=False) for d in devices])
    seals = []
    for d, has in zip(devices, held, strict=True):
        if not has:
            say(f"{d.name}: sending {path.name} ({sum(x[1] for x in listing) / 2**20:.1f} MiB)")
            parts = _send(client, d, "data", did, root, names)
            seals.append(client.submit(seal_data, did, listing, *parts, resources={d.resource: 1}, pure=False))
    client.gather(seals)
    return f"{DATA_TOKEN}{did}" if path.is_dir() else f"{DATA_TOKEN}{did}/{path.name}"


@dataclass
class Outcome:
    device: str
    status: str  # "ok", "budget missed", "failed", "left", "refused"
    code: int | None = None  # the command's exit code on the device
    result: dict[str, Any] | None = None  # its JSON result (bench, eval)
    stdout: str = ""
    stderr: str = ""
    attempt: int = 0  # 2 or more: the job ran again after its worker died
    seconds: float = 0.0
    message: str = ""


def _status(code: int) -> str:
    return {0: "ok", 1: "budget missed"}.get(code, "failed")


def run(
    client: Any,
    devices: list[Device],
    bid: str,
    command: str,
    args: list[str],
    say: Callable[[str], None],
    *,
    grace: float = 60.0,
) -> list[Outcome]:
    """Runs ``edgert COMMAND <bundle> ARGS`` on every device at once; one Outcome per device, in DEVICES' order.
    A device absent from the cluster for GRACE seconds is reported as having left, and its job is cancelled."""
    from distributed import wait

    job = uuid.uuid4().hex[:12]
    futures = {
        d.name: client.submit(run_command, f"{job}-{d.name}", bid, command, args, d.name,
                              resources={d.resource: 1}, pure=False, key=f"edgert-{command}-{d.name}-{job}")
        for d in devices
    }  # fmt: skip
    outcomes: dict[str, Outcome] = {}
    absent: dict[str, float] = {}
    try:
        while len(outcomes) < len(futures):
            pending = [f for n, f in futures.items() if n not in outcomes]
            try:
                wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            present = joined(client)
            now = time.monotonic()
            for name, f in futures.items():
                if name in outcomes:
                    continue
                if f.done():
                    outcomes[name] = _outcome(name, f)
                    o = outcomes[name]
                    again = f", attempt {o.attempt}" if o.attempt > 1 else ""
                    say(f"{name}: {o.status} (exit {o.code}, {o.seconds:.0f} s{again})" if o.code is not None
                        else f"{name}: {o.status}: {o.message}")  # fmt: skip
                elif name not in present:
                    since = absent.setdefault(name, now)
                    if now - since >= grace:
                        f.cancel()
                        why = f"gone from the cluster for {grace:g} s"
                        outcomes[name] = Outcome(name, "left", message=why)
                        say(f"{name}: left the cluster; its {command} is reported as not run")
                else:
                    absent.pop(name, None)
    except KeyboardInterrupt:
        for name, f in futures.items():
            if name not in outcomes:
                f.cancel()
                outcomes[name] = Outcome(name, "failed", message="interrupted before it finished")
        raise _Interrupted([outcomes[d.name] for d in devices]) from None
    return [outcomes[d.name] for d in devices]


class _Interrupted(KeyboardInterrupt):
    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("interrupted")
        self.outcomes = outcomes


def _outcome(name: str, f: Any) -> Outcome:
    if f.status == "error":
        exc = f.exception()
        kind = type(exc).__name__
        if kind == "KilledWorker":
            why = "its worker died on every attempt the scheduler allows"
        else:
            why = f"{kind}: {exc}"
        return Outcome(name, "failed", message=why)
    if f.cancelled():
        return Outcome(name, "failed", message="cancelled")
    r = f.result()
    return Outcome(
        name, _status(int(r["code"])), code=int(r["code"]), result=r["result"], stdout=r["stdout"],
        stderr=r["stderr"], attempt=int(r["attempt"]), seconds=float(r["seconds"]),
    )  # fmt: skip
