"""Per-token int8: every MatMul with a constant weight computes in integers, with standard ONNX operators and one
onnxruntime operator, ``MatMulIntegerToFloat`` (com.microsoft).

For each input tensor X that feeds such MatMuls (the Q, K and V projections share one: it is quantized once):

- optionally SmoothQuant (Xiao et al., 2023): X is divided channel by channel by
  ``s_j = max|x_j|^alpha / max|W_j|^(1 - alpha)`` (x from the calibration set, W over every weight X feeds) and each
  weight's row j is multiplied by s_j, offline: the product is unchanged in exact arithmetic, and the outliers of a
  few activation channels move into the weights, where per-column scales absorb them;
- X is quantized per row (one scale per token: ``max|x| over the row / 127``, symmetric, round half to even), then
  128 is added and it is cast to uint8, so that one scalar zero point of 128 serves every row; or in 7 bits
  (``/ 63``, plus 64: uint8 values 1 to 127);
- each weight is quantized per output column, symmetric, in 8 or 7 bits (``scale = max|w| / 127`` or ``/ 63``);
  rounded to nearest, or (``gptq_columns``) by GPTQ on the calibration activations, on the same grid;
- the integer product (int32) is cast to float and multiplied by the column scale, in one kernel
  (``MatMulIntegerToFloat``: the same single float multiply as ``MatMulInteger``, ``Cast`` and ``Mul``, whose
  outputs it equals bit for bit, 8% faster for MiniLM at 128 tokens on an AVX2 EPYC), then by the row scale.

A row's quantization depends only on that row: the output does not depend on the batch, by construction.

Which integer types (``form``): onnxruntime's u8 x s8 kernel on x86 without VNNI (AVX2, AVX-512 without VNNI)
multiplies with ``vpmaddubsw``, which saturates a pair of products at 32767: 255 x 127 x 2 does not fit, and the
result is silently wrong (measured on an AVX2 EPYC with onnxruntime 1.32: random 16x384x384 int8 products differ
from NumPy's; u8 x u8 and s8 x s8 equal them). So the weights are either 8 bits stored as uint8 with a zero point
of 128 (u8 x u8: exact on every CPU), or int8 with one side in 7 bits (u8 x s8): 7-bit weights (|w| <= 63:
255 x 63 x 2 fits) or 7-bit activations (uint8 values <= 127: 127 x 127 x 2 = 32258 fits). Both are exact on every
CPU and take onnxruntime's fast kernel everywhere, but lose accuracy (MiniLM: worst cosine 0.987 and 0.981 against
0.993). s8 x s8 is exact but has no fast kernel on AVX2 (0.27x fp32). Where the kernel does not saturate (x86 with
VNNI or AMX, every arm64: ``device.u8s8_exact``), 8-bit weights can be int8 too (``vnni``): the fastest and most
accurate form, which edgert refuses to run elsewhere. The fast kernel matters most where the CPU has VNNI or AMX:
on a Xeon with AMX (onnxruntime 1.32, one thread, 128x384 by 384x1536) u8 x s8 ran 9.7x fp32 and u8 x u8 1.0x; on
an AVX2 EPYC 1.8x and 1.5x.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError

#: a row of zeros still gets a finite scale (its integers are all 0 either way)
EPS = 1e-12
#: SmoothQuant's scales are kept within [1/LIMIT, LIMIT] and away from zero
LIMIT = 1e4


@dataclass(frozen=True)
class Group:
    """The MatMuls that read one activation tensor: quantized once, each with its own weight."""

    tensor: str
    matmuls: tuple[str, ...]  # node names
    weights: tuple[str, ...]  # initializer names


def groups(model: object, keep: Collection[str] = ()) -> list[Group]:
    """Every activation tensor read by MatMuls with a 2-D float constant weight, in graph order; the MatMuls
    named in KEEP stay float."""
    graph = model.graph  # type: ignore[attr-defined]
    inits = {i.name: i for i in graph.initializer}
    by_input: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.name in keep:
            continue
        w = inits[node.input[1]]
        if len(w.dims) == 2 and w.data_type == 1 and node.input[0] not in inits:
            by_input[node.input[0]].append((node.name, node.input[1]))
    return [Group(x, tuple(n for n, _ in ms), tuple(w for _, w in ms)) for x, ms in by_input.items()]


def activations(
    fp32: Path, tensors: list[str], feeds: Callable[[], Iterable[dict[str, np.ndarray]]]
) -> Iterator[dict[str, np.ndarray]]:
    """The values of TENSORS (as 2-D rows of channels) for each calibration feed, by onnxruntime on the fp32 graph
    with those tensors added as outputs."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32))
    known = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 0
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for feed in feeds():
        yield {n: v.reshape(-1, v.shape[-1]) for n, v in zip(tensors, session.run(tensors, feed))}


