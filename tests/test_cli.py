"""`edgert embed` and `edgert classify`: JSON lines equal to the library's results, from every input source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import edgert


def _run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "edgert.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ},
    )


def test_embed_from_args_file_and_stdin(minilm_bundle, tmp_path):
    texts = ["first line", "second, with ünïcode", "第三"]
    want = edgert.load(minilm_bundle).embed(texts)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    runs = [
        _run("embed", str(minilm_bundle), *sum((["-t", t] for t in texts), [])),
        _run("embed", str(minilm_bundle), "--file", str(src)),
        _run("embed", str(minilm_bundle), stdin="\n".join(texts) + "\n"),
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert [row["text"] for row in rows] == texts
        np.testing.assert_allclose(np.array([row["embedding"] for row in rows]), want, atol=1e-6)


def test_classify_writes_labels(classifier_bundle):
    r = _run("classify", str(classifier_bundle), "-t", "good", "-t", "bad", "--top-k", "2", "--variant", "fp32")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    want = edgert.load(classifier_bundle, variant="fp32").classify(["good", "bad"], top_k=2)
    assert [[x["label"] for x in row["labels"]] for row in rows] == [[p.label for p in w] for w in want]


def test_wrong_task_and_missing_file_are_one_line_errors(classifier_bundle, minilm_bundle, tmp_path):
    r = _run("embed", str(classifier_bundle), "-t", "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "bundle task is 'text-classification'" in r.stderr
    r = _run("embed", str(minilm_bundle), "--file", str(tmp_path / "nope.txt"))
    assert r.returncode == 2 and "nope.txt: cannot read" in r.stderr and "Traceback" not in r.stderr


def test_device_reports_kernels():
    r = _run("device")
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    assert f"kernels {edgert.KERNELS}" in flat
    from edgert.device import U8S8_SATURATES, u8s8_exact

    # whether the VNNI per-token form can run here, as edgert.load() will decide it
    assert ("int8 u8 x s8 exact:" if u8s8_exact() else f"int8 u8 x s8 {U8S8_SATURATES}") in flat
    for meter in ("rapl", "hwmon", "vcgencmd"):  # each meter says whether it is usable, and why not
        assert f"energy {meter} usable:" in flat or f"energy {meter} not usable:" in flat


def test_python_dash_m_edgert_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "edgert", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"edgert {edgert.__version__}"


def test_every_command_help_shows_defaults_and_an_example():
    from edgert.cli.main import EXAMPLES, build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert set(commands) == set(EXAMPLES)
    for name, sub in commands.items():
        text = sub.format_help()
        assert f"example:\n  {EXAMPLES[name]}" in text, name
        assert EXAMPLES[name].split()[0] in ("edgert", "printf"), name
    assert "(default: 1,8,32)" in commands["bench"].format_help()
