"""Every kernel, in every implementation built here, against the NumPy reference and plain-NumPy oracles."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgert import kernels

IMPLS = sorted(kernels.implementations())
#: Both implementations always appear: without a compiled build the "cython" cases are skipped, visibly, rather
#: than dropped (EDGERT_EXTENSIONS=1 makes a missing build an import error instead).
impl_param = pytest.mark.parametrize(
    "impl",
    [
        pytest.param(
            "cython",
            id="kernels=cython",
            marks=pytest.mark.skipif("cython" not in IMPLS, reason="the compiled kernels are not built here"),
        ),
        pytest.param("numpy", id="kernels=numpy"),
    ],
)


def test_compiled_kernels_are_built_when_required():
    if os.environ.get("EDGERT_EXTENSIONS") != "1":
        pytest.skip("EDGERT_EXTENSIONS=1 is not set: a build without compiled kernels is allowed here")
    assert kernels.IMPLEMENTATION == "cython"
    assert set(kernels.IMPLEMENTATIONS.values()) == {"cython", "numpy"}
    assert [k for k, v in kernels.IMPLEMENTATIONS.items() if v == "numpy"] == ["cls_pool"]


def _selection(env: dict[str, str], hide: str | None = None) -> tuple[int, str]:
    """edgert.kernels' choice in a fresh process; ``hide`` makes one compiled module fail to import there."""
    import subprocess
    import sys

    code = "import edgert.kernels as k, json; print(json.dumps(k.IMPLEMENTATIONS))"
    if hide:
        code = f"import sys; sys.modules['edgert.kernels._{hide}'] = None\n{code}"
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_extensions_switch_zero_forces_numpy_everywhere():
    code, out = _selection({"EDGERT_EXTENSIONS": "0"})
    assert code == 0 and set(json.loads(out).values()) == {"numpy"}


def test_extensions_switch_rejects_other_values():
    code, out = _selection({"EDGERT_EXTENSIONS": "yes"})
    assert code != 0 and "EDGERT_EXTENSIONS must be 0 (NumPy only), 1 (compiled only) or unset" in out


def test_selection_is_per_kernel():
    """One compiled module missing drops only its own kernels, unless EDGERT_EXTENSIONS=1 requires it."""
    if "cython" not in IMPLS:
        pytest.skip("the compiled kernels are not built here")
    code, out = _selection({"EDGERT_EXTENSIONS": ""}, hide="scores")
    selected = json.loads(out)
    assert code == 0
    assert selected["softmax"] == selected["top_k"] == "numpy"  # they live in the missing module
    assert selected["pack"] == selected["mean_pool"] == selected["to_chw"] == "cython"
    code, out = _selection({"EDGERT_EXTENSIONS": "1"}, hide="scores")
    assert code != 0 and "the compiled kernel module scores does not import" in out


floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)
dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def hidden_and_mask(draw):
    dtype = draw(dtypes)
    b, t, d = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 17))
    hidden = draw(hnp.arrays(dtype, (b, t, d), elements=floats))
    mask = draw(hnp.arrays(np.int64, (b, t), elements=st.integers(0, 1)))
    return hidden, mask


@impl_param
@settings(max_examples=150, deadline=None)
@given(data=hidden_and_mask())
def test_mean_pool_matches_numpy_oracle(impl, data):
    hidden, mask = data
    got = kernels.mean_pool(hidden, mask, impl=impl)
    # oracle written out plainly: the average of the masked rows, zeros for an empty mask
    want = np.zeros((hidden.shape[0], hidden.shape[2]), dtype=np.float64)
    for b in range(hidden.shape[0]):
        rows = hidden[b][mask[b] != 0].astype(np.float64)
        if len(rows):
            want[b] = rows.mean(axis=0)
    assert got.dtype == hidden.dtype
    tol = 1e-4 if hidden.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 1e3)


@settings(max_examples=100, deadline=None)
@given(data=hidden_and_mask())
def test_cls_pool_is_first_token(data):
    """The reference only: a compiled cls_pool lost to NumPy's slice copy (see edgert.kernels)."""
    hidden, _ = data
    np.testing.assert_array_equal(kernels.cls_pool(hidden, impl="numpy"), hidden[:, 0, :])


@impl_param
@settings(max_examples=150, deadline=None)
@given(
    x=st.one_of(
        hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=floats),
        hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=floats),
    )
)
def test_l2_normalize_matches_torch_semantics(impl, x):
    got = kernels.l2_normalize(x, impl=impl)
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    want = x / np.maximum(norms, 1e-12)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    nonzero = norms[:, 0] > 1e-6
    np.testing.assert_allclose(np.linalg.norm(got[nonzero], axis=1), 1.0, rtol=1e-5)


@impl_param
def test_l2_normalize_zero_row_stays_zero(impl):
    x = np.zeros((2, 8), dtype=np.float32)
    x[1, 3] = 2.0
    got = kernels.l2_normalize(x, impl=impl)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[0], 0.0)
    assert got[1, 3] == 1.0


