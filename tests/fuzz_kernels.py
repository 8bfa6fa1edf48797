"""Property fuzzing of every compiled kernel against the NumPy reference, on every input class
(non-finite values, empty rows, wrong types, odd dtypes, non-contiguous views), and misuse of the raw
implementation table, which must raise and never touch memory outside its arrays.

Run as a script, in a process of its own, so that a crash is a failed run and not a dead test session:

    python tests/fuzz_kernels.py --examples 40          # what tests/test_fuzz.py runs
    python tests/fuzz_kernels.py --examples 5000 --count  # a campaign (benchmarks/fuzz_campaign.py)

It prints one JSON line: per property, the examples run and the compiled-versus-NumPy mismatches found. Without
``--count`` the first mismatch fails the run with Hypothesis' shrunk example; with it, mismatches are counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgert import kernels
from edgert.kernels import resample as _resample

REF = "numpy"
FLOAT_DTYPES = (np.float16, np.float32, np.float64)

# Every float class: ordinary, huge (overflowing float32 sums is allowed to differ, so capped at 1e30), tiny and
# subnormal, signed zeros, and the non-finite values.
finite = st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False)
special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-38, 65504.0])
elements = st.one_of(finite, finite, finite, special)


@st.composite
def float_arrays(draw, ndim: int, min_side: int = 0, max_side: int = 7):
    """A float array of ``ndim`` dimensions in any float dtype, sometimes a non-contiguous view."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    shape = tuple(draw(st.integers(min_side, max_side)) for _ in range(ndim))
    with np.errstate(over="ignore"):
        x = draw(hnp.arrays(np.float64, shape, elements=elements)).astype(dtype)
    if draw(st.booleans()) and x.ndim >= 2:
        x = np.asfortranarray(x)
    if draw(st.booleans()) and x.ndim >= 1 and x.shape[-1] > 1:
        wide = np.zeros((*x.shape[:-1], x.shape[-1] * 2), dtype=x.dtype)
        wide[..., ::2] = x
        x = wide[..., ::2]  # same values, strided
    return x


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> str | None:
    """None when a and b agree: the same NaN and inf positions, finite values within float32 rounding."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return "NaN positions differ"
    if not np.array_equal(np.isposinf(a), np.isposinf(b)) or not np.array_equal(np.isneginf(a), np.isneginf(b)):
        return "inf positions differ"
    ok = np.isfinite(a)
    if ok.any():
        tol = 1e-5 * max(scale, 1e-30)
        err = np.abs(a[ok].astype(np.float64) - b[ok].astype(np.float64))
        bad = err > tol + 1e-4 * np.abs(b[ok].astype(np.float64))
        if bad.any():
            return f"values differ by up to {err.max():.3g} (tolerance {tol:.3g})"
    return None


def _scale(x: np.ndarray, n: int = 1) -> float:
    f = np.abs(x[np.isfinite(x)]).astype(np.float64)
    return float(f.max()) * n if f.size else 1.0


def _both(fn, *args, **kw):
    """(compiled outcome, reference outcome): each a result or the exception type it raised."""
    out = []
    for impl in ("cython", REF):
        try:
            out.append(fn(*args, impl=impl, **kw))
        except (TypeError, ValueError) as exc:
            out.append(type(exc))
    return out


def _same_refusal(a, b) -> str | None:
    if isinstance(a, type) or isinstance(b, type):
        return None if a is b else f"one raised, the other did not ({a!r} vs {b!r})"
    return ""  # both returned: the caller compares the results


# --- the properties: each returns None when the implementations agree, else what differs ---------------------


@st.composite
def pooling_case(draw):
    hidden = draw(float_arrays(3, max_side=6))
    b, t = hidden.shape[:2]
    if draw(st.integers(0, 9)) == 0:  # a mask of the wrong shape must be refused by both
        t = t + 1
    mask = draw(hnp.arrays(np.int64, (b, t), elements=st.integers(-2, 2)))
    return hidden, mask


def prop_mean_pool(case) -> str | None:
    hidden, mask = case
    a, b = _both(kernels.mean_pool, hidden, mask)
    why = _same_refusal(a, b)
    return why or (None if why is None else _close(a, b, _scale(hidden, hidden.shape[1])))


def prop_l2_normalize(x) -> str | None:
    a, b = _both(kernels.l2_normalize, x)
    why = _same_refusal(a, b)
    return why or (None if why is None else _close(a, b, 1.0))


def prop_softmax(x) -> str | None:
    a, b = _both(kernels.softmax, x)
    why = _same_refusal(a, b)
    return why or (None if why is None else _close(a, b, 1.0))


@st.composite
def top_k_case(draw):
    x = draw(float_arrays(2, max_side=9))
    return x, draw(st.integers(-1, x.shape[1] + 1))


def prop_top_k(case) -> str | None:
    x, k = case
    a, b = _both(kernels.top_k, x, k)
    why = _same_refusal(a, b)
    if why != "":
        return why
    if not np.array_equal(a[0], b[0]):
        return "indices differ"
    return None if np.array_equal(a[1], b[1], equal_nan=True) else "values differ"


int64s = st.integers(-(2**63), 2**63 - 1)
tokens = st.one_of(
    st.integers(0, 30000), int64s, st.booleans(), st.builds(np.int64, st.integers(0, 1000)), st.integers(2**63, 2**64)
)
odd_tokens = st.one_of(tokens, st.sampled_from(["12", 1.5, None, b"7", [1]]))


@st.composite
def pack_case(draw):
    rows = draw(st.lists(st.lists(tokens, max_size=8), max_size=6))
    if draw(st.integers(0, 5)) == 0 and rows:  # a wrong-typed token somewhere
        i = draw(st.integers(0, len(rows) - 1))
        rows[i] = [*rows[i], draw(odd_tokens)]
    types = None
    if draw(st.booleans()):
        types = [[draw(st.integers(0, 1)) for _ in r] for r in rows]
        if types and draw(st.integers(0, 5)) == 0:
            types[0] = [*types[0], 1]  # longer than its id row
    container = draw(st.sampled_from([list, tuple]))
    return [container(r) for r in rows], types, draw(st.integers(-5, 5))


def prop_pack(case) -> str | None:
    ids, types, pad = case
    a, b = [], []
    for impl, out in (("cython", a), (REF, b)):
        try:
            out.append(kernels.pack(ids, types, pad, impl=impl))
        except (TypeError, ValueError, OverflowError) as exc:
            out.append(type(exc))
    a, b = a[0], b[0]
    if isinstance(a, type) or isinstance(b, type):
        return None if a is b else f"one raised, the other did not ({a!r} vs {b!r})"
    for x, y in zip(a, b):
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return "arrays differ"
    return None


@st.composite
def resize_case(draw):
    h, w, c = draw(st.integers(1, 24)), draw(st.integers(1, 24)), draw(st.integers(1, 4))
    image = draw(hnp.arrays(np.uint8, (h, w, c)))
    if draw(st.booleans()):
        image = image[:, ::-1]  # a non-contiguous view
    return image, draw(st.integers(1, 30)), draw(st.integers(1, 30)), draw(st.sampled_from(sorted(_resample.NAMES)))


def prop_resize(case) -> str | None:
    image, h, w, f = case
    a, b = _both(kernels.resize, image, h, w, f)
    why = _same_refusal(a, b)
    if why != "":
        return why
    return None if np.array_equal(a, b) else "pixels differ"


@st.composite
def chw_case(draw):
    h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 4))
    image = draw(hnp.arrays(np.uint8, (h, w, c)))
    lut = draw(hnp.arrays(np.float32, (c, 256), elements=elements))
    return image, lut


def prop_to_chw(case) -> str | None:
    image, lut = case
    a, b = _both(kernels.to_chw, image, lut)
    why = _same_refusal(a, b)
    if why != "":
        return why
    return None if np.array_equal(a, b, equal_nan=True) else "values differ"


# Misuse of the raw implementation table, where nothing checks or casts on the kernel's behalf. Passing is not
# crashing: each call returns or raises. Where both return, they must agree.
@st.composite
def raw_case(draw):
    name = draw(
        st.sampled_from(["pack", "mean_pool", "l2_normalize", "softmax", "top_k", "resample_h", "resample_v", "to_chw"])
    )
    f32 = st.sampled_from([np.float32, np.float64])
    if name == "pack":
        row = st.one_of(st.lists(st.integers(0, 9), max_size=5), st.tuples(st.integers(0, 9)))
        rows = draw(st.lists(row, max_size=4))
        types = draw(st.one_of(st.none(), st.lists(st.lists(st.integers(0, 1), max_size=9), max_size=5)))
        return name, (rows, types, 0)
    if name == "mean_pool":
        hidden = draw(hnp.arrays(draw(f32), draw(hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=4))))
        mask = draw(hnp.arrays(np.int64, draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=5))))
        return name, (hidden, mask)
    if name in ("l2_normalize", "softmax", "top_k"):
        x = draw(hnp.arrays(draw(f32), draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=5))))
        return name, ((x, draw(st.integers(-3, 8))) if name == "top_k" else (x,))
    if name in ("resample_h", "resample_v"):
        image = draw(hnp.arrays(np.uint8, draw(hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6))))
        n, taps = draw(st.integers(0, 6)), draw(st.integers(0, 6))
        bounds = draw(hnp.arrays(np.int32, (n, draw(st.integers(1, 3))), elements=st.integers(-3, 12)))
        rows = draw(st.sampled_from([n, n + 1]))
        weights = draw(hnp.arrays(np.int32, (rows, taps), elements=st.integers(0, 1 << 20)))
        return name, (image, bounds, weights)
    image = draw(hnp.arrays(np.uint8, draw(hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=5))))
    lut = draw(hnp.arrays(np.float32, (draw(st.integers(0, 5)), draw(st.sampled_from([255, 256])))))
    out = np.zeros(draw(hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=5)), dtype=np.float32)
    return name, (image, lut, out)


_RAW = {"resample_h": "resample_horizontal", "resample_v": "resample_vertical"}


def prop_raw_misuse(case) -> str | None:
    name, args = case
    outcomes = []
    for impl in ("cython", REF):
        fn = getattr(kernels.implementations()[impl], _RAW.get(name, name))
        call_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        try:
            result = fn(*call_args)
            outcomes.append(call_args[-1] if name == "to_chw" else result)
        except Exception as exc:  # any refusal is fine here; only a crash or a silent difference is not
            outcomes.append(type(exc))
    a, b = outcomes
    if isinstance(a, type) or isinstance(b, type):
        return None  # compiled kernels demand C order and exact dtypes where the reference is lenient
    flat_a = a if isinstance(a, tuple) else (a,)
    flat_b = b if isinstance(b, tuple) else (b,)
    for x, y in zip(flat_a, flat_b):
        if (x is None) != (y is None):
            return "results differ"
        if x is not None and not (x.shape == y.shape and np.allclose(x, y, rtol=1e-4, atol=1e-6, equal_nan=True)):
            return "results differ"
    return None


PROPERTIES = {
    "mean_pool": (prop_mean_pool, pooling_case()),
    "l2_normalize": (prop_l2_normalize, float_arrays(2, max_side=9)),
    "softmax": (prop_softmax, float_arrays(2, max_side=12)),
    "top_k": (prop_top_k, top_k_case()),
    "pack": (prop_pack, pack_case()),
    "resize": (prop_resize, resize_case()),
    "to_chw": (prop_to_chw, chw_case()),
    "raw_misuse": (prop_raw_misuse, raw_case()),
}


def _property(name: str, prop, strategy, examples: int, seed_value: int, count: bool) -> dict:
    tally = {"examples": 0, "mismatches": 0, "first": None}

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        tally["examples"] += 1
        why = prop(case)
        if why is not None:
            tally["mismatches"] += 1
            tally["first"] = tally["first"] or why
            if not count:
                raise AssertionError(f"{name}: compiled and NumPy disagree: {why}")

    started = time.perf_counter()
    check()
    return {**tally, "seconds": round(time.perf_counter() - started, 2)}


def run(examples: int, seed_value: int, count: bool, only: list[str] | None = None) -> dict:
    return {
        name: _property(name, prop, strategy, examples, seed_value, count)
        for name, (prop, strategy) in PROPERTIES.items()
        if not only or name in only
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=40, help="examples per property")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", action="store_true", help="count mismatches instead of stopping at the first")
    ap.add_argument("--only", action="append", default=None, choices=sorted(PROPERTIES))
    args = ap.parse_args(argv)
    if "cython" not in kernels.implementations():
        print(json.dumps({"skipped": "the compiled kernels are not built here"}))
        return 3
    summary = run(args.examples, args.seed, args.count, args.only)
    print(json.dumps({"implementation": kernels.IMPLEMENTATION, "seed": args.seed, "properties": summary}))
    return 1 if any(p["mismatches"] for p in summary.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
