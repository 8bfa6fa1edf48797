"""Every bad input ends in one line that names its cause and exit code 2, and loses no good work.

Each case here ended in a traceback (exit 1) before, or in a wrong answer: a negative energy that passed a budget,
"nanx faster", "false" read as true, a 16-bit image saturated to white.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import edgert
from edgert.bundle import MANIFEST
from edgert.cli.main import main
from edgert.errors import BundleError, EdgertError, InputError, TaskError


def _cli(capsys, argv, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _variant(src: Path, dst: Path, edit) -> Path:
    """A bundle that shares src's files (hard links) with an edited manifest."""
    dst.mkdir()
    for f in src.iterdir():
        if f.name != MANIFEST:
            os.link(f, dst / f.name)
    manifest = json.loads((src / MANIFEST).read_text())
    edit(manifest)
    (dst / MANIFEST).write_text(json.dumps(manifest))
    return dst


# --- texts on the command line ------------------------------------------------------------------------------


def test_invalid_utf8_line_on_stdin_is_skipped_and_the_rest_processed(capsys, monkeypatch, minilm_bundle):
    code, out, err = _cli(
        capsys, ["embed", str(minilm_bundle)], b"good one\n\xff\xfe bad\nanother good\r\n", monkeypatch
    )
    assert code == 2
    assert [json.loads(ln)["text"] for ln in out.splitlines()] == ["good one", "another good"]
    assert "stdin:2: not UTF-8" in err and "skipped" in err


def test_invalid_utf8_line_in_a_file_names_the_file_and_line(capsys, tmp_path, minilm_bundle):
    f = tmp_path / "texts.txt"
    f.write_bytes(b"one\ntwo\n\xc3\x28\nfour\n")
    code, out, err = _cli(capsys, ["embed", str(minilm_bundle), "--file", str(f)])
    assert code == 2
    assert len(out.splitlines()) == 3
    assert "texts.txt:3: not UTF-8" in err


@pytest.mark.parametrize(
    "argv, cause",
    [
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--top-k", "0"], "--top-k: must be at least 1"),
        (["-t", "hi", "--file", "texts.txt"], "pass --text or --file, not both"),
        (["-t", "ok", "-t", "a\udcffb"], "--text #2: not valid UTF-8 text"),
    ],
    ids=["batch-size-0", "top-k-0", "text-and-file", "surrogate-escaped-argv"],
)
def test_bad_text_arguments_are_one_line(capsys, minilm_bundle, argv, cause):
    command = "classify" if "--top-k" in argv else "embed"
    code, out, err = _cli(capsys, [command, str(minilm_bundle), *argv])
    assert code == 2 and out == ""
    assert cause in _one_line(err)


def test_lone_surrogate_in_the_api_names_the_text(minilm_bundle):
    model = edgert.load(minilm_bundle)
    with pytest.raises(InputError, match=r"texts\[1\] is not valid Unicode: a lone surrogate U\+D800 at position 1"):
        model.embed(["fine", "a\ud800b"])
    with pytest.raises(InputError, match="batch_size must be a whole number >= 1"):
        model.embed(["fine"], batch_size=0)


# --- manifest and preprocessor values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key, value, cause",
    [
        ("pre", "max_length", "abc", "max_length must be a whole number >= 2, got 'abc'"),
        ("pre", "max_length", True, "max_length must be a whole number"),
        ("pre", "pad_id", -1, "pad_id must be a whole number >= 0"),
        ("post", "normalize", "false", "normalize must be true or false, got 'false'"),
        ("post", "pooling", "max", "pooling must be one of mean, cls, none"),
        ("post", "dim", 0, "dim must be a whole number >= 1"),
    ],
)
def test_wrong_typed_manifest_values_are_refused(tmp_path, minilm_bundle, section, key, value, cause):
    bundle = _variant(minilm_bundle, tmp_path / "b", lambda m: m[section].__setitem__(key, value))
    with pytest.raises(BundleError, match=cause.replace("(", r"\(").replace(")", r"\)")):
        edgert.load(bundle)


