"""Streaming audio models: voice-activity detectors and keyword spotters that take fixed windows of PCM samples
and carry a state tensor from call to call (Silero VAD's ``state``/``stateN``, with ``sr`` as a scalar input).

``model.stream()`` gives a ``Stream``: ``push(samples)`` buffers samples, runs every complete window and returns one
probability per window; ``reset()`` starts over. ``model.detect(samples)`` gives the speech segments of a whole
buffer. The manifest says the window, the sample rate, how many samples of the previous window each input repeats
(``context``), which inputs carry the state and which outputs return it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import safepath
from ..bundle import MANIFEST, Bundle, setting
from ..errors import BundleError, InputError
from ..session import SessionConfig, numpy_dtype
from .base import Task
from .segments import SegmentRules, speech_samples


@dataclass(frozen=True)
class StateSpec:
    input: str
    output: str
    shape: tuple[int, ...]
    dtype: np.dtype


MAX_RATE = 384_000
MAX_CALL = 1 << 22  # samples per call: minutes of audio
MAX_STATE = 1 << 24  # values in one state tensor (64 MiB of float32)
MAX_WAV_BYTES = 4 << 30  # 4 GiB: a RIFF size field cannot say more

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def _wav_chunks(data: bytes, where: str) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, start, end) of each chunk of a RIFF/WAVE file; a chunk that claims more than the file holds
    (a streaming writer's 0xFFFFFFFF) ends at the end of the file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError(f"{where}: not a WAV file (no RIFF/WAVE header)")
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        start = pos + 8
        end = min(start + size, len(data))
        yield cid, start, end
        pos = end + (size & 1)  # chunks are padded to an even length


def read_wav(path: str | Path, *, channel: int | None = None) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sample rate) of a WAV file.

    Reads integer PCM of 8 (unsigned), 16, 24 and 32 bits and IEEE float of 32 and 64 bits, in plain or
    WAVE_FORMAT_EXTENSIBLE headers. Several channels are mixed down by averaging them, unless ``channel`` picks
    one (0 is the first). A trailing partial frame (an odd-length data chunk, half a stereo frame) is dropped.
    NaN or infinite samples are refused: a model would turn them into nonsense, not an error.
    """
    where = str(path)
    try:
        data = safepath.read_bounded(Path(path), MAX_WAV_BYTES, error=InputError, what="WAV file")
    except InputError:
        raise
    fmt = body = None
    for cid, start, end in _wav_chunks(data, where):
        if cid == b"fmt " and fmt is None:
            fmt = data[start:end]
        elif cid == b"data" and body is None:
            body = data[start:end]
    if fmt is None or len(fmt) < 16:
        raise InputError(f"{where}: not a WAV file (no fmt chunk)")
    if body is None:
        raise InputError(f"{where}: WAV file has no data chunk")
    tag, channels, rate = (
        int.from_bytes(fmt[0:2], "little"),
        int.from_bytes(fmt[2:4], "little"),
        int.from_bytes(fmt[4:8], "little"),
    )
    align, bits = int.from_bytes(fmt[12:14], "little"), int.from_bytes(fmt[14:16], "little")
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise InputError(f"{where}: WAVE_FORMAT_EXTENSIBLE header is too short ({len(fmt)} bytes)")
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID begins with the format code
    kinds = {
        (_PCM, 8): "u1",
        (_PCM, 16): "<i2",
        (_PCM, 24): "i3",
        (_PCM, 32): "<i4",
        (_FLOAT, 32): "<f4",
        (_FLOAT, 64): "<f8",
    }
    kind = kinds.get((tag, bits))
    if kind is None:
        names = {_PCM: "integer PCM", _FLOAT: "IEEE float", 6: "A-law", 7: "mu-law", 2: "ADPCM", 0x55: "MP3"}
        raise InputError(
            f"{where}: {bits}-bit {names.get(tag, f'format {tag}')} WAV is not supported; edgert reads 8/16/24/32-bit "
            "PCM and 32/64-bit float (convert it, e.g. with sox or ffmpeg)"
        )
    if channels < 1 or rate < 1 or align != channels * bits // 8:
        raise InputError(f"{where}: inconsistent WAV header ({channels} channels, {rate} Hz, block align {align})")
    if channel is not None and not 0 <= channel < channels:
        raise InputError(f"{where}: has {channels} channel(s); channel {channel} does not exist")
    frames = len(body) // align
    raw = np.frombuffer(body, dtype=np.uint8, count=frames * align)
    if kind == "u1":
        x = (raw.astype(np.float32) - 128.0) / 128.0
    elif kind == "i3":
        b = raw.reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 8388608.0
    else:
        x = np.frombuffer(raw.tobytes(), dtype=kind).astype(np.float32)
        if kind == "<i2":
            x /= 32768.0
        elif kind == "<i4":
            x /= 2147483648.0
    if kind in ("<f4", "<f8"):
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise InputError(
                f"{where}: sample {bad[0] // channels} is {x[bad[0]]}; NaN and infinite samples are refused"
            )
    x = x.reshape(frames, channels)
    mono = x[:, channel] if channel is not None else x.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def as_samples(samples: Any) -> np.ndarray:
    """float32 samples in [-1, 1] from floats, or from int16 PCM (scaled by 1/32768); NaN and inf are refused."""
    a = np.asarray(samples)
    if a.ndim != 1:
        raise InputError(f"expected a 1-D array of mono samples, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if a.dtype.kind != "f":
        raise InputError(f"expected float samples in [-1, 1] or int16 PCM, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise InputError(f"sample {i} is {a[i]}; NaN and infinite samples are refused")
    return a


class AudioStream(Task):
    """A stateful streaming audio model; ``stream()`` for live chunks, ``detect()`` for a whole buffer."""

    tasks = ("audio-stream",)
    input_kind = "audio"
    import_task = "audio-stream"
    eval_kinds = ("speech",)
    import_options = frozenset(
        {"output", "output_kind", "sample_rate", "window", "context", "audio_input", "sample_rate_input", "states"}
    )

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
        if self.sample_rate > MAX_RATE or self.window + self.context > MAX_CALL:
            raise BundleError(
                f"{at} pre: sample_rate {self.sample_rate} and window + context {self.window + self.context} must be "
                f"at most {MAX_RATE} and {MAX_CALL} samples"
            )
        self.audio_input = setting(pre, "audio_input", str, self.input_names[0], f"{at} pre")
        self.rate_input = setting(pre, "sample_rate_input", str, None, f"{at} pre")
        self.output = setting(post, "output", str, self.output_names[0], f"{at} post")
        self.states = tuple(self._state(s, at) for s in setting(pre, "states", list, [], f"{at} pre"))
        names = {self.audio_input, *(s.input for s in self.states), *([self.rate_input] if self.rate_input else [])}
        length = next(i.shape for i in self.session.get_inputs() if i.name == self.audio_input) or [None]
        if isinstance(length[-1], int) and length[-1] > 0 and length[-1] != self.window + self.context:
            raise BundleError(
                f"{at} pre: window {self.window} + context {self.context} is {self.window + self.context} samples, "
                f"but the model's {self.audio_input} takes {length[-1]}"
            )
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
        declared = next(i.shape for i in self.session.get_inputs() if i.name == spec["input"])
        fits = len(declared) == len(shape) and all(
            not (isinstance(d, int) and d > 0) or d == x for d, x in zip(declared, shape)
        )
        if not fits or math.prod(shape) > MAX_STATE:
            raise BundleError(
                f"{at}: state {spec['input']} shape {shape} does not fit the model's {declared} "
                f"(at most {MAX_STATE:,} values)"
            )
        return StateSpec(spec["input"], spec["output"], tuple(shape), numpy_dtype(types[spec["input"]]))

    @property
    def seconds_per_window(self) -> float:
        return float(self.window / self.sample_rate)

    def stream(self) -> Stream:
        return Stream(self)

    def detect(
        self,
        samples: Any,
        *,
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: float = 250,
        min_silence_ms: float = 100,
        speech_pad_ms: float = 30,
    ) -> list[tuple[float, float]]:
        """Speech segments (start, end) in seconds, by Silero VAD's own rules (see edgert.tasks.segments):
        speech starts at ``threshold``, ends below ``end_threshold`` (default ``threshold - 0.15``) after
        ``min_silence_ms``, lasts more than ``min_speech_ms``, and is padded by ``speech_pad_ms``."""
        rules = SegmentRules(threshold, end_threshold, min_speech_ms, min_silence_ms, speech_pad_ms)
        audio = as_samples(samples)
        probs = self.stream().push(audio, flush=True)
        found = speech_samples(probs.tolist(), self.window, self.sample_rate, len(audio), rules)
        return [(round(a / self.sample_rate, 6), round(b / self.sample_rate, 6)) for a, b in found]


class Stream:
    """One live stream: its own buffer and state; the model is shared, so many streams can run side by side.

    A stream may be shared between threads: ``push`` and ``reset`` hold its lock, so each call's samples enter
    the buffer whole and in the order the calls take the lock, and no sample is run twice or lost.
    """

    def __init__(self, model: AudioStream):
        self.model = model
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        m = self.model
        self._buffer = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(m.context, dtype=np.float32)
        self._state = {s.input: np.zeros(s.shape, dtype=s.dtype) for s in m.states}
        self.windows = 0  # windows run since the last reset

    def push(self, samples: Any, *, flush: bool = False) -> np.ndarray:
        """Runs every complete window; returns their probabilities (float32, one per window). ``flush`` pads the
        last partial window with zeros and runs it too."""
        samples = as_samples(samples)
        with self._lock:
            return self._push(samples, flush)

    def _push(self, samples: np.ndarray, flush: bool) -> np.ndarray:
        m = self.model
        self._buffer = np.concatenate([self._buffer, samples])
        if flush and len(self._buffer) % m.window:
            pad = m.window - len(self._buffer) % m.window
            self._buffer = np.concatenate([self._buffer, np.zeros(pad, dtype=np.float32)])
        n = len(self._buffer) // m.window
        out = np.empty(n, dtype=np.float32)
        for k in range(n):
            window = self._buffer[k * m.window : (k + 1) * m.window]
            chunk = np.concatenate([self._context, window]) if m.context else window
            feeds: dict[str, Any] = {m.audio_input: chunk[None, :], **self._state}
            if m.rate_input:
                feeds[m.rate_input] = m._rate
            result = m.run_session(m._fetch, feeds)
            out[k] = float(np.asarray(result[0]).reshape(-1)[-1])
            for s, value in zip(m.states, result[1:]):
                self._state[s.input] = value
            if m.context:
                self._context = window[-m.context :]
        self._buffer = self._buffer[n * m.window :]
        self.windows += n
        return out
