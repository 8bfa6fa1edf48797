"""``edgert.monitor(model, store=..., sample=0.01)``: a loaded model that watches itself in the app.

The wrapper passes every call through to the model. For a sampled share of calls it records, per item, the
call's latency and batch size, the input's size (characters of a text, pixels of an array image, seconds of
audio) and what the output says of the input: a classifier's top-1 label and confidence; an embedding's length
before normalisation and its distance to a reference centroid (the one given, else the mean of the first
``warm`` sampled vectors); an audio detector's share of speech. Rows go into a bounded ring buffer that a
background thread flushes to the results store, so an app's call never waits on a database. Nothing leaves the
device unless the store is a shared database.

The monitor never raises into the app: a row it cannot make, a full buffer, a store that fails are dropped and
counted (``dropped``, ``failed_flushes``, ``last_error``).
"""

from __future__ import annotations

import atexit
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

#: rows kept waiting for a flush at most; past it the oldest are dropped (and counted)
CAPACITY = 10_000
#: seconds between flushes, at most
FLUSH_SECONDS = 5.0
#: sampled embeddings whose mean is the reference centroid when none is given
WARM = 100


class Monitor:
    def __init__(
        self,
        model: Any,
        store: str | None = None,
        *,
        sample: float = 0.01,
        reference: Any = None,
        warm: int = WARM,
        capacity: int = CAPACITY,
        flush_seconds: float = FLUSH_SECONDS,
        device: str | None = None,
        seed: int | None = None,
    ):
        from ..errors import TaskError
        from ..history.records import device_name
        from ..history.store import check_url, default_url

        if not 0 < sample <= 1:
            raise TaskError(f"monitor: sample must be in (0, 1], got {sample}")
        self.model = model
        self.url = check_url(store or default_url())  # a bad store is an error at start, never later
        self.sample = sample
        self.series = (
            model.bundle.path.name if getattr(model, "bundle", None) is not None else "model",
            str(getattr(model, "variant", None) or "default"),
            device or device_name(),
        )
        self._call = next(c for c in ("embed", "classify", "detect", "run") if hasattr(model, c))
        self._image = getattr(model, "input_kind", "") == "image"
        self._centroid = None if reference is None else _unit(np.asarray(reference, dtype=np.float64).reshape(-1))
        self._warm_sum: np.ndarray | None = None
        self._warm_n = 0
        self._warm = warm
        self._rows: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.calls = self.sampled = self.recorded = self.dropped = self.failed_flushes = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher = threading.Thread(target=self._loop, args=(flush_seconds,), name="edgert-monitor", daemon=True)
        self._flusher.start()
        atexit.register(self.close)

    # --- the calls an app makes -------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet: the constructor failed
            raise AttributeError(name)
        return getattr(self.model, name)  # everything not watched passes through

    def __call__(self, *args: Any, **kw: Any) -> Any:
        """The model's own call: embed, classify or detect, whichever it has."""
        return getattr(self, self._call)(*args, **kw)

    def embed(self, texts: Any, **kw: Any) -> Any:
        if not self._take() or "norms" in kw:
            return self.model.embed(texts, **kw)
        items = [texts] if isinstance(texts, str) else list(texts)
        norms = np.empty(len(items), dtype=np.float32)
        out, ms = _timed(lambda: self.model.embed(items, norms=norms, **kw))
        self._safely(self._embedded, items, out, norms, ms)
        return out

    def classify(self, items: Any, **kw: Any) -> Any:
        if not self._take():
            return self.model.classify(items, **kw)
        out, ms = _timed(lambda: self.model.classify(items, **kw))
        self._safely(self._classified, _as_list(items, self._image), out, ms)
        return out

    def detect(self, samples: Any, **kw: Any) -> Any:
        if not self._take():
            return self.model.detect(samples, **kw)
        out, ms = _timed(lambda: self.model.detect(samples, **kw))
        self._safely(self._detected, samples, out, ms)
        return out

    # --- making rows ------------------------------------------------------------------------------------------

    def _take(self) -> bool:
        self.calls += 1
        if self.sample < 1 and self._random.random() >= self.sample:
            return False
        self.sampled += 1
        return True

    def _safely(self, f: Any, *args: Any) -> None:
        try:
            rows = f(*args)
        except Exception as exc:  # noqa: BLE001 - never into the app
            self.dropped += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            room = self._rows.maxlen - len(self._rows) if self._rows.maxlen else len(rows)
            self.dropped += max(0, len(rows) - room)
            self._rows.extend(rows)
        if len(self._rows) >= (self._rows.maxlen or 1) // 2:
            self._wake.set()

    def _now(self) -> str:
        return datetime.now(timezone.utc).isoformat(timespec="microseconds")

    def _embedded(self, items: list[str], vectors: np.ndarray, norms: np.ndarray, ms: float) -> list[tuple[Any, ...]]:
        units = vectors.astype(np.float64) / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if self._centroid is None:
            self._warm_sum = units.sum(0) if self._warm_sum is None else self._warm_sum + units.sum(0)
            self._warm_n += len(units)
            if self._warm_n >= self._warm:
                self._centroid = _unit(self._warm_sum)
        distances = 1.0 - units @ self._centroid if self._centroid is not None else [None] * len(items)
        now, n = self._now(), len(items)
        return [
            (now, "embed", ms, n, float(len(t)), None, None, float(norm), None if d is None else float(d), None)
            for t, norm, d in zip(items, norms, distances)
        ]

    def _classified(self, items: list[Any], predictions: Any, ms: float) -> list[tuple[Any, ...]]:
        now, n = self._now(), len(items)
        rows = []
        for item, top in zip(items, predictions):
            label, score = (top[0].label, float(top[0].score)) if top else (None, None)
            rows.append((now, "classify", ms, n, _size(item, self._image), label, score, None, None, None))
        return rows

    def _detected(self, samples: Any, segments: list[tuple[float, float]], ms: float) -> list[tuple[Any, ...]]:
        seconds = len(samples) / self.model.sample_rate
        speech = sum(b - a for a, b in segments) / seconds if seconds else 0.0
        return [(self._now(), "detect", ms, 1, seconds, None, None, None, None, min(1.0, speech))]

    # --- flushing ---------------------------------------------------------------------------------------------

    def _loop(self, every: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(every)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Writes the waiting rows to the store now; returns how many were written (0 when the store failed:
        the rows are dropped, counted, and the reason kept in ``last_error``)."""
        from ..history.store import Store

        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        if not rows:
            return 0
        try:
            with Store(self.url) as store:
                store.add_observations(self.series, rows)
        except Exception as exc:  # noqa: BLE001 - a store that fails never reaches the app
            self.failed_flushes += 1
            self.dropped += len(rows)
            self.last_error = str(exc)
            return 0
        self.recorded += len(rows)
        return len(rows)

    def close(self) -> None:
        """Stops the flusher and writes what is waiting (also at interpreter exit)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._flusher.join(timeout=30)
        self.flush()
        atexit.unregister(self.close)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Monitor({self.model!r}, sample={self.sample}, recorded={self.recorded}, dropped={self.dropped})"


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """CALL's result and the milliseconds it took."""
    start = time.perf_counter()
    out = call()
    return out, (time.perf_counter() - start) * 1e3


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / max(float(np.linalg.norm(v)), 1e-12))


def _as_list(items: Any, image: bool) -> list[Any]:
    one = isinstance(items, (str, bytes)) or (image and isinstance(items, np.ndarray) and items.ndim == 3)
    return [items] if one else list(items)


def _size(item: Any, image: bool) -> float | None:
    """Characters of a text, pixels of an array image; None for an image's path or bytes (not decoded twice)."""
    if isinstance(item, str):
        return None if image else float(len(item))
    if isinstance(item, np.ndarray) and item.ndim >= 2:
        return float(item.shape[0] * item.shape[1])
    return None


def monitor(model: Any, store: str | None = None, *, sample: float = 0.01, **kw: Any) -> Monitor:
    """MODEL watched: the same calls, a sampled share of them recorded into STORE (see ``Monitor``)."""
    return Monitor(model, store, sample=sample, **kw)
