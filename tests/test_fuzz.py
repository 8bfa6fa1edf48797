"""The kernels under misuse and fuzzing, each in a process of its own: a crash fails the test, not the session.

Before the kernels checked their own inputs, each misuse below corrupted the heap or wrote out of bounds (a tuple
row, a type row longer than its id row, k = 0, a resampling window past the edge), and the fuzz run found a
segfault in the raw table and NaN disagreements in mean_pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgert import kernels

from .helpers import EMULATED

FUZZ = Path(__file__).with_name("fuzz_kernels.py")
COMPILED = "cython" in kernels.implementations()
needs_compiled = pytest.mark.skipif(
    not COMPILED and os.environ.get("EDGERT_EXTENSIONS") != "1",
    reason="the compiled kernels are not built here: nothing to fuzz against the NumPy reference",
)


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode < 0:
        pytest.fail(f"crashed with {signal.Signals(-proc.returncode).name}:\n{proc.stderr[-2000:]}")
    return proc


MISUSE = {
    "tuple row": "packing.pack([(1, 2, 3)], None, 0)",
    "type row longer than id row": "packing.pack([[1]], [[1] * 100000], 0)",
    "type rows missing": "packing.pack([[1], [2]], [[0]], 0)",
    "numeric string token": "packing.pack([['12']], None, 0)",
    "top_k k=0": "scores.top_k(np.ones((2, 3), np.float32), 0)",
    "top_k k past the row": "scores.top_k(np.ones((2, 3), np.float32), 4)",
    "softmax of no classes": "scores.softmax(np.ones((2, 0), np.float32))",
    "mean_pool mask too wide": "pooling.mean_pool(np.ones((1, 2, 4), np.float32), np.ones((1, 50), np.int64))",
    "window past the edge": "image.resample_horizontal(np.zeros((2, 2, 3), np.uint8), "
    "np.array([[0, 100000]], np.int32), np.ones((1, 100000), np.int32))",
    "window before the start": "image.resample_vertical(np.zeros((4, 2, 3), np.uint8), "
    "np.array([[-50, 2]], np.int32), np.ones((1, 2), np.int32))",
    "count wider than the weights": "image.resample_vertical(np.zeros((4, 2, 3), np.uint8), "
    "np.array([[0, 4]], np.int32), np.ones((1, 2), np.int32))",
    "lut too short": "image.to_chw(np.zeros((2, 2, 3), np.uint8), np.ones((1, 256), np.float32), "
    "np.zeros((3, 2, 2), np.float32))",
    "out too small": "image.to_chw(np.zeros((8, 8, 3), np.uint8), np.ones((3, 256), np.float32), "
    "np.zeros((3, 1, 1), np.float32))",
}


@needs_compiled
@pytest.mark.parametrize("case", sorted(MISUSE), ids=sorted(MISUSE))
def test_compiled_kernel_refuses_misuse_without_crashing(case):
    code = (
        "import numpy as np\n"
        "from edgert.kernels import _image as image, _packing as packing, _pooling as pooling, _scores as scores\n"
        f"try:\n    {MISUSE[case]}\nexcept (TypeError, ValueError) as exc:\n    print('refused:', exc)\n"
        "else:\n    print('accepted')\n"
    )
    proc = _run(["-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:"), proc.stdout


@pytest.mark.parametrize("case", sorted(MISUSE), ids=sorted(MISUSE))
def test_reference_kernel_refuses_the_same_misuse(case):
    """The NumPy reference refuses the same inputs, so the two implementations agree on them too."""
    import numpy as np  # noqa: F401  (used by the evaluated calls)

    from edgert.kernels import reference as ref

    namespace = {"packing": ref, "pooling": ref, "scores": ref, "image": ref, "np": np}
    with pytest.raises((TypeError, ValueError)):
        eval(MISUSE[case], namespace)


@needs_compiled
def test_fuzz_compiled_against_numpy():
    """Every kernel, compiled against the reference, on every input class; 60 examples per property here,
    benchmarks/fuzz_campaign.py runs thousands."""
    examples = 25 if EMULATED else 60
    proc = _run([str(FUZZ), "--examples", str(examples), "--seed", "1"])
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["implementation"] == "cython"
    props = summary["properties"]
    assert set(props) == {
        "mean_pool",
        "l2_normalize",
        "softmax",
        "top_k",
        "pack",
        "resize",
        "to_chw",
        "raw_misuse",
    }
    for name, p in props.items():
        assert p["examples"] >= examples // 2, (name, p)  # Hypothesis may stop early on a small space
        assert p["mismatches"] == 0, (name, p)