@impl_param
@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=30),
        elements=st.floats(-80, 80, allow_nan=False, width=32),
    )
)
def test_softmax_matches_scipy(impl, x):
    from scipy.special import softmax as scipy_softmax

    got = kernels.softmax(x, impl=impl)
    np.testing.assert_allclose(got, scipy_softmax(x.astype(np.float64), axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@impl_param
def test_softmax_is_stable_for_huge_logits(impl):
    x = np.array([[1e4, 1e4 - 1.0, -1e4]], dtype=np.float32)
    got = kernels.softmax(x, impl=impl)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0, :2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))], rtol=1e-6)


@impl_param
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_non_finite_rows_follow_numpy(impl, dtype):
    # Rows wider than 8 take the compiled float32 fast path; NaN and infinite maxima fall back to NumPy semantics.
    rows = np.full((5, 19), -2.0)
    rows[:, 7] = 3.0
    rows[0, 11] = np.nan
    rows[1, 4] = np.inf
    rows[2, :] = -np.inf
    rows[3, 2] = -np.inf
    x = rows.astype(dtype)
    with np.errstate(invalid="ignore"):
        want = kernels.softmax(x, impl="numpy")
        got = kernels.softmax(x, impl=impl)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True)
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all() and np.isnan(got[2]).all()
    assert got[3, 2] == 0.0 and np.isfinite(got[3:]).all()


@impl_param
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_top_k_matches_stable_argsort(impl, data):
    dtype = data.draw(dtypes)
    x = data.draw(
        hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=2, max_dims=2, max_side=25),
            elements=st.sampled_from([0.0, 1.0, -1.0, 0.5, 3.25, -7.0, 1e30, -1e30]),
        )
    )
    k = data.draw(st.integers(1, x.shape[1]))
    idx, val = kernels.top_k(x, k, impl=impl)
    # oracle: a stable sort on the negated scores keeps ties in index order
    want = np.argsort(-x.astype(np.float64), axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(val, np.take_along_axis(x, want, axis=1))


@impl_param
def test_top_k_ranks_nan_last(impl):
    x = np.array([[np.nan, 2.0, np.nan, 5.0]], dtype=np.float32)
    idx, _ = kernels.top_k(x, 4, impl=impl)
    np.testing.assert_array_equal(idx[0], [3, 1, 0, 2])


@impl_param
@settings(max_examples=150, deadline=None)
@given(
    ids=st.lists(st.lists(st.integers(0, 2**40), max_size=20), min_size=1, max_size=8),
    pad=st.integers(0, 5),
    with_types=st.booleans(),
)
def test_pack_pads_to_longest(impl, ids, pad, with_types):
    types = [[(i + j) % 2 for j in range(len(row))] for i, row in enumerate(ids)] if with_types else None
    input_ids, mask, type_ids = kernels.pack(ids, types, pad, impl=impl)
    width = max(len(r) for r in ids)
    assert input_ids.shape == mask.shape == (len(ids), width)
    assert input_ids.dtype == mask.dtype == np.int64
    for i, row in enumerate(ids):
        assert input_ids[i, : len(row)].tolist() == row
        assert (input_ids[i, len(row) :] == pad).all()
        assert mask[i].tolist() == [1] * len(row) + [0] * (width - len(row))
        if with_types:
            assert type_ids[i, : len(row)].tolist() == types[i]
            assert (type_ids[i, len(row) :] == 0).all()
    assert (type_ids is None) == (not with_types)


@impl_param
def test_pack_empty_batch(impl):
    ids, mask, types = kernels.pack([], None, 0, impl=impl)
    assert ids.shape == mask.shape == (0, 0)
    assert types is None


def test_wrappers_reject_bad_shapes():
    with pytest.raises(ValueError, match="mask shape"):
        kernels.mean_pool(np.zeros((2, 3, 4), np.float32), np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        kernels.top_k(np.zeros((1, 3), np.float32), 4)
    with pytest.raises(ValueError, match="same lengths"):
        kernels.pack([[1, 2]], [[0]])


def test_float16_and_int32_inputs_are_cast():
    hidden = np.ones((1, 2, 3), dtype=np.float16)
    out = kernels.mean_pool(hidden, np.array([[1, 0]], dtype=np.int32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, 1.0)


@pytest.mark.parametrize("classes", [3, kernels.SOFTMAX_COMPILED_MAX_CLASSES, kernels.SOFTMAX_COMPILED_MAX_CLASSES + 1])
def test_default_softmax_does_not_depend_on_the_batch(classes):
    """The default picks an implementation by row length only: a row's probabilities are bitwise the same alone
    and among batch-mates, on both sides of the threshold; long rows get the reference's exactly."""
    x = np.random.default_rng(0).standard_normal((32, classes)).astype(np.float32)
    batched = kernels.softmax(x)
    alone = np.concatenate([kernels.softmax(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(batched, alone)
    if classes > kernels.SOFTMAX_COMPILED_MAX_CLASSES:
        np.testing.assert_array_equal(batched, kernels.softmax(x, impl="numpy"))
