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


def test_a_typed_caller_narrows_load_without_a_private_import(tmp_path):
    """edgert.load returns a Task; the pipeline classes are exported, so a strict type checker accepts narrowing
    with isinstance and then knows the embedder's methods (mypy is the oracle)."""
    import shutil

    import pytest

    if shutil.which("mypy") is None and not _has_mypy():
        pytest.skip("mypy is not installed (dev extra)")
    code = tmp_path / "caller.py"
    code.write_text(
        "import numpy as np\nimport edgert\n\n\ndef vectors(path: str) -> np.ndarray:\n"
        "    model = edgert.load(path)\n    assert isinstance(model, edgert.TextEmbedder)\n"
        "    return model.embed(['x'])\n"
    )
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(code)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _has_mypy() -> bool:
    import importlib.util

    return importlib.util.find_spec("mypy") is not None
