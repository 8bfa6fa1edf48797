"""Streaming audio: a stateful model (built with onnx.helper, shaped like Silero VAD: samples with context, a state
tensor in and out, the sample rate as a scalar) imported with flags, streamed in chunks of any size, reset, run on a
WAV file, and checked window by window against a NumPy reference of the same recursion."""

from __future__ import annotations

import wave
from dataclasses import replace

import numpy as np
import pytest

import edgert
from edgert.errors import InputError
from edgert.importer import ImportOptions, ModelImportError, import_model
from edgert.tasks.audio import read_wav

from .helpers import CONTEXT, EMULATED, RATE, VAD_OPTIONS, WINDOW, vad_model

onnx = pytest.importorskip("onnx")


def reference(samples: np.ndarray) -> np.ndarray:
    """The model's probability per window, written out in NumPy (zero-padded last window, zero initial context)."""
    pad = (-len(samples)) % WINDOW
    x = np.concatenate([samples, np.zeros(pad, np.float32)])
    state, context, out = np.zeros(4, np.float64), np.zeros(CONTEXT, np.float32), []
    for k in range(len(x) // WINDOW):
        w = x[k * WINDOW : (k + 1) * WINDOW]
        chunk = np.concatenate([context, w])
        state = 0.5 * state + np.abs(chunk.astype(np.float64)).mean()
        out.append(1 / (1 + np.exp(-40 * (state.mean() - 0.08))))
        context = w[-CONTEXT:]
    return np.array(out, dtype=np.float32)


def speech_like(seconds=2.0, seed=0) -> np.ndarray:
    """Silence, a burst of noise from 0.5 s to 1.2 s, silence."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.002, int(seconds * RATE)).astype(np.float32)
    x[int(0.5 * RATE) : int(1.2 * RATE)] += rng.normal(0, 0.3, int(0.7 * RATE)).astype(np.float32)
    return np.clip(x, -1, 1)


@pytest.fixture
def vad(tmp_path):
    return edgert.load(import_model(vad_model(tmp_path / "vad.onnx"), tmp_path / "vad", VAD_OPTIONS).path)


def test_stream_in_chunks_of_any_size_equals_the_reference(vad):
    x = speech_like()
    want = reference(x)
    stream = vad.stream()
    got, rng, i = [], np.random.default_rng(1), 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        got.append(stream.push(x[i : i + n]))
        i += n
    got.append(stream.push(np.zeros(0, np.float32), flush=True))
    np.testing.assert_allclose(np.concatenate(got), want, rtol=1e-5, atol=1e-6)
    stream.reset()
    np.testing.assert_allclose(stream.push(x, flush=True), want, rtol=1e-5, atol=1e-6)


def test_int16_pcm_and_two_streams_side_by_side(vad):
    x = speech_like(seed=3)
    pcm = np.round(x * 32767).astype(np.int16)
    a, b = vad.stream(), vad.stream()
    pa = a.push(pcm[:8000])
    pb = b.push(pcm)  # another stream's state is its own
    np.testing.assert_allclose(pa, pb[: len(pa)], rtol=1e-6)
    np.testing.assert_allclose(pb, reference(pcm.astype(np.float32) / 32768)[: len(pb)], rtol=1e-5, atol=1e-6)


def test_detect_finds_the_burst(vad):
    segments = vad.detect(speech_like())
    assert len(segments) == 1
    start, end = segments[0]
    assert 0.45 <= start <= 0.6 and 1.15 <= end <= 1.35, segments
    assert vad.detect(np.zeros(RATE, np.float32)) == []


def test_wav_file_in(tmp_path, vad):
    x = speech_like()
    pcm = np.round(x * 32767).astype(np.int16)
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    samples, rate = read_wav(path)
    assert rate == RATE
    np.testing.assert_array_equal(samples, pcm.astype(np.float32) / 32768)
    assert vad.detect(samples) == vad.detect(pcm)
    (tmp_path / "not.wav").write_bytes(b"RIFF....nope")
    with pytest.raises(InputError, match="not a WAV file"):
        read_wav(tmp_path / "not.wav")


def test_audio_import_contradictions(tmp_path):
    model = vad_model(tmp_path / "vad.onnx")
    base = {"task": "audio-stream", "sample_rate": RATE, "audio_input": "input", "sample_rate_input": "sr"}
    cases = [
        (
            {"window": 600},
            "window: vad.onnx: input input takes 576 samples per call; window and context must add up to it",
        ),
        ({"window": WINDOW, "context": 10}, "takes 576 samples per call"),
        ({"window": WINDOW}, "inputs \\['state'\\] would get nothing"),  # the context came from the shape
        ({"window": WINDOW, "context": CONTEXT}, "inputs \\['state'\\] would get nothing"),
        ({"window": WINDOW, "context": CONTEXT, "states": (("state", "nope"),)}, "states: state:nope"),
    ]
    for extra, cause in cases:
        with pytest.raises(ModelImportError, match=cause):
            import_model(model, tmp_path / "b", ImportOptions(**base, **extra))
    with pytest.raises(ModelImportError, match="sample_rate: is needed by task audio-stream"):
        import_model(model, tmp_path / "b", ImportOptions(task="audio-stream"))
    # the fixed input length gives the context: the same bundle as with --context 64
    inferred = import_model(model, tmp_path / "i", replace(VAD_OPTIONS, context=None))
    assert inferred.pre["context"] == CONTEXT and inferred.pre["window"] == WINDOW
    # Silero's input has no fixed length: a stateful model then needs --context, never a guessed 0
    dynamic = vad_model(tmp_path / "dyn.onnx", window="n")
    with pytest.raises(
        ModelImportError, match="context: is needed: dyn.onnx is a stateful model whose input input has no fixed length"
    ):
        import_model(dynamic, tmp_path / "d", replace(VAD_OPTIONS, context=None))
    assert not (tmp_path / "d").exists()


def _wav(path, samples):
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def _cli(*args, **kw):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=600, **kw)


def test_cli_detect_and_the_streaming_example(tmp_path, vad):
    import json
    import sys

    from .conftest import REPO

    clip = _wav(tmp_path / "clip.wav", speech_like())
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    out = _cli(sys.executable, "-m", "edgert", "detect", vad.bundle.path, clip, tmp_path / "bad.wav")
    assert out.returncode == 2 and "bad.wav: not a WAV file" in out.stderr
    (line,) = out.stdout.splitlines()
    assert json.loads(line)["segments"] == [list(s) for s in vad.detect(read_wav(clip)[0])]
    example = _cli(sys.executable, REPO / "examples" / "stream_vad.py", vad.bundle.path, clip)
    assert example.returncode == 0, example.stderr
    changes = [float(x.split()[0]) for x in example.stdout.splitlines() if " s  " in x]
    every = {"min_speech_ms": 0, "min_silence_ms": 0, "speech_pad_ms": 0, "end_threshold": 0.5}
    runs = vad.detect(read_wav(clip)[0], **every)  # every run of speech windows
    assert changes == pytest.approx([t for run in runs for t in run], abs=1e-6)
    assert len(runs) >= 1
    assert "real-time factor" in example.stdout


@pytest.mark.skipif(EMULATED, reason="too slow under qemu")
def test_bench_reports_the_real_time_factor(tmp_path, vad):
    import json
    import sys

    clip = _wav(tmp_path / "clip.wav", speech_like())
    args = ["--quick", "--batch-sizes", "1,4", "--cold-runs", "0", "--energy-meter", "off", "--rounds", "2"]
    out = _cli(sys.executable, "-m", "edgert", "bench", vad.bundle.path, "--input", clip, *args,
               "--json", tmp_path / "r.json", "--markdown", "-")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["target"]["input"]["window_ms"] == 32.0 and result["target"]["kind"] == "audio"
    rtf = result["summary"]["p50"] / 32.0
    assert f"{rtf:.4f}" in out.stdout and "real-time factor" in out.stdout
