"""The configuration ``edgert tune`` chose for a bundle on this device, remembered so that ``edgert.load`` applies it.

A decision is a file under ``$EDGERT_HOME/tuned``, named by the bundle's identity (the sha256 of its manifest's
file table: the same bytes, wherever the folder is) and signed with this user's key like the verification stamps
(``edgert.integrity``): a decision written by someone else, copied from another machine or edited is ignored,
with a notice. It also records the device it was measured on (CPU model and features, core count, onnxruntime
and edgert versions); on a device whose fingerprint differs it is stale, and is ignored with a notice.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import integrity
from .modes import MEMORY_MODES
from .paths import home


@dataclass(frozen=True)
class Decision:
    bundle: str  # the bundle's identity (bundle_key)
    fingerprint: str
    variant: str
    threads: int  # 0: onnxruntime's choice
    objective: str
    budget: str | None
    created: str
    #: the figures it was chosen on, for inspect (p50 ms, p95 ms, throughput items/s, rss MiB)
    figures: dict[str, float | None]
    memory: str = "default"  # the session's memory mode; decisions written before modes were tuned lack it

    def describe(self) -> str:
        threads = self.threads or "auto"
        mode = "" if self.memory == "default" else f", memory {self.memory}"
        return (f"{self.variant}, {threads} thread(s){mode} (tuned for {self.objective} on this device, "
                f"{self.created[:10]})")  # fmt: skip


def bundle_key(files: dict[str, str]) -> str:
    """A bundle's identity from its manifest's {file: sha256}: the same model files, wherever they are."""
    body = "\n".join(f"{name} {sha}" for name, sha in sorted(files.items()))
    return hashlib.sha256(body.encode()).hexdigest()


def fingerprint() -> str:
    """This device as a decision sees it: a decision measured elsewhere, or under other versions, is stale here."""
    import onnxruntime as ort

    from ._version import __version__
    from .device import cpu_features, cpu_model

    facts = [cpu_model(), " ".join(cpu_features()), str(os.cpu_count()), ort.__version__, __version__]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


def _path(key: str) -> Path:
    return home() / "tuned" / f"{key[:32]}.json"


def save(decision: Decision) -> Path | None:
    """Writes DECISION, signed; None when there is no key to sign with (a read-only home): nothing is applied
    later, and the caller says so."""
    body = json.dumps(asdict(decision), sort_keys=True)
    mac = integrity.sign(body)
    if mac is None:
        return None
    path = _path(decision.bundle)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{mac}\n{body}", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _notice(text: str) -> None:
    warnings.warn(f"edgert: {text}", RuntimeWarning, stacklevel=4)


def lookup(key: str, variants: tuple[str, ...]) -> Decision | None:
    """The decision for the bundle KEY on this device, or None (with a one-line notice when there is a file but
    it is not one to apply: unsigned or tampered with, for another device or version, or naming a variant the
    bundle has not)."""
    path = _path(key)
    try:
        mac, _, body = path.read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not integrity.signed(body, mac):
        _notice(f"ignoring {path}: not signed by this user's key (written elsewhere, or edited)")
        return None
    try:
        data: dict[str, Any] = json.loads(body)
        decision = Decision(**data)
    except (ValueError, TypeError):
        _notice(f"ignoring {path}: not a decision this edgert reads")
        return None
    if decision.bundle != key:
        _notice(f"ignoring {path}: it is for another bundle")
        return None
    if decision.fingerprint != fingerprint():
        _notice(f"ignoring {path}: this device or its software changed since it was tuned (edgert tune again)")
        return None
    if decision.memory not in MEMORY_MODES:
        _notice(f"ignoring {path}: memory mode {decision.memory!r} is not one this edgert has")
        return None
    if decision.variant not in variants:
        _notice(f"ignoring {path}: the bundle has no variant {decision.variant!r} any more")
        return None
    return decision


def forget(key: str) -> bool:
    try:
        _path(key).unlink()
    except FileNotFoundError:
        return False
    return True
