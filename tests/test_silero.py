"""The real Silero VAD model (shipped in the ``silero-vad`` package) imported as an edgert bundle: per-window
probabilities equal Silero's own ``OnnxWrapper``, and ``detect()`` gives the segments of Silero's own
``get_speech_timestamps`` on espeak-ng speech with pauses and background noise. The package is the oracle."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import edgert
from edgert.importer import ImportOptions, import_model

silero_vad = pytest.importorskip("silero_vad", reason="the silero-vad package (dev extra) is the oracle")
torch = pytest.importorskip("torch", reason="silero-vad's reference segmenter runs on torch tensors")
signal = pytest.importorskip("scipy.signal")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)", allow_module_level=True)

RATE = 16000
SILERO = ImportOptions(
    task="audio-stream",
    sample_rate=RATE,
    window=512,
    context=64,
    audio_input="input",
    sample_rate_input="sr",
    states=(("state", "stateN"),),
    output="output",
)
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Edge devices run small models close to the data.",
    "Please call me back after the meeting.",
    "Seven hundred and twenty three.",
    "Is it going to rain tomorrow afternoon?",
]


def _speech(tmp_path, sentence: str) -> np.ndarray:
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True, capture_output=True)
    samples, rate = edgert.tasks.audio.read_wav(wav)
    return signal.resample_poly(samples, RATE, rate).astype(np.float32)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Sentences separated by pauses of 0.15 to 1.2 s, with noise at about 20 dB below the speech."""
    tmp = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(7)
    parts = [np.zeros(int(0.6 * RATE), np.float32)]
    for sentence in SENTENCES:
        parts.append(_speech(tmp, sentence))
        parts.append(np.zeros(int(rng.uniform(0.15, 1.2) * RATE), np.float32))
    x = np.concatenate(parts)
    rms = np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2))
    x = x + rng.normal(0, rms / 10, x.size).astype(np.float32)
    return np.clip(x, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    from importlib.resources import files

    model = files("silero_vad") / "data" / "silero_vad.onnx"
    out = tmp_path_factory.mktemp("silero") / "vad"
    return edgert.load(import_model(str(model), out, SILERO).path)


def _mask(segments, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for a, b in segments:
        m[int(a) : int(b)] = True
    return m


def test_probabilities_equal_silero_onnx_wrapper(vad, recording):
    model = silero_vad.load_silero_vad(onnx=True)
    x = recording[: 512 * 200]
    want = [model(torch.from_numpy(x[i : i + 512]), RATE).item() for i in range(0, len(x), 512)]
    got = vad.stream().push(x)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_detect_agrees_with_get_speech_timestamps(vad, recording):
    model = silero_vad.load_silero_vad(onnx=True)
    theirs = silero_vad.get_speech_timestamps(torch.from_numpy(recording), model, sampling_rate=RATE)
    ours = vad.detect(recording)
    n = recording.size
    agree = np.mean(
        _mask([(s["start"], s["end"]) for s in theirs], n) == _mask([(a * RATE, b * RATE) for a, b in ours], n)
    )
    print(f"segments: silero {len(theirs)}, edgert {len(ours)}; samples agreeing {agree:.5f}")
    assert agree >= 0.99 and len(ours) == len(theirs)
    assert len(ours) >= 4  # the pauses split the speech: the comparison is not of one long segment


@pytest.mark.parametrize(
    "rules",
    [{}, {"threshold": 0.3}, {"threshold": 0.6, "neg_threshold": 0.2}, {"min_silence_duration_ms": 400},
     {"min_speech_duration_ms": 800, "speech_pad_ms": 0}, {"speech_pad_ms": 200}],
    ids=["defaults", "low-threshold", "end-threshold", "long-silence", "long-speech-no-pad", "wide-pad"],
)  # fmt: skip
def test_segmentation_rules_equal_silero_on_the_same_probabilities(vad, recording, rules):
    """The rules alone, fed the same per-window probabilities: the samples must be equal, not only close."""
    probs = vad.stream().push(recording, flush=True)
    theirs = silero_vad.utils_vad.get_speech_timestamps_from_probs(
        list(map(float, probs)), sampling_rate=RATE, audio_length_samples=recording.size, **rules
    )
    from edgert.tasks.segments import SegmentRules, speech_samples

    ours = speech_samples(
        probs,
        512,
        RATE,
        recording.size,
        SegmentRules(
            threshold=rules.get("threshold", 0.5),
            end_threshold=rules.get("neg_threshold"),
            min_speech_ms=rules.get("min_speech_duration_ms", 250),
            min_silence_ms=rules.get("min_silence_duration_ms", 100),
            speech_pad_ms=rules.get("speech_pad_ms", 30),
        ),
    )
    assert ours == [(s["start"], s["end"]) for s in theirs]
