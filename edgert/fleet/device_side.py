"""What runs on a device of the fleet, inside its Dask worker: the probe, the bundle store, the command runner and the
bulk shard. The coordinator sends these functions by reference (module and name), so a device runs its own
installed edgert: nothing but data crosses the wire.

The bundle store is ``$EDGERT_HOME/fleet/bundles/<id>``, where the id is the sha256 of the bundle's ``edgert.json``
(which lists every other file's sha256): a bundle arrives in chunks into ``<id>.partial``, and only a copy whose
manifest has that sha256 and whose every file has its listed size and sha256 is moved into place. A device that
already holds the id is not sent it again; a copy that fails verification is refused and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import EdgertError

#: The modules each fleet command needs on the device, and the extra that brings them.
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "bench": (("psutil", "rich", "scipy", "cattrs"), "bench"),
    "tune": (("psutil", "rich", "scipy", "cattrs"), "bench"),
    "eval": (("rich", "scipy"), "bench"),
    "check": ((), ""),
    "embed": ((), ""),
    "classify": ((), ""),
}
#: The worker resource every device that joined through ``edgert fleet join`` holds, and each device's own label.
FLEET_RESOURCE = "edgert-device"


def device_resource(name: str) -> str:
    return f"edgert-device:{name}"


class FleetError(EdgertError):
    """A fleet operation that cannot go on: the message is the one line the user sees."""


def _store() -> Path:
    from ..paths import home

    return home() / "fleet"


def probe(command: str | None) -> dict[str, Any]:
    """What `edgert device` would print here, the device's fingerprint, and the modules COMMAND needs but lacks."""
    from .. import typed_json
    from .._version import __version__
    from ..device import describe
    from ..tuned import fingerprint

    modules, extra = NEEDS.get(command or "", ((), ""))
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return {
        "device": typed_json.dump(describe()),
        "fingerprint": fingerprint(),
        "edgert": __version__,
        "missing": missing,
        "extra": extra,
    }


def _root(kind: str) -> Path:
    if kind not in ("bundles", "data"):
        raise FleetError(f"unknown payload kind {kind!r}")
    return _store() / kind


def holds(bundle_id: str) -> bool:
    """Whether this device holds the bundle, verified on arrival (its manifest still has the sha256 of its id)."""
    manifest = _root("bundles") / bundle_id / "edgert.json"
    return manifest.is_file() and hashlib.sha256(manifest.read_bytes()).hexdigest() == bundle_id


def holds_data(data_id: str) -> bool:
    return (_root("data") / data_id / ".edgert-verified").is_file()


def receive(kind: str, payload_id: str, name: str, offset: int, data: bytes) -> int:
    """Writes one chunk of file NAME at OFFSET into the payload's staging folder; chunks may arrive in any order.
    NAME must be a plain relative path: a name that climbs out of the folder is refused."""
    from ..safepath import inside

    if not re.fullmatch(r"[0-9a-f]{64}", payload_id):
        raise FleetError(f"{payload_id!r} is not a payload id")
    staging = _root(kind) / f"{payload_id}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    path = inside(staging, name, error=FleetError, what="shipped file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    return len(data)


def _place(kind: str, payload_id: str, check: Any) -> str:
    root = _root(kind)
    staging = root / f"{payload_id}.partial"
    final = root / payload_id
    try:
        check(staging)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return str(final)


def seal(bundle_id: str, *sent: int) -> str:
    """Verifies the staged bundle against its id and its manifest's hashes, then moves it into place. A bundle that
    fails is removed and refused (FleetError), never kept. SENT (the chunks' sizes) only orders it after them."""
    from ..bundle import Bundle

    def check(staging: Path) -> None:
        manifest = staging / "edgert.json"
        if not manifest.is_file():
            raise FleetError("the bundle arrived without its edgert.json")
        got = hashlib.sha256(manifest.read_bytes()).hexdigest()
        if got != bundle_id:
            raise FleetError(f"edgert.json arrived with sha256 {got[:12]}, not the {bundle_id[:12]} that was sent")
        try:
            bundle = Bundle.open(staging, verify=True)
        except EdgertError as exc:
            raise FleetError(f"the bundle failed verification on arrival: {exc}") from None
        arrived = {str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()}
        extra = arrived - {"edgert.json", *bundle.files}
        if extra:
            raise FleetError(f"the bundle arrived with files its manifest does not list: {', '.join(sorted(extra))}")

    return _place("bundles", bundle_id, check)


