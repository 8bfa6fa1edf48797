"""The rest of the door, through the command line: outputs that are not regular files, unbounded inputs,
non-finite budgets, an unhashed tokenizer, contradictory crop flags, and what inspect shows of an import. Each
ends in one line and exit 2, with nothing replaced or read without bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import edgert
from edgert.errors import BundleError
from edgert.importer import ImportOptions, ModelImportError, import_model

from .helpers import VAD_OPTIONS, classifier, vad_model


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edgert", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def _one_line(r, text):
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and text in r.stderr and "Traceback" not in r.stderr, (
        r.stderr
    )


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_bench_outputs_never_replace_a_symlink_or_fifo(tmp_path, minilm_bundle, kind):
    """Before: --json PATH replaced a device node, FIFO or symlink with a regular file (as root, /dev/full)."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "run.json"
    if kind == "symlink":
        out.symlink_to(target)
    else:
        os.mkfifo(out)
    r = _cli("bench", minilm_bundle, "--quick", "--json", out)
    _one_line(r, "--json")
    assert target.read_text() == "keep me" and (out.is_symlink() if kind == "symlink" else not out.is_file())


def test_bench_input_must_be_a_bounded_regular_file(minilm_bundle):
    """Before: --input /dev/zero read without bound."""
    _one_line(_cli("bench", minilm_bundle, "--quick", "--input", "/dev/zero"), "not a regular file")


def test_a_non_finite_budget_is_refused(minilm_bundle):
    """Before: p95<=1e999ms became infinite and always passed."""
    _one_line(_cli("bench", minilm_bundle, "--quick", "--budget", "p95<=1e999ms"), "is not a finite limit")


def test_the_tokenizer_is_hashed_without_pre_files(tmp_path, minilm_bundle):
    """A manifest without pre.files (valid under the schema) left the tokenizer unhashed: now every file the
    pipeline opens is hashed, listed there or not."""
    bundle = tmp_path / "b"
    shutil.copytree(minilm_bundle, bundle)
    m = json.loads((bundle / "edgert.json").read_text())
    m["pre"].pop("files", None)
    (bundle / "edgert.json").write_text(json.dumps(m))
    edgert.load(bundle, variant="fp32")  # untouched: loads
    tok = bundle / "tokenizer.json"
    data = tok.read_bytes()
    st = tok.stat()
    tok.write_bytes(data.replace(b'"[UNK]"', b'"[UNQ]"', 1))
    os.utime(tok, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BundleError, match="tokenizer.json: sha256 mismatch"):
        edgert.load(bundle, variant="fp32")


def test_crop_larger_than_the_resize_is_refused(tmp_path):
    """Before: --crop larger than --size padded the image with black."""
    with pytest.raises(ModelImportError, match="crop: 40x40 is larger than size 32x32"):
        ImportOptions(task="image-classification", size=(32, 32), crop=(40, 40))
    with pytest.raises(ModelImportError, match="crop: 300x300 is larger than shortest_edge 256"):
        ImportOptions(task="image-classification", shortest_edge=256, crop=(300, 300))


def test_inspect_shows_every_setting_of_an_import(tmp_path):
    """Before: inspect showed none of an imported bundle's preprocessing or audio settings."""
    img = import_model(
        classifier(tmp_path / "c.onnx", probabilities=True), tmp_path / "img",
        ImportOptions(task="image-classification", channel_order="BGR", mean=(0.5,), std=(0.25,), resample="lanczos"),
    )  # fmt: skip
    from edgert.cli.render import card_rows

    assert _cli("inspect", img.path).returncode == 0
    rows = dict(card_rows(img))
    assert rows["image"] == "resize to 8x8 (lanczos), x 0.00392157, - mean [0.5] / std [0.25]; BGR, NCHW"
    assert rows["scores"] == "probs holds probabilities: used as they are"
    vad = import_model(vad_model(tmp_path / "v.onnx"), tmp_path / "vad", VAD_OPTIONS)
    assert dict(card_rows(vad))["audio"] == (
        "16000 Hz, window 512 samples + context 64 into input, rate into sr, state state<-stateN [1, 4]"
    )


def test_a_stream_shared_between_threads_runs_every_sample_once(tmp_path):
    """Before: one stream pushed from two threads duplicated 64 to 128 samples per 20 s."""
    import threading

    vad = edgert.load(import_model(vad_model(tmp_path / "vad.onnx"), tmp_path / "vad", VAD_OPTIONS).path)
    stream = vad.stream()
    x = np.random.default_rng(0).normal(0, 0.1, 160_000).astype(np.float32)
    chunks = [x[i : i + 1000] for i in range(0, x.size, 1000)]
    counts: list[int] = []

    def feed(part):
        counts.append(sum(len(stream.push(c)) for c in part))

    threads = [threading.Thread(target=feed, args=(chunks[k::2],)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == stream.windows == x.size // 512 and len(stream._buffer) == x.size % 512
