"""The coordinator's view of the fleet: the cluster it connects to, and the devices in it.

A device is a Dask worker started by ``edgert fleet join ADDRESS --name NAME``: one thread (a bench must be alone
on its device), the resource ``edgert-device`` and the device's own ``edgert-device:NAME``. Work meant for one
device asks for its own resource, so a worker that dies and is restarted by its nanny gets the work again, and
work never runs on another device by mistake. Plain Dask workers in the same cluster are not devices.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import require
from .device_side import FLEET_RESOURCE, FleetError, device_resource, probe

#: Where the coordinator looks for the cluster when no --cluster is given.
ENV = "EDGERT_FLEET"
DEFAULT_PORT = 8786
_ADDRESS = re.compile(r"^(?:(tcp|tls)://)?([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?$")


def address_of(given: str | None) -> str:
    """The scheduler address to connect to: --cluster, else EDGERT_FLEET; host[:port] gets tcp:// and the port."""
    text = given or os.environ.get(ENV)
    if not text:
        raise FleetError(f"no cluster given: pass --cluster tcp://HOST:{DEFAULT_PORT} or set {ENV}")
    m = _ADDRESS.match(text.strip())
    if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise FleetError(f"--cluster {text!r}: not a cluster address (give tcp://HOST:PORT, e.g. tcp://pi5.local:8786)")
    scheme, host, port = m.group(1) or "tcp", m.group(2), m.group(3) or str(DEFAULT_PORT)
    return f"{scheme}://{host}:{port}"


def connect(address: str, timeout: float = 10.0) -> Any:
    """A Dask client of the cluster at ADDRESS, or FleetError in one line when it cannot be reached."""
    require("distributed", "fleet")
    import logging

    from distributed import Client

    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise FleetError(f"cannot reach the cluster at {address} ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Device:
    name: str
    address: str
    facts: dict[str, Any] = field(default_factory=dict)  # device_side.probe()

    @property
    def resource(self) -> str:
        return device_resource(self.name)

    @property
    def cpu(self) -> str:
        return str(self.facts.get("device", {}).get("cpu", "?"))


def joined(client: Any) -> dict[str, str]:
    """The devices in the cluster now, name -> worker address (plain Dask workers are left out)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {str(w["name"]): addr for addr, w in workers.items() if FLEET_RESOURCE in (w.get("resources") or {})}


def select(client: Any, patterns: str | None) -> list[str]:
    """The names of the devices that PATTERNS (comma-separated shell patterns: pi5,*jetson*) select; all without
    patterns. FleetError when none is selected."""
    names = sorted(joined(client))
    if not names:
        raise FleetError("the cluster has no devices: start one with `edgert fleet join ADDRESS --name NAME`")
    if not patterns:
        return names
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in wanted)]
    if not chosen:
        raise FleetError(f"--devices {patterns}: no device matches (the cluster has {', '.join(names)})")
    return chosen


def describe(client: Any, names: list[str], command: str | None, timeout: float = 60.0) -> list[Device]:
    """Each device's facts, asked on the device itself. With COMMAND, a device without the extra it needs is a
    FleetError naming it, before any work is shipped."""
    where = joined(client)
    futures = [client.submit(probe, command, resources={device_resource(n): 1}, pure=False) for n in names]
    from distributed import wait

    try:
        wait(futures, timeout=timeout)
    except TimeoutError:
        silent = [n for n, f in zip(names, futures, strict=True) if not f.done()]
        client.cancel(futures)
        raise FleetError(f"no answer within {timeout:g} s from {', '.join(silent)}") from None
    try:
        facts = client.gather(futures, errors="raise") if futures else []
    except Exception as exc:  # noqa: BLE001 - a device that cannot even describe itself ends the command
        raise FleetError(f"a device did not answer its probe: {type(exc).__name__}: {exc}") from None
    devices = [Device(n, where.get(n, "?"), f) for n, f in zip(names, facts, strict=True)]
    lacking = [d for d in devices if d.facts.get("missing")]
    if command and lacking:
        rows = "; ".join(f"{d.name} lacks {', '.join(d.facts['missing'])}" for d in lacking)
        extra = lacking[0].facts.get("extra") or "bench"
        raise FleetError(f"fleet {command} needs edgert[{extra}] on every device: {rows}")
    return devices
