"""Streaming audio models: voice-activity detectors and keyword spotters that take fixed windows of PCM samples
and carry a state tensor from call to call (Silero VAD's ``state``/``stateN``, with ``sr`` as a scalar input).

``model.stream()`` gives a ``Stream``: ``push(samples)`` buffers samples, runs every complete window and returns one
probability per window; ``reset()`` starts over. ``model.detect(samples)`` gives the speech segments of a whole
buffer. The manifest says the window, the sample rate, how many samples of the previous window each input repeats
(``context``), which inputs carry the state and which outputs return it.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import MANIFEST, Bundle, setting
from ..errors import BundleError, InputError
from ..session import SessionConfig, numpy_dtype
from .base import Task


@dataclass(frozen=True)
class StateSpec:
    input: str
    output: str
    shape: tuple[int, ...]
    dtype: np.dtype


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sample rate) of a 16-bit PCM WAV file; channels are averaged."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate, frames = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
            if width != 2:
                raise InputError(f"{path}: {8 * width}-bit WAV; edgert reads 16-bit PCM (convert it first)")
            data = np.frombuffer(w.readframes(frames), dtype="<i2").astype(np.float32) / 32768.0
    except (wave.Error, EOFError) as exc:
        raise InputError(f"{path}: not a PCM WAV file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return data.reshape(-1, channels).mean(axis=1).astype(np.float32), rate


def as_samples(samples: Any) -> np.ndarray:
    """float32 samples in [-1, 1] from floats, or from int16 PCM (scaled by 1/32768)."""
    a = np.asarray(samples)
    if a.ndim != 1:
        raise InputError(f"expected a 1-D array of mono samples, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if a.dtype.kind != "f":
        raise InputError(f"expected float samples in [-1, 1] or int16 PCM, got {a.dtype}")
    return a.astype(np.float32, copy=False)


class AudioStream(Task):
    """A stateful streaming audio model; ``stream()`` for live chunks, ``detect()`` for a whole buffer."""

    tasks = ("audio-stream",)

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        super().__init__(bundle, variant=variant, config=config, verify=verify)
        pre, post = bundle.pre, bundle.post
        at = f"{bundle.path / MANIFEST}"
        self.sample_rate = setting(pre, "sample_rate", int, None, f"{at} pre", minimum=1)
        self.window = setting(pre, "window", int, None, f"{at} pre", minimum=1)
        self.context = setting(pre, "context", int, 0, f"{at} pre", minimum=0)
        if self.sample_rate is None or self.window is None:
            raise BundleError(f"{at}: an audio-stream bundle needs pre.sample_rate and pre.window")
        self.audio_input = setting(pre, "audio_input", str, self.input_names[0], f"{at} pre")
        self.rate_input = setting(pre, "sample_rate_input", str, None, f"{at} pre")
        self.output = setting(post, "output", str, self.output_names[0], f"{at} post")
        self.states = tuple(self._state(s, at) for s in setting(pre, "states", list, [], f"{at} pre"))
        names = {self.audio_input, *(s.input for s in self.states), *([self.rate_input] if self.rate_input else [])}
        missing = names - set(self.input_names)
        unfed = set(self.input_names) - names
        if missing or unfed or self.output not in self.output_names:
            raise BundleError(
                f"{bundle.path}: the manifest's audio inputs {sorted(names)} and output {self.output!r} do not match "
                f"the model's inputs {list(self.input_names)} and outputs {list(self.output_names)}"
            )
        self._fetch = [self.output, *(s.output for s in self.states)]  # what each window's run returns
        types = {i.name: i.type for i in self.session.get_inputs()}
        self._rate = np.array(self.sample_rate, dtype=numpy_dtype(types[self.rate_input])) if self.rate_input else None

    def _state(self, spec: Any, at: str) -> StateSpec:
        if not isinstance(spec, dict) or not {"input", "output", "shape"} <= set(spec):
            raise BundleError(f"{at}: each pre.states entry needs input, output and shape, got {spec!r}")
        shape = spec["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BundleError(f"{at}: state {spec['input']} shape must be a list of whole numbers, got {shape!r}")
        if spec["output"] not in self.output_names:
            raise BundleError(f"{at}: state output {spec['output']!r} is not one of {list(self.output_names)}")
        types = {i.name: i.type for i in self.session.get_inputs()}
        if spec["input"] not in types:
            raise BundleError(f"{at}: state input {spec['input']!r} is not one of {list(self.input_names)}")
        return StateSpec(spec["input"], spec["output"], tuple(shape), numpy_dtype(types[spec["input"]]))

    @property
    def seconds_per_window(self) -> float:
        return self.window / self.sample_rate

    def stream(self) -> Stream:
        return Stream(self)

    def detect(
        self,
        samples: Any,
        *,
        threshold: float = 0.5,
        min_speech_ms: float = 250,
        min_silence_ms: float = 100,
    ) -> list[tuple[float, float]]:
        """Speech segments (start, end) in seconds: windows at or above ``threshold``, joined across gaps shorter
        than ``min_silence_ms``, kept when at least ``min_speech_ms`` long."""
        if not 0 <= threshold <= 1:
            raise InputError(f"threshold must be between 0 and 1, got {threshold}")
        probs = self.stream().push(samples, flush=True)
        step = self.seconds_per_window
        segments: list[list[float]] = []
        for i, p in enumerate(probs):
            if p < threshold:
                continue
            start, end = i * step, (i + 1) * step
            if segments and start - segments[-1][1] <= min_silence_ms / 1000:  # adjacent windows always join
                segments[-1][1] = end
            else:
                segments.append([start, end])
        return [(round(a, 6), round(b, 6)) for a, b in segments if b - a >= min_speech_ms / 1000]


class Stream:
    """One live stream: its own buffer and state; the model is shared, so many streams can run side by side."""

    def __init__(self, model: AudioStream):
        self.model = model
        self.reset()

    def reset(self) -> None:
        m = self.model
        self._buffer = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(m.context, dtype=np.float32)
        self._state = {s.input: np.zeros(s.shape, dtype=s.dtype) for s in m.states}
        self.windows = 0  # windows run since the last reset

    def push(self, samples: Any, *, flush: bool = False) -> np.ndarray:
        """Runs every complete window; returns their probabilities (float32, one per window). ``flush`` pads the
        last partial window with zeros and runs it too."""
        m = self.model
        self._buffer = np.concatenate([self._buffer, as_samples(samples)])
        if flush and len(self._buffer) % m.window:
            pad = m.window - len(self._buffer) % m.window
            self._buffer = np.concatenate([self._buffer, np.zeros(pad, dtype=np.float32)])
        n = len(self._buffer) // m.window
        out = np.empty(n, dtype=np.float32)
        for k in range(n):
            window = self._buffer[k * m.window : (k + 1) * m.window]
            chunk = np.concatenate([self._context, window]) if m.context else window
            feeds = {m.audio_input: chunk[None, :], **self._state}
            if m.rate_input:
                feeds[m.rate_input] = m._rate
            result = m.session.run(m._fetch, feeds)
            out[k] = float(np.asarray(result[0]).reshape(-1)[-1])
            for s, value in zip(m.states, result[1:]):
                self._state[s.input] = value
            if m.context:
                self._context = window[-m.context :]
        self._buffer = self._buffer[n * m.window :]
        self.windows += n
        return out