@pytest.mark.parametrize(
    "key, value, cause",
    [
        ("size", 0, "size .*'height': 0.* is not supported"),
        ("size", {"height": "224", "width": 224}, "is not supported"),
        ("do_normalize", "false", "do_normalize must be true or false"),
        ("rescale_factor", -1, "rescale_factor must be a number > 0"),
        ("image_mean", [0.5, "x", 0.5], "image_mean must be a list of numbers"),
        ("image_std", [0.5, 0.5], "image_std must be one finite number or three"),
        ("resample", 9, "resample must be one of"),
    ],
)
def test_wrong_typed_image_preprocessor_values_are_refused(tmp_path, vit_bundle, key, value, cause):
    bundle = _variant(vit_bundle, tmp_path / "b", lambda m: m["pre"].__setitem__(key, value))
    with pytest.raises(TaskError if key == "size" else BundleError, match=cause):
        edgert.load(bundle)


# --- images ---------------------------------------------------------------------------------------------------


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buf, "PNG")
    return buf.getvalue()


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    from edgert.tasks.image import to_rgb

    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(bomb)  # 144 megapixels in a file of a few kilobytes
    assert bomb.stat().st_size < 200_000
    with pytest.raises(InputError, match="144.0 megapixels, over the limit of 50"):
        to_rgb(bomb)
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)  # past Pillow's own limit too
    with pytest.raises(InputError, match="too large to decode safely"):
        to_rgb(huge)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    from edgert.tasks.image import to_rgb

    png = _png(np.zeros((100, 100, 3), dtype=np.uint8))
    monkeypatch.setenv("EDGERT_MAX_IMAGE_PIXELS", "5000")
    with pytest.raises(InputError, match="over the limit of 0.005"):
        to_rgb(png)
    monkeypatch.setenv("EDGERT_MAX_IMAGE_PIXELS", "0")
    assert to_rgb(png).shape == (100, 100, 3)
    monkeypatch.setenv("EDGERT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(InputError, match="EDGERT_MAX_IMAGE_PIXELS must be a whole number"):
        to_rgb(png)


def test_sixteen_bit_grey_is_scaled_not_saturated():
    pytest.importorskip("PIL")
    from edgert.tasks.image import to_rgb

    wide = np.array([[0, 257, 32896, 65535], [128, 129, 40000, 1000]], dtype=np.uint16)
    got = to_rgb(_png(wide))
    want = np.round(wide.astype(np.float64) * 255 / 65535).astype(np.uint8)  # oracle: exact scaling, rounded
    np.testing.assert_array_equal(got[:, :, 0], want)
    np.testing.assert_array_equal(got[:, :, 0], got[:, :, 2])


def test_float_pixels_are_refused_clearly():
    pytest.importorskip("PIL")
    from PIL import Image

    from edgert.tasks.image import to_rgb

    im = Image.fromarray(np.zeros((4, 4), dtype=np.float32), "F")
    with pytest.raises(InputError, match="32-bit float\\) have no fixed range"):
        to_rgb(im)


def test_classify_keeps_the_good_images_and_reports_the_bad(capsys, tmp_path, vit_bundle):
    pytest.importorskip("PIL")
    good = tmp_path / "good.png"
    good.write_bytes(_png(np.full((40, 40, 3), 120, dtype=np.uint8)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    code, out, err = _cli(capsys, ["classify", str(vit_bundle), "-i", str(good), "-i", str(bad), "-i", str(good)])
    assert code == 2
    assert [json.loads(ln)["image"] for ln in out.splitlines()] == [str(good), str(good)]
    assert "bad.png: not a readable image" in err


# --- bench and compare ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, cause",
    [
        (["--watts-per-core", "-1"], "--watts-per-core must be a power in watts, above 0"),
        (["--energy-time", "-2"], "--energy-time must be > 0 seconds"),
        (["--energy-time", "nan"], "must be finite"),
        (["--budget", "rss<=100MB", "--cold-runs", "0"], "budget cannot be measured by this run: rss<=100MB"),
        (["--budget", "energy<=1mJ", "--energy-meter", "off"], "energy<=1mJ (--energy-meter is off)"),
        (["--json", "{file}/out.json"], "is a file, not a directory"),
        (["--plot", "{tmp}/plot.txt"], "give a .png, .svg, .pdf or .jpg file name"),
        (["--input", "{photo}"], "photo.jpg:1: not UTF-8"),
    ],
    ids=["negative-watts", "negative-energy-time", "nan-energy-time", "rss-unmeasured", "energy-off", "json-path",
         "plot-suffix", "image-as-texts"],
)  # fmt: skip
def test_bench_refuses_before_any_work(capsys, tmp_path, minilm_bundle, argv, cause):
    (tmp_path / "file").write_text("x")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    argv = [a.format(file=tmp_path / "file", tmp=tmp_path, photo=tmp_path / "photo.jpg") for a in argv]
    code, out, err = _cli(capsys, ["bench", str(minilm_bundle), "--quick", "--cold-runs", "0", *argv])
    assert code == 2
    assert cause in _one_line(err)


SAVED = Path(__file__).parent / "data" / "bench" / "v1_a.json"  # written by edgert 423de09


def _result(tmp_path: Path, name: str, change=None, v1: bool = False) -> str:
    """A real bench result (today's format, or the first one as it was written), with CHANGE applied."""
    from edgert.bench import records

    data = json.loads(SAVED.read_text()) if v1 else records.load(SAVED).to_json()
    if change is not None:
        change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _set(path: str, value):
    """A change that sets the value at PATH ("configs.0.latency.rounds_p50_ms.1") to VALUE."""

    def change(data):
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in parents:
            data = data[key]
        if value is _DELETE:
            del data[last]
        else:
            data[last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    "change, v1, cause",
    [
        (_set("configs", "lots"), False, "$.configs: expected a list, got text"),
        (_set("configs.0.threads", _DELETE), False, "$.configs[0].threads: required key missing"),
        (_set("configs.0.latency.rounds_p50_ms.1", float("nan")), False, "not valid JSON (NaN is not a number"),
        (_set("configs.0.latency.rounds_p50_ms.1", -1.0), False, "latency round medians: -1.0 is not a number > 0"),
        (_set("configs.0.latency.samples_ns.3", 2.5), False, "samples_ns[3]: expected a whole number, got 2.5"),
        (_set("noise", ["busy"]), False, "$.noise: expected an object, got a list"),
        (_set("energy.joules", -3.0), False, "energy: -3.0 J over"),
        (_set("settings.rounds", 0), False, "$.settings: rounds: must be between 1 and 100, got 0"),
        (_set("schema", "edgert.bench/9"), False, "schema 'edgert.bench/9'; this version reads 'edgert.bench/2'"),
        (_set("configs.0.threads", _DELETE), True, "not a readable edgert.bench/1 result (KeyError: 'threads')"),
        (_set("configs.0.latency.rounds_p50_ms.1", "10"), True, "rounds_p50_ms[1]: expected a finite number"),
    ],
    ids=["configs-not-a-list", "missing-threads", "nan-sample", "negative-sample", "fractional-ns", "noise-not-a-dict",
         "neg-energy", "bad-setting", "unknown-schema", "v1-missing-threads", "v1-text-sample"],
)  # fmt: skip
def test_compare_refuses_malformed_results(capsys, tmp_path, change, v1, cause):
    a = _result(tmp_path, "a.json")
    b = _result(tmp_path, "b.json", change, v1=v1)
    code, out, err = _cli(capsys, ["compare", a, b])
    assert code == 2
    line = _one_line(err)
    assert "b.json" in line and cause in line


def test_compare_reads_the_unchanged_files(capsys, tmp_path):
    a, b = _result(tmp_path, "a.json"), _result(tmp_path, "b.json", v1=True)
    code, out, err = _cli(capsys, ["compare", a, b])
    assert code == 0 and "latency p50 (threads 1): same (0.02835 ms)" in out, err


@pytest.mark.parametrize("flag", ["--threshold", "--fail-on"])
def test_compare_refuses_negative_thresholds(capsys, tmp_path, flag):
    a = _result(tmp_path, "a.json")
    code, out, err = _cli(capsys, ["compare", a, a, f"{flag}=-5%"])
    assert code == 2
    assert f"{flag}: '-5%' must be a percentage from 0%" in _one_line(err)


def test_unmeasured_budget_says_not_measured_not_violated():
    from edgert.bench.budget import evaluate, parse
    from edgert.bench.records import Summary

    rows = evaluate(parse("energy<=5mJ,p50<=10ms"), {"threads=1": Summary(energy=None, p50=12.0)})
    assert [(r.budget, r.status, r.passed) for r in rows] == [
        ("energy<=5mJ", "not measured", False),
        ("p50<=10ms", "violated", False),
    ]


def test_negative_watts_cannot_build_an_estimate():
    from edgert.device.meters import EstimateMeter

    with pytest.raises(EdgertError, match="watts per core must be above 0"):
        EstimateMeter(-3.0, "user")