def channel_ranges(
    fp32: Path, tensors: list[str], feeds: Callable[[], Iterable[dict[str, np.ndarray]]]
) -> dict[str, np.ndarray]:
    """max |x_j| per channel (last axis) of each tensor over the calibration feeds."""
    return calibration_stats(fp32, tensors, feeds)[0]


def second_moments(
    fp32: Path, tensors: list[str], feeds: Callable[[], Iterable[dict[str, np.ndarray]]]
) -> dict[str, np.ndarray]:
    """X^T X (float64, channels by channels) of each tensor over every row of the calibration feeds: the
    curvature of a MatMul's output error in its weights, which GPTQ rounds against."""
    return calibration_stats(fp32, tensors, feeds, moments=True)[1]


#: rows gathered before one X^T X product: one large product runs several times faster than one per feed
MOMENT_ROWS = 2048


def calibration_stats(
    fp32: Path, tensors: list[str], feeds: Callable[[], Iterable[dict[str, np.ndarray]]], moments: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """In one pass of the fp32 graph over the calibration feeds: each tensor's channel ranges (channel_ranges)
    and, with MOMENTS, its X^T X (second_moments; else an empty dict)."""
    ranges: dict[str, np.ndarray] = {}
    xtx: dict[str, np.ndarray] = {}
    pending: dict[str, list[np.ndarray]] = defaultdict(list)

    def flush(name: str) -> None:
        x = np.concatenate(pending.pop(name)).astype(np.float64)
        xtx[name] = x.T @ x if name not in xtx else xtx[name] + x.T @ x

    for values in activations(fp32, tensors, feeds):
        for name, value in values.items():
            m = np.abs(value).max(axis=0)
            ranges[name] = m if name not in ranges else np.maximum(ranges[name], m)
            if moments:
                pending[name].append(value)
                if sum(len(v) for v in pending[name]) >= MOMENT_ROWS:
                    flush(name)
    for name in list(pending):
        flush(name)
    if len(ranges) != len(tensors):
        raise ExportError("per-token quantization: the calibration data produced no activations")
    return ranges, xtx


def sensitivity(
    model: object,
    fp32: Path,
    feeds: Callable[[], Iterable[dict[str, np.ndarray]]],
    ranges: dict[str, np.ndarray] | None,
    alpha: float | None,
    weight_bits: int = 8,
    act_bits: int = 8,
) -> dict[str, float]:
    """For each group (by its input tensor), the relative error its quantized MatMuls make on the calibration
    activations, ||XW - reference(X, W)|| / ||XW|| over every row and weight: how much keeping it float would save."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}  # type: ignore[attr-defined]
    weights = {g.tensor: [numpy_helper.to_array(inits[w]).astype(np.float32) for w in g.weights] for g in groups(model)}
    if alpha is not None and not ranges:
        raise ExportError("per-token quantization: SmoothQuant needs the calibration ranges")
    smooth = {t: smoothing(ranges[t], ws, alpha) if alpha is not None and ranges else None for t, ws in weights.items()}
    err = dict.fromkeys(weights, 0.0)
    ref = dict.fromkeys(weights, 0.0)
    for values in activations(fp32, list(weights), feeds):
        for name, x in values.items():
            for w in weights[name]:
                exact = x.astype(np.float64) @ w.astype(np.float64)
                ref[name] += float(np.sum(exact**2))
                err[name] += float(np.sum((reference(x, w, smooth[name], weight_bits, act_bits) - exact) ** 2))
    return {t: (err[t] / ref[t]) ** 0.5 if ref[t] > 0 else 0.0 for t in weights}


def choose_alpha(
    model: object,
    fp32: Path,
    feeds: Callable[[], Iterable[dict[str, np.ndarray]]],
    ranges: dict[str, np.ndarray],
    alphas: Sequence[float],
    **form_args: Any,
) -> tuple[float, dict[str, float]]:
    """SmoothQuant's strength from a grid, chosen on the calibration set (never the validation set that judges
    the result): for each alpha the rewritten graph runs every calibration item, and the alpha whose worst item
    agrees best with fp32 wins (cosine of each item's outputs, all of them flattened; ties go to the first).
    Returns (alpha, {alpha: worst cosine})."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 0

    def session(proto: object) -> ort.InferenceSession:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]

    items = list(feeds())
    ref = session(onnx.load(str(fp32)))
    wanted = [o.name for o in ref.get_outputs()]
    expected = [np.concatenate([v.ravel() for v in ref.run(wanted, f)]).astype(np.float64) for f in items]
    worst: dict[str, float] = {}
    for alpha in alphas:
        trial = onnx.ModelProto()
        trial.CopyFrom(model)
        rewrite(trial, ranges, alpha, **form_args)
        s = session(trial)
        cos = []
        for f, e in zip(items, expected):
            g = np.concatenate([v.ravel() for v in s.run(wanted, f)]).astype(np.float64)
            cos.append(float(g @ e / max(np.linalg.norm(g) * np.linalg.norm(e), 1e-30)))
        worst[f"{alpha:g}"] = min(cos)
    best = max(alphas, key=lambda a: worst[f"{a:g}"])
    return best, worst