def seal_data(data_id: str, listing: list[tuple[str, int, str]], *sent: int) -> str:
    """Verifies staged data files against LISTING (name, bytes, sha256), whose own sha256 is DATA_ID."""
    from ..bundle import sha256_file

    def check(staging: Path) -> None:
        if listing_id(listing) != data_id:
            raise FleetError("the data's listing does not match its id")
        for name, size, sha in listing:
            path = staging / name
            if not path.is_file() or path.stat().st_size != size or sha256_file(path) != sha:
                raise FleetError(f"{name} failed verification on arrival (size or sha256 differs from what was sent)")
        (staging / ".edgert-verified").write_text(data_id)

    if not listing:  # an empty folder arrives as no chunks at all
        (_root("data") / f"{data_id}.partial").mkdir(parents=True, exist_ok=True)
    return _place("data", data_id, check)


def listing_id(listing: list[tuple[str, int, str]]) -> str:
    text = "\n".join(f"{n}\t{b}\t{h}" for n, b, h in sorted(listing))
    return hashlib.sha256(text.encode()).hexdigest()


def bundle_path(bundle_id: str) -> Path:
    if not holds(bundle_id):
        raise FleetError(f"this device does not hold bundle {bundle_id[:12]} (it was not shipped, or was removed)")
    return _root("bundles") / bundle_id


def data_path(data_id: str) -> Path:
    if not holds_data(data_id):
        raise FleetError(f"this device does not hold data {data_id[:12]} (it was not shipped)")
    return _root("data") / data_id


def _attempt(job: str) -> int:
    """Counts the attempts at one job on this device (a job retried after its worker died runs here again)."""
    runs = _store() / "attempts"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / job
    n = int(path.read_text() or 0) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The command dies with its worker (Linux): a worker killed mid-run leaves no bench still running."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


#: An argument naming shipped data: ``DATA_TOKEN<id>`` is replaced by the device's verified copy.
DATA_TOKEN = "@edgert-data:"


def _resolve(arg: str) -> str:
    if not arg.startswith(DATA_TOKEN):
        return arg
    data_id, _, inner = arg[len(DATA_TOKEN) :].partition("/")
    return str(data_path(data_id) / inner) if inner else str(data_path(data_id))


def run_command(job: str, bundle_id: str, command: str, args: list[str], device: str) -> dict[str, Any]:
    """Runs ``edgert COMMAND <bundle> ARGS`` here, as the local command runs, and returns its exit code, its
    output and its JSON result (bench and eval write one)."""
    attempt = _attempt(job)
    bundle = bundle_path(bundle_id)
    args = [_resolve(a) for a in args]
    with tempfile.TemporaryDirectory(prefix="edgert-fleet-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "edgert", command, str(bundle), *args]
        if command in ("bench", "eval"):
            argv += ["--json", str(out)]
        env = {**os.environ, "EDGERT_DEVICE": device, "PYTHONUNBUFFERED": "1"}
        env.pop("EDGERT_RECORD", None)  # the coordinator records the fleet's results in its own store
        started = time.time()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip
        stdout, stderr = proc.communicate()
        result = json.loads(out.read_text()) if out.is_file() else None
    return {
        "device": device,
        "code": proc.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "result": result,
        "seconds": time.time() - started,
        "attempt": attempt,
        "pid": os.getpid(),
    }


_models: dict[tuple[str, str | None], Any] = {}
_models_lock = threading.Lock()


def _model(bundle_id: str, variant: str | None) -> Any:
    """The bundle's model, loaded once per worker process and kept for every later shard."""
    with _models_lock:
        key = (bundle_id, variant)
        if key not in _models:
            from ..api import load

            _models[key] = load(bundle_path(bundle_id), variant=variant)
        return _models[key]


def embed_shard(bundle_id: str, variant: str | None, texts: list[str], batch_size: int) -> Any:
    return _model(bundle_id, variant).embed(texts, batch_size=batch_size)


def classify_shard(bundle_id: str, variant: str | None, texts: list[str], batch_size: int) -> Any:
    """Class probabilities of TEXTS, one row each, in order."""
    model = _model(bundle_id, variant)
    scores = getattr(model, "scores", None)
    if scores is None:
        raise FleetError(f"the bundle is a {type(model).__name__}: fleet classify needs a text classification bundle")
    return scores(texts, batch_size=batch_size)
