"""The runtime and the CLI's front door never pull in the export stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("torch", "optimum", "transformers", "sentence_transformers", "onnx")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ})
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_edgert_is_light():
    assert not _loaded_after("import edgert") & set(HEAVY)


def test_cli_help_is_light():
    code = (
        "import contextlib, io\nfrom edgert.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main(['--help'])\n"
        "    except SystemExit:\n        pass"
    )
    assert not _loaded_after(code) & set(HEAVY)


def test_runtime_path_is_light(minilm_bundle, classifier_bundle):
    code = (
        f"import edgert\nm = edgert.load({str(minilm_bundle)!r})\nv = m.embed(['hello'])\n"
        f"c = edgert.load({str(classifier_bundle)!r}).classify(['hello'])\nassert v.shape == (1, 384)"
    )
    assert not _loaded_after(code) & set(HEAVY)