def most_sensitive(model: object, errors: dict[str, float], k: int) -> list[str]:
    """The MatMul names of the K groups with the largest errors: the ones a mixed-precision recipe keeps float."""
    worst = sorted(errors, key=lambda t: -errors[t])[:k]
    by_tensor = {g.tensor: g for g in groups(model)}
    return [m for t in worst for m in by_tensor[t].matmuls]


def smoothing(x_max: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """SmoothQuant's per-channel divisor of the activation (one per input channel of the weights)."""
    w_max = np.max(np.stack([np.abs(w).max(axis=1) for w in weights]), axis=0)
    x = np.maximum(x_max.astype(np.float64), 1e-5)
    w = np.maximum(w_max.astype(np.float64), 1e-5)
    s: np.ndarray = np.clip(x**alpha / w ** (1 - alpha), 1 / LIMIT, LIMIT).astype(np.float32)
    return s


def column_scales(w: np.ndarray, bits: int = 8) -> np.ndarray:
    """The symmetric per-output-column scale in BITS: max|w| / (2^(bits-1) - 1), float32 (1 for a zero column)."""
    scale: np.ndarray = (np.abs(w).max(axis=0) / (2 ** (bits - 1) - 1)).astype(np.float32)
    scale[scale == 0] = 1.0
    return scale


def quantize_columns(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per output column in BITS (8 or 7): (int8 weights, float32 scale per column)."""
    top = 2 ** (bits - 1) - 1
    scale = column_scales(w, bits)
    q = np.clip(np.rint(w / scale), -top, top).astype(np.int8)
    return q, scale


def _inverse_upper(h: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor U of inverse(H) (inverse(H) = U^T U), without forming the inverse: with P the
    order-reversing permutation and P H P = L L^T, U = P L^-1 P (upper, positive diagonal, so it is the factor)."""
    from scipy.linalg import lapack

    try:
        lower = np.linalg.cholesky(h[::-1, ::-1])
    except np.linalg.LinAlgError:
        raise ExportError("GPTQ: the calibration activations' X^T X is not positive definite") from None
    inv, info = lapack.dtrtri(lower, lower=1)
    if info != 0:
        raise ExportError(f"GPTQ: the Cholesky factor did not invert (LAPACK dtrtri info {info})")
    upper: np.ndarray = np.ascontiguousarray(inv[::-1, ::-1])
    return upper


#: GPTQ's dampening: this share of the mean diagonal is added to X^T X so that it inverts stably
DAMP = 0.01
#: rows of the weight updated together (the result equals the one-row-at-a-time order up to float rounding)
GPTQ_BLOCK = 128


def gptq_columns(
    w: np.ndarray, moments: np.ndarray, bits: int = 8, smooth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column symmetric weights in BITS like ``quantize_columns`` (the same column scales), but rounded by
    GPTQ (Frantar et al., 2023) on the calibration activations: the input rows of W are rounded one at a time,
    most active channel first, and each rounding error is spread over the rows not yet rounded, in proportion to
    how the calibration inputs correlate (the inverse of X^T X), so that X W_q stays close to X W where X
    actually lives instead of W_q close to W entry by entry. MOMENTS is X^T X of the unsmoothed input; with
    SMOOTH the weight is SmoothQuant's ``w * s`` and the input ``x / s``, so it becomes ``diag(1/s) X^T X
    diag(1/s)``. Returns (int8 weights, float32 scale per column)."""
    top = 2 ** (bits - 1) - 1
    h = moments.astype(np.float64)
    if smooth is not None:
        inv = 1.0 / smooth.astype(np.float64)
        h = h * inv[:, None] * inv[None, :]
    scale = column_scales(w.astype(np.float32), bits)
    s64 = scale.astype(np.float64)
    work = w.astype(np.float64)  # astype copies: the caller's weight is not changed
    n = work.shape[0]
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    work[dead, :] = 0.0
    order = np.argsort(-np.diag(h), kind="stable")
    h = h[np.ix_(order, order)]
    work = work[order]
    h[np.diag_indices(n)] += DAMP * float(np.mean(np.diag(h)))
    upper = _inverse_upper(h)
    q = np.zeros(work.shape, np.int8)
    for b0 in range(0, n, GPTQ_BLOCK):
        b1 = min(b0 + GPTQ_BLOCK, n)
        block = work[b0:b1].copy()
        errors = np.zeros_like(block)
        u = upper[b0:b1, b0:b1]
        for i in range(b1 - b0):
            qi = np.clip(np.rint(block[i] / s64), -top, top)
            q[b0 + i] = qi.astype(np.int8)
            e = (block[i] - qi * s64) / u[i, i]
            block[i + 1 :] -= np.outer(u[i, i + 1 :], e)
            errors[i] = e
        work[b1:] -= upper[b0:b1, b1:].T @ errors
    out = np.empty_like(q)
    out[order] = q
    return out, scale


#: (activation bits, weight bits) -> the integer types: every pair is exact on every CPU (see the module's note)
FORMS = {(8, 8): "u8 x u8", (8, 7): "u8 x s8", (7, 8): "u8 x s8"}
#: 8-bit activations x 8-bit signed weights: exact only where onnxruntime's u8 x s8 kernel does not saturate
VNNI_FORM = "u8 x s8, 8-bit: exact with VNNI or AMX (x86) and on arm64, saturates on other x86"


def form(act_bits: int, weight_bits: int, vnni: bool = False) -> str:
    if vnni:
        if (act_bits, weight_bits) != (8, 8):
            raise ExportError(f"the VNNI per-token form is 8-bit by 8-bit, not {act_bits}/{weight_bits}")
        return VNNI_FORM
    if (act_bits, weight_bits) not in FORMS:
        raise ExportError(
            f"per-token quantization takes 8-bit activations with 8- or 7-bit weights, or 7-bit activations with "
            f"8-bit weights, not {act_bits}/{weight_bits}"
        )
    return FORMS[act_bits, weight_bits]


def rewrite(
    model: object,
    ranges: dict[str, np.ndarray] | None = None,
    alpha: float | None = None,
    weight_bits: int = 8,
    keep: Collection[str] = (),
    act_bits: int = 8,
    vnni: bool = False,
    moments: dict[str, np.ndarray] | None = None,
    rounded: dict[tuple[str, float | None, int], list[tuple[np.ndarray, np.ndarray]]] | None = None,
) -> int:
    """Replaces every weight MatMul of MODEL (in place) by the per-token integer form; with ALPHA, SmoothQuant
    from RANGES (channel_ranges). ACT_BITS/WEIGHT_BITS 8/8: u8 x u8; 8/7 and 7/8: u8 x s8 (see the module's
    note); VNNI: 8/8 as u8 x s8, for CPUs whose kernel does not saturate. With MOMENTS (second_moments) the
    weights are rounded by GPTQ instead of to nearest (one pass over the group's weights side by side: GPTQ
    treats each output column on its own, so that equals one pass per weight), remembered in ROUNDED by input,
    alpha and bits when given, so the same rewrite again does not round again. Returns the number of MatMuls
    rewritten."""
    from onnx import helper, numpy_helper

    signed = form(act_bits, weight_bits, vnni) != "u8 x u8"
    top, offset = (127, 128) if act_bits == 8 else (63, 64)

    graph = model.graph  # type: ignore[attr-defined]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)  # type: ignore[attr-defined]
    inits = {i.name: i for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    done = 0
    consts = [
        numpy_helper.from_array(np.array(offset, np.uint8), "pt_zero_u8"),
        numpy_helper.from_array(np.array(0, np.int8), "pt_zero_s8"),
        numpy_helper.from_array(np.array(128, np.uint8), "pt_zero_w8"),
        numpy_helper.from_array(np.array(float(top), np.float32), "pt_top"),
        numpy_helper.from_array(np.array(float(offset), np.float32), "pt_offset"),
        numpy_helper.from_array(np.array(EPS, np.float32), "pt_eps"),
        numpy_helper.from_array(np.array(1.0, np.float32), "pt_one"),
    ]
    if opset >= 18:
        consts.append(numpy_helper.from_array(np.array([-1], np.int64), "pt_last_axis"))
    if opset >= 13:
        consts.append(numpy_helper.from_array(np.array([-1], np.int64), "pt_flat"))
    graph.initializer.extend(consts)
    for k, group in enumerate(groups(model, keep)):
        p = f"pt{k}"
        weights = [numpy_helper.to_array(inits[w]).astype(np.float32) for w in group.weights]
        first = min(list(graph.node).index(nodes[n]) for n in group.matmuls)
        new = []
        x = group.tensor
        s: np.ndarray | None = None
        if alpha is not None:
            if ranges is None or group.tensor not in ranges:
                raise ExportError(f"per-token quantization: no calibration range for {group.tensor!r}")
            s = smoothing(ranges[group.tensor], weights, alpha)
            weights = [w * s[:, None] for w in weights]
            graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), f"{p}_smooth"))
            new.append(helper.make_node("Mul", [x, f"{p}_smooth"], [f"{p}_xs"], name=f"{p}_smooth"))
            x = f"{p}_xs"
        new.append(helper.make_node("Abs", [x], [f"{p}_abs"], name=f"{p}_abs"))
        if opset >= 18:
            new.append(helper.make_node("ReduceMax", [f"{p}_abs", "pt_last_axis"], [f"{p}_amax"], keepdims=1))
        else:
            new.append(helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_amax"], axes=[-1], keepdims=1))
        new += [
            helper.make_node("Max", [f"{p}_amax", "pt_eps"], [f"{p}_amax_e"]),
            helper.make_node("Div", [f"{p}_amax_e", "pt_top"], [f"{p}_scale"]),
        ]
        quantize, shapes = quantize_rows(p, x, weights[0].shape[0], opset)
        new += quantize
        graph.initializer.extend(shapes)
        if moments is None:
            integer = [quantize_columns(w, weight_bits) for w in weights]
        else:
            key = (group.tensor, alpha, weight_bits)
            if rounded is not None and key in rounded:
                integer = rounded[key]
            else:
                if group.tensor not in moments:
                    raise ExportError(f"per-token quantization: no calibration moments for {group.tensor!r}")
                q_all, col_all = gptq_columns(np.concatenate(weights, axis=1), moments[group.tensor], weight_bits, s)
                cuts = np.cumsum([w.shape[1] for w in weights])[:-1]
                integer = list(zip(np.split(q_all, cuts, axis=1), np.split(col_all, cuts)))
                if rounded is not None:
                    rounded[key] = integer
        for j, (name, w_name, (q, col)) in enumerate(zip(group.matmuls, group.weights, integer)):
            node = nodes[name]
            stored, zero = (q, "pt_zero_s8") if signed else ((q.astype(np.int16) + 128).astype(np.uint8), "pt_zero_w8")
            graph.initializer.extend(
                [numpy_helper.from_array(stored, f"{w_name}_q"), numpy_helper.from_array(col, f"{w_name}_colscale")]
            )
            y = f"{p}_{j}"
            new += [
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [f"{p}_q", f"{w_name}_q", "pt_one", f"{w_name}_colscale", "pt_zero_u8", zero],
                    [f"{y}_c"], name=f"{name}_int8", domain="com.microsoft",
                ),
                helper.make_node("Mul", [f"{y}_c", f"{p}_scale"], list(node.output), name=f"{name}_rescale"),
            ]  # fmt: skip
            graph.node.remove(node)
            done += 1
        for i, n in enumerate(new):
            graph.node.insert(first + i, n)
    if done and not any(o.domain == "com.microsoft" for o in model.opset_import):  # type: ignore[attr-defined]
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))  # type: ignore[attr-defined]
    used = {i for n in graph.node for i in n.input}
    for name in [i.name for i in graph.initializer if i.name not in used]:  # the float weights now unused
        graph.initializer.remove(next(i for i in graph.initializer if i.name == name))
    return done


def quantize_rows(p: str, x: str, width: int, opset: int) -> tuple[list[Any], list[Any]]:
    """The nodes (and their shape initializers) that turn X, rows of WIDTH values, into ``{p}_q``: X divided by
    its row scale ``{p}_scale``, rounded half to even, plus the zero point, as uint8. From opset 13 that is one
    per-axis QuantizeLinear over X seen as rows (it wants a 1-D scale and a zero point of its shape, so the row
    scales are flattened and the zero point ``pt_zero_u8`` expanded to them); below, Div, Round, Add ``pt_offset``
    and Cast. Both compute ``saturate(round(x / scale) + zero)`` in float32, so the integers are the same (tests
    hold both to the NumPy reference); the one kernel ran the model about 10% faster at 128 tokens
    (benchmarks/pertoken_quantizer.py)."""
    from onnx import TensorProto, helper, numpy_helper

    if opset < 13:
        return [
            helper.make_node("Div", [x, f"{p}_scale"], [f"{p}_xd"]),
            helper.make_node("Round", [f"{p}_xd"], [f"{p}_xr"]),
            helper.make_node("Add", [f"{p}_xr", "pt_offset"], [f"{p}_xu"]),
            helper.make_node("Cast", [f"{p}_xu"], [f"{p}_q"], to=TensorProto.UINT8),
        ], []
    nodes = [
        helper.make_node("Shape", [x], [f"{p}_xshape"]),
        helper.make_node("Reshape", [x, f"{p}_rows"], [f"{p}_x2"]),
        helper.make_node("Reshape", [f"{p}_scale", "pt_flat"], [f"{p}_s1"]),
        helper.make_node("Shape", [f"{p}_s1"], [f"{p}_s1shape"]),
        helper.make_node("Expand", ["pt_zero_u8", f"{p}_s1shape"], [f"{p}_zp"]),
        helper.make_node(
            "QuantizeLinear", [f"{p}_x2", f"{p}_s1", f"{p}_zp"], [f"{p}_q2"], axis=0, name=f"{p}_quantize"
        ),
        helper.make_node("Reshape", [f"{p}_q2", f"{p}_xshape"], [f"{p}_q"]),
    ]
    return nodes, [numpy_helper.from_array(np.array([-1, width], np.int64), f"{p}_rows")]


def reference(
    x: np.ndarray, w: np.ndarray, smooth: np.ndarray | None = None, weight_bits: int = 8, act_bits: int = 8
) -> np.ndarray:
    """The same arithmetic in NumPy, for one MatMul: what tests hold the ONNX graph to."""
    form(act_bits, weight_bits)
    top = np.float32(2 ** (act_bits - 1) - 1)
    x = x.astype(np.float32)
    if smooth is not None:
        x = x * (1.0 / smooth).astype(np.float32)
        w = w * smooth[:, None]
    scale = (np.maximum(np.abs(x).max(axis=-1, keepdims=True), np.float32(EPS)) / top).astype(np.float32)
    q = np.rint(x / scale).astype(np.int32)
    wq, col = quantize_columns(w.astype(np.float32), weight_bits)
    acc = np.matmul(q.astype(np.float64), wq.astype(np.float64)).astype(np.float32)  # integers, exact below 2**53
    out: np.ndarray = (acc * col * scale).astype(np.float32)
    return out
