"""What the results store remembers of a run, as typed records: one ``Run`` per model variant measured, with the
device, the model's sha256, the software, the git commit, and every metric with its independent rounds (not only
the median), so that a trend or a gate judges a change against the noise the run itself saw.

``from_bench`` and ``from_eval`` turn a bench or eval result into runs. The JSON-lines form (``edgert.history/1``,
one run a line) is what ``edgert history export`` writes and ``import`` reads: a device without network hands
its history over on a USB stick.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..device import Description
from ..errors import RecordError

SCHEMA = "edgert.history/1"
OLDER: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True)
class Measure:
    """One metric of a run: its value, unit and direction, its interval where it has one (eval), and the
    independent summaries it came from (bench's rounds, or cold starts)."""

    name: str
    value: float
    unit: str
    higher_is_better: bool
    low: float | None = None
    high: float | None = None
    rounds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Run:
    uid: str
    kind: str  # "bench", "eval", "check" or "tune"
    created: str  # ISO 8601, UTC
    device: str  # a name: EDGERT_DEVICE, else the host name
    fingerprint: str  # the hardware's: CPU, ISA features, cores, board
    model: str  # the bundle's folder name (or the .onnx file's)
    model_sha256: str
    variant: str
    software: dict[str, str | None]
    git_commit: str | None
    measures: tuple[Measure, ...]
    #: what was measured on, in words (bench's input, eval's set and its sha256)
    workload: str = ""
    machine: Description | None = None
    #: the model card in brief: task, parameters, the variant's size, its quantization recipe, opset
    card: dict[str, str | None] = field(default_factory=dict)
    schema: str = SCHEMA

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    def to_json(self) -> dict[str, object]:
        from .. import typed_json

        body: dict[str, object] = typed_json.dump(self)
        return {**body, "schema": SCHEMA}

    @classmethod
    def from_json(cls, data: object, what: str = "history record") -> Run:
        from .. import typed_json

        return typed_json.load_versioned(cls, data, what, SCHEMA, OLDER, "history")

    def line(self) -> str:
        return json.dumps(self.to_json(), allow_nan=False, separators=(",", ":"))


def fingerprint(machine: Description) -> str:
    """The hardware a run was measured on, as 16 hex digits: runs on one device with one fingerprint are
    comparable; an upgraded board or another CPU under the same name is not."""
    facts = [machine.cpu, machine.machine, str(machine.cores), " ".join(machine.features), machine.board or ""]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


def device_name() -> str:
    return os.environ.get("EDGERT_DEVICE") or socket.gethostname() or "unknown"


def git_commit(where: Path | None = None) -> str | None:
    """The commit of the checkout the command runs in (with ``+dirty`` when it has changes), or None outside one."""
    cwd = where or Path.cwd()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head or None


def model_facts(path: str | Path, variant: str | None) -> tuple[str, str, dict[str, str | None]]:
    """(the model file's sha256 as the bundle's manifest records it, the variant, the card in brief) of a
    bundle, or of a bare .onnx file hashed here."""
    p = Path(path)
    if p.suffix == ".onnx" and p.is_file():
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest(), variant or "file", {"size_bytes": str(p.stat().st_size)}
    from ..bundle import Bundle

    try:
        b = Bundle.open(p)
    except Exception as exc:  # noqa: BLE001 - a bundle gone or changed since the run: recorded without its hash
        raise RecordError(f"{p}: cannot read the bundle to record its model's sha256 ({exc})") from None
    chosen = variant or b.default_model
    c = b.card
    quant = c.get("quantization") or {}
    brief = {
        "task": b.task,
        "parameters": _text(c.get("parameters")),
        "size_bytes": _text((c.get("size_bytes") or {}).get(chosen)),
        "quantization": _text(quant.get("name")) if quant.get("variant") == chosen else "none",
        "opset": _text(c.get("opset")),
    }
    return b.files[b.models[chosen]].sha256, chosen, brief


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _base(kind: str, created: str, machine: Description, software: dict[str, str | None]) -> dict[str, Any]:
    return {
        "kind": kind, "created": created, "device": device_name(), "fingerprint": fingerprint(machine),
        "software": dict(software), "git_commit": git_commit(), "machine": machine,
    }  # fmt: skip


def from_bench(result: Any) -> list[Run]:
    """One run: every thread setting's latency (its rounds' medians) and throughput per batch (their rounds),
    cold start (each start its own process), and the single figures (peak RSS, energy per inference)."""
    t = result.target
    if t is None:
        raise RecordError("this bench result measured no model: nothing to record")
    sha, variant, card = model_facts(t.path, t.variant)
    measures: list[Measure] = []
    for c in result.configs:
        threads = c.threads or "auto"
        if c.latency is not None and c.latency.rounds_p50_ms:
            rounds = tuple(c.latency.rounds_p50_ms)
            measures.append(Measure(f"p50 threads={threads}", _median(rounds), "ms", False, rounds=rounds))
            st = c.latency.stats()
            if st is not None:
                measures.append(Measure(f"p95 threads={threads}", st.p95, "ms", False))
        for x in c.throughput:
            rounds = tuple(x.rounds_items_per_s)
            name = f"throughput batch={x.batch} threads={threads}"
            measures.append(Measure(name, _median(rounds), "items/s", True, rounds=rounds))
    if result.cold_start is not None and result.cold_start.runs_ms:
        runs = tuple(result.cold_start.runs_ms)
        measures.append(Measure("cold start", _median(runs), "ms", False, rounds=runs))
    s = result.summary()
    for name, unit in (("rss", "MiB"), ("energy", "mJ")):
        value = getattr(s, name)
        if value is not None:
            measures.append(Measure(name, float(value), unit, False))
    workload = t.description
    return [
        Run(uid=uuid.uuid4().hex, model=Path(t.path).name, model_sha256=sha, variant=variant,
            measures=tuple(measures), workload=workload, card=card,
            **_base("bench", result.created, result.machine, result.software))
    ]  # fmt: skip


def from_eval(result: Any) -> list[Run]:
    """One run per variant evaluated: every metric with its interval, and its cost where measured."""
    from ..eval.records import LOWER_IS_BETTER

    runs = []
    d = result.dataset
    for r in result.results:
        measures = [
            Measure(m.name, m.value, "", m.name not in LOWER_IS_BETTER, low=m.low, high=m.high) for m in r.metrics
        ]
        try:
            card = model_facts(r.bundle, r.variant)[2]
        except RecordError:  # the bundle moved since it was scored: its sha256 is in the result already
            card = {}
        c = r.cost
        for name, unit in (("p50", "ms"), ("p95", "ms"), ("rss", "MiB"), ("energy", "mJ")):
            value = getattr(c, name, None) if c is not None else None
            if value is not None:
                measures.append(Measure(name, float(value), unit, False))
        runs.append(
            Run(uid=uuid.uuid4().hex, model=Path(r.bundle).name, model_sha256=r.model_sha256, variant=r.variant,
                measures=tuple(measures), card=card,
                workload=f"{d.kind} set {d.name} ({d.sha256[:12]}, {d.items} items)",
                **_base("eval", result.created, result.machine, result.software))
        )  # fmt: skip
    return runs


def from_check(bundle: Path, result: dict[str, Any]) -> list[Run]:
    """One run of ``edgert check``: agreement with the reference on long-tail inputs, and batch invariance."""
    from ..device import describe, versions

    sha, variant, card = model_facts(bundle, result["variant"])
    measures = [
        Measure(name, float(result[key]), "", True)
        for name, key in (("min_cosine", "min_cosine"), ("mean_cosine", "mean_cosine"), ("top1", "top1_agreement"))
        if key in result
    ]
    measures.append(Measure("max_abs_diff", float(result["max_abs_diff"]), "", False))
    measures.append(Measure("batch_invariance", float(result["batch_invariance"]["min_cosine"]), "", True))
    software = versions(("edgert", "onnxruntime", "numpy", "tokenizers"))
    return [
        Run(uid=uuid.uuid4().hex, model=Path(bundle).name, model_sha256=sha, variant=variant, measures=tuple(measures),
            card=card,
            workload=f"{result['inputs']} long-tail inputs vs {result['reference']}",
            **_base("check", result["checked_at"], describe(), software))
    ]  # fmt: skip


def from_tune(result: Any) -> list[Run]:
    """One run per configuration ``edgert tune`` measured in full: its latency with the rounds, p95, throughput
    and peak RSS; the workload says the objective, the budget and whether it was the one chosen."""
    from ..device import describe, versions

    machine, software = describe(), versions(("edgert", "onnxruntime", "numpy", "tokenizers"))
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs = []
    for t in result.trials:
        if not t.full:
            continue
        sha, variant, card = model_facts(result.bundle, t.variant)
        threads = t.threads or "auto"
        measures = []
        if t.p50 is not None:
            measures.append(Measure(f"p50 threads={threads}", t.p50, "ms", False, rounds=t.rounds_p50_ms))
        for name, value, unit, higher in (
            (f"p95 threads={threads}", t.p95, "ms", False), ("throughput", t.throughput, "items/s", True),
            ("rss", t.rss, "MiB", False),
        ):  # fmt: skip
            if value is not None:
                measures.append(Measure(name, float(value), unit, higher))
        chosen = " (chosen)" if result.chosen is not None and t == result.chosen else ""
        runs.append(
            Run(uid=uuid.uuid4().hex, model=Path(result.bundle).name, model_sha256=sha, variant=variant,
                measures=tuple(measures), card=card,
                workload=f"tune for {result.objective}, budget {result.budget or 'none'}{chosen}",
                **_base("tune", created, machine, software))
        )  # fmt: skip
    return runs


def _median(values: tuple[float, ...]) -> float:
    from .. import stats

    return float(stats.median(list(values)))
