"""Quantization recipes: each turns the exported fp32 ONNX file into a quantized one.

- ``dynamic``: today's Optimum/ORTQuantizer dynamic int8 (one activation scale per input tensor, so a text's
  vector depends on its batch-mates and their padding);
- ``static``: QDQ int8 with calibrated activation ranges; the MatMuls whose inputs lose most to quantization,
  measured node by node on the calibration data, stay in float;
- ``nbits``: weight-only block quantization (onnxruntime's ``MatMulNBits``), optionally with the embedding table
  as ``GatherBlockQuantized``. Activations stay float per row, so outputs do not depend on the batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ExportError

if TYPE_CHECKING:
    import onnx

#: calibration feeds, made anew for each pass over them
Feeds = Callable[[], Iterable[dict[str, np.ndarray]]]
#: asked with the path of a recipe's fastest form once it is built, before the costly rest (static: every MatMul
#: quantized, before each one's error is measured to choose the float fallback): why to stop, or None to go on
Gate = Callable[[Path], "str | None"]


class Pruned(Exception):
    """A recipe stopped before its costly part because it cannot win; the message says why, with the figures."""


KINDS = ("dynamic", "static", "nbits", "pertoken")


@dataclass(frozen=True)
class Recipe:
    """One way to quantize. ``name`` is what the card and ``--quantize`` call it."""

    name: str
    kind: str
    bits: int = 8
    block_size: int = 32
    accuracy_level: int = 4  # MatMulNBits: 4 computes in int8 (VNNI, dotprod), 1 in fp32
    per_channel: bool = True
    embeddings: bool = False  # also quantize the word-embedding table (GatherBlockQuantized, 8 bits)
    keep_float: float = 0.0  # static: the share of MatMuls, worst first by measured error, kept in float
    smooth_alpha: float | None = None  # pertoken: SmoothQuant's migration strength (None: no smoothing)
    act_bits: int = 8  # pertoken: activation bits (7 with 8-bit weights: u8 x s8, exact on every CPU)
    keep_sensitive: int = 0  # pertoken: the inputs (MatMul groups) whose quantization errs most, kept float
    vnni: bool = False  # pertoken 8/8 with int8 weights: exact only where u8 x s8 does not saturate (VNNI, arm64)
    alpha_grid: tuple[float, ...] = ()  # pertoken: SmoothQuant strengths to choose from on the calibration set
    gptq: bool = False  # pertoken: weights rounded by GPTQ on the calibration activations, not to nearest

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ExportError(f"recipe {self.name}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "pertoken" and (self.act_bits, self.bits) not in ((8, 8), (8, 7), (7, 8)):
            raise ExportError(
                f"recipe {self.name}: per-token takes 8-bit activations with 8- or 7-bit weights, or 7-bit "
                f"activations with 8-bit weights, not {self.act_bits}/{self.bits}"
            )
        if self.kind == "nbits" and self.bits not in (4, 8):
            raise ExportError(f"recipe {self.name}: MatMulNBits takes 4 or 8 bits, not {self.bits}")
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise ExportError(f"recipe {self.name}: block size must be a power of two >= 16, got {self.block_size}")
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            raise ExportError(f"recipe {self.name}: accuracy_level must be 0-4, got {self.accuracy_level}")
        if any(not 0.0 < a < 1.0 for a in self.alpha_grid):
            raise ExportError(f"recipe {self.name}: alpha_grid values must be in (0, 1), got {self.alpha_grid}")
        if self.smooth_alpha is not None and not 0.0 < self.smooth_alpha < 1.0:
            raise ExportError(f"recipe {self.name}: smooth_alpha must be in (0, 1), got {self.smooth_alpha}")
        if self.vnni and (self.kind, self.act_bits, self.bits) != ("pertoken", 8, 8):
            raise ExportError(f"recipe {self.name}: the VNNI form is per-token with 8-bit activations and weights")
        if self.gptq and self.kind != "pertoken":
            raise ExportError(f"recipe {self.name}: GPTQ rounding is for the per-token kind")
        if self.gptq and self.keep_sensitive:
            raise ExportError(
                f"recipe {self.name}: GPTQ with inputs kept float is not built (the sensitivity that picks them is "
                "measured with rounding to nearest)"
            )
        if self.keep_sensitive < 0:
            raise ExportError(f"recipe {self.name}: keep_sensitive must be >= 0, got {self.keep_sensitive}")
        if not 0.0 <= self.keep_float < 1.0:
            raise ExportError(f"recipe {self.name}: keep_float must be in [0, 1), got {self.keep_float}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nbits(bits: int, level: int, embeddings: bool) -> Recipe:
    name = f"int{bits}-weights-b32-acc{level}" + ("+emb8" if embeddings else "")
    return Recipe(name, "nbits", bits=bits, accuracy_level=level, embeddings=embeddings)


DYNAMIC = Recipe("dynamic-int8", "dynamic")
STATIC = Recipe("static-int8-qdq+emb8", "static", keep_float=0.25, embeddings=True)
WEIGHTS8 = _nbits(8, 4, True)
#: per-token int8 activations x per-column int8 weights with SmoothQuant (edgert.export.pertoken): integer compute,
#: batch-invariant by construction, exact on every CPU (u8 x u8)
PERTOKEN = Recipe("int8-pertoken-sq+emb8", "pertoken", alpha_grid=(0.5, 0.6, 0.7), embeddings=True, block_size=64)
#: the same with int8 weights (u8 x s8): onnxruntime's fast kernel, exact only on x86 with VNNI or AMX and on arm64
#: (the card says so and edgert will not run it elsewhere). On a Xeon with AMX u8 x u8 runs at fp32's speed.
PERTOKEN_VNNI = Recipe(
    "int8-pertoken-vnni-sq+emb8", "pertoken", alpha_grid=(0.5, 0.6, 0.7), embeddings=True, block_size=64, vnni=True
)

#: 7-bit weights (u8 x s8) for x86 without VNNI, where 8-bit u8 x s8 saturates: onnxruntime's u8 x s8 kernel there
#: runs a 128-token MiniLM GEMM 2.0x fp32's, u8 x u8 only 1.5x (2-core AVX2 EPYC, benchmarks/RESULTS.md). The
#: seventh bit's cost is won back by rounding the weights with GPTQ on the calibration activations instead of to
#: nearest (MiniLM on the validation texts: worst cosine 0.9921, mean 0.9983, against 0.9902 and 0.9975 with the
#: most sensitive input kept float and no GPTQ), with no float weight kept, so the bundle stays 24.4 MB
PERTOKEN_W7 = Recipe(
    "int8-pertoken-w7-gptq-sq+emb8", "pertoken", bits=7, alpha_grid=(0.5, 0.6, 0.7), embeddings=True,
    block_size=64, gptq=True,
)  # fmt: skip
#: the w7 form before GPTQ: weights rounded to nearest, the most sensitive input kept float (26.2 MB)
PERTOKEN_W7_KEEP1 = Recipe(
    "int8-pertoken-w7-sq-keep1+emb8", "pertoken", bits=7, alpha_grid=(0.5, 0.6, 0.7), keep_sensitive=1,
    embeddings=True, block_size=64,
)  # fmt: skip
#: u8 x u8 with GPTQ rounding: more accurate than PERTOKEN on the validation texts (worst 0.9948, mean 0.9990
#: against 0.9901, 0.9982) at the same speed, but not on the held-out ones (worst 0.9833 against 0.9920, mean
#: 0.9987 against 0.9984, benchmarks/RESULTS.md), and its build takes several times longer: no preset uses it
PERTOKEN_GPTQ = replace(PERTOKEN, name="int8-pertoken-gptq-sq+emb8", gptq=True)


def _pertoken7(alpha: float, side: str) -> Recipe:
    """One side in 7 bits (u8 x s8): onnxruntime's fast integer kernel on every CPU (VNNI, AMX, dot-product),
    and exact even where it saturates (AVX2)."""
    bits, act = (7, 8) if side == "w7" else (8, 7)
    return Recipe(
        f"int8-pertoken-{side}-sq{round(alpha * 100)}+emb8", "pertoken", bits=bits, act_bits=act, smooth_alpha=alpha,
        embeddings=True, block_size=64,
    )  # fmt: skip


PERTOKEN7 = tuple(_pertoken7(a, side) for side in ("w7", "a7") for a in (0.5, 0.6, 0.75, 0.85))
PERTOKEN7 += tuple(
    replace(r, name=r.name.replace("+emb8", f"-keep{k}+emb8"), keep_sensitive=k)
    for r in PERTOKEN7
    if r.bits == 7
    for k in (1, 2, 3, 4, 6)
)
PERTOKEN7 += (PERTOKEN_W7_KEEP1, PERTOKEN_GPTQ)

#: The candidates ``--quantize auto`` tries per target, cheapest to build first. On arm64 without dot-product
#: instructions (Raspberry Pi 4) int8 compute has no fast kernel, so fp32 compute (accuracy level 1) is tried too,
#: beside per-token int8 (widening multiplies there), whose vectors the aarch64 lane holds to x86_64's.
PRESETS: dict[str, tuple[Recipe, ...]] = {
    "avx2": (DYNAMIC, _nbits(8, 4, False), WEIGHTS8, _nbits(4, 4, True), PERTOKEN, PERTOKEN_W7, STATIC),
    "avx512": (DYNAMIC, _nbits(8, 4, False), WEIGHTS8, _nbits(4, 4, True), PERTOKEN, PERTOKEN_W7, STATIC),
    "avx512_vnni": (DYNAMIC, _nbits(8, 4, False), WEIGHTS8, _nbits(4, 4, True), PERTOKEN_VNNI, STATIC),
    "arm64": (DYNAMIC, WEIGHTS8, _nbits(8, 1, True), _nbits(4, 1, True), PERTOKEN, STATIC),
    "arm64_dotprod": (DYNAMIC, _nbits(8, 4, False), WEIGHTS8, _nbits(4, 4, True), PERTOKEN, STATIC),
}
#: The small set the test suite searches: one recipe that is not batch-invariant, two that are.
QUICK = (DYNAMIC, _nbits(4, 4, True), WEIGHTS8)


def recipe_names() -> list[str]:
    return sorted({r.name for rs in (*PRESETS.values(), PERTOKEN7) for r in rs})


def by_name(name: str) -> Recipe:
    for r in (*(r for rs in PRESETS.values() for r in rs), *PERTOKEN7):
        if r.name == name:
            return r
    raise ExportError(f"unknown recipe {name!r} (known: {', '.join(recipe_names())})")


@contextlib.contextmanager
def _quiet_ort() -> Iterator[None]:
    """onnxruntime's quantization tools log per node at INFO/ERROR; the export shows its own progress."""
    logger = logging.getLogger("onnxruntime")
    root = logging.getLogger()
    old = (logger.level, root.level)
    logger.setLevel(logging.CRITICAL)
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old[0])
        root.setLevel(old[1])


def apply(
    recipe: Recipe,
    fp32: Path,
    out: Path,
    *,
    target: str,
    calibration: Callable[[], Iterable[dict[str, np.ndarray]]] | None = None,
    gate: Gate | None = None,
) -> dict[str, Any]:
    """Writes ``out`` from ``fp32`` by ``recipe``; returns what the card records about it. With a GATE, a recipe
    with a costly second stage asks it first and raises Pruned if told to stop."""
    with _quiet_ort():
        if recipe.kind == "dynamic":
            return _dynamic(recipe, fp32, out, target)
        if recipe.kind == "nbits":
            return _nbits_apply(recipe, fp32, out)
        if recipe.kind == "pertoken":
            return _pertoken(recipe, fp32, out, calibration)
        if calibration is None:
            raise ExportError(f"recipe {recipe.name} needs calibration data")
        return _static(recipe, fp32, out, calibration, gate)


def _dynamic(recipe: Recipe, fp32: Path, out: Path, target: str) -> dict[str, Any]:
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    preset = "arm64" if target.startswith("arm64") else target
    qconfig = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=recipe.per_channel)
    work = out.parent / f".quantize-{out.stem}"
    quantizer = ORTQuantizer.from_pretrained(fp32.parent, file_name=fp32.name)
    quantizer.quantize(save_dir=work, quantization_config=qconfig)
    produced = work / f"{fp32.stem}_quantized.onnx"
    if not produced.is_file():
        raise ExportError(f"ORTQuantizer wrote no {produced.name} in {work}")
    os.replace(produced, out)
    shutil.rmtree(work)
    return {
        "activations": "int8, one dynamic scale per input tensor (depends on the batch)",
        "weights": "int8 per-channel" if recipe.per_channel else "int8 per-tensor",
        "optimum_preset": preset,
        "format": qconfig.format.name,
        "operators": list(qconfig.operators_to_quantize),
    }


def _embedding_gathers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Gather nodes that look up rows of a large 2-D float initializer (the word-embedding table)."""
    inits = {i.name: i for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        init = inits[node.input[0]]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if len(init.dims) == 2 and axis == 0 and init.dims[0] >= 1024 and init.data_type == 1:
            found.append(node)
    return found


def quantize_embeddings(model: onnx.ModelProto, block_size: int = 32) -> int:
    """Replaces each embedding-table Gather by GatherBlockQuantized with 8-bit symmetric blocks along the
    hidden axis. Returns the number of tables quantized. onnxruntime's own quantizer only writes 4 bits here."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    done = 0
    for node in _embedding_gathers(model):
        table = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        rows, cols = table.shape
        if cols % block_size:
            continue
        blocks = table.reshape(rows, cols // block_size, block_size)
        scale = np.abs(blocks).max(-1) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(blocks / scale[..., None]), -127, 127).astype(np.int16) + 128
        name = node.input[0]
        model.graph.initializer.remove(inits[name])
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(q.astype(np.uint8).reshape(rows, cols), f"{name}_q8"),
                numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                numpy_helper.from_array(np.full(scale.shape, 128, np.uint8), f"{name}_zero"),
            ]
        )
        new = helper.make_node(
            "GatherBlockQuantized",
            [f"{name}_q8", node.input[1], f"{name}_scale", f"{name}_zero"],
            list(node.output),
            name=f"{node.name or name}_q8",
            domain="com.microsoft",
            bits=8,
            block_size=block_size,
            gather_axis=0,
            quantize_axis=1,
        )
        index = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(index, new)
        done += 1
    if done and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return done


def _pertoken(recipe: Recipe, fp32: Path, out: Path, calibration: Feeds | None) -> dict[str, Any]:
    import onnx

    from . import pertoken

    model = onnx.load(str(fp32))
    ranges = None
    alpha = recipe.smooth_alpha
    grid: dict[str, float] = {}
    smooth = alpha is not None or bool(recipe.alpha_grid)
    if (smooth or recipe.keep_sensitive or recipe.gptq) and calibration is None:
        raise ExportError(f"recipe {recipe.name} needs calibration data (activation ranges and errors)")
    form: dict[str, Any] = {"weight_bits": recipe.bits, "act_bits": recipe.act_bits, "vnni": recipe.vnni}
    if (smooth or recipe.gptq) and calibration is not None:  # one pass of the fp32 graph for both
        tensors = [g.tensor for g in pertoken.groups(model)]
        stats, moments = pertoken.calibration_stats(fp32, tensors, calibration, moments=recipe.gptq)
        ranges = stats if smooth else None
        if recipe.gptq:
            form["moments"] = moments
            form["rounded"] = {}  # the chosen alpha's rounding, kept from the grid's trial for the final rewrite
    if recipe.alpha_grid and calibration is not None and ranges is not None:
        alpha, grid = pertoken.choose_alpha(model, fp32, calibration, ranges, recipe.alpha_grid, **form)
    keep: list[str] = []
    if recipe.keep_sensitive and calibration is not None:
        errors = pertoken.sensitivity(model, fp32, calibration, ranges, alpha, recipe.bits, recipe.act_bits)
        keep = pertoken.most_sensitive(model, errors, recipe.keep_sensitive)
    matmuls = pertoken.rewrite(model, ranges, alpha, keep=keep, **form)
    tables = quantize_embeddings(model, recipe.block_size) if recipe.embeddings else 0
    onnx.save(model, str(out))
    return {
        "activations": f"int{recipe.act_bits} per token (one symmetric scale per row, computed at run time: "
        "independent of the batch)",
        "weights": f"int{recipe.bits} symmetric per output column (MatMulIntegerToFloat, "
        + (
            f"{pertoken.VNNI_FORM})"
            if recipe.vnni
            else f"{pertoken.form(recipe.act_bits, recipe.bits)}: exact on every CPU)"
        ),
        **(
            {
                "weight_rounding": f"GPTQ on the calibration activations (most active channel first, "
                f"damping {pertoken.DAMP})"
            }
            if recipe.gptq
            else {}
        ),
        "smoothquant_alpha": alpha,
        **({"alpha_grid_worst_cosine_on_calibration": grid} if grid else {}),
        "matmuls": matmuls,
        "kept_float": keep,
        **({"requires": "u8s8_exact"} if recipe.vnni else {}),
        "embedding_tables": f"{tables} as int8 blocks of {recipe.block_size} (GatherBlockQuantized)"
        if tables
        else "float",
    }


def _nbits_apply(recipe: Recipe, fp32: Path, out: Path) -> dict[str, Any]:
    import onnx

    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:  # it needs onnx_ir, which onnxruntime does not pull in
        raise ExportError(f"weight-only quantization needs onnx-ir ({exc}); run: pip install onnx-ir") from None
    axes = (("MatMul", 0),)
    config = DefaultWeightOnlyQuantConfig(
        block_size=recipe.block_size,
        is_symmetric=True,
        accuracy_level=recipe.accuracy_level,
        bits=recipe.bits,
        op_types_to_quantize=("MatMul",),
        quant_axes=axes,
    )
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(fp32)),
        bits=recipe.bits,
        block_size=recipe.block_size,
        is_symmetric=True,
        accuracy_level=recipe.accuracy_level,
        algo_config=config,
        op_types_to_quantize=("MatMul",),
        quant_axes=axes,
    )
    quantizer.process()
    model = quantizer.model.model
    tables = quantize_embeddings(model, recipe.block_size) if recipe.embeddings else 0
    onnx.save(model, str(out))
    return {
        "activations": "float (computed per row, independent of the batch)",
        "weights": f"int{recipe.bits} symmetric blocks of {recipe.block_size} (MatMulNBits)",
        "accuracy_level": recipe.accuracy_level,
        "embedding_tables": f"{tables} as int8 blocks of {recipe.block_size} (GatherBlockQuantized)"
        if tables
        else "float",
    }


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a re-iterable source of feeds."""

    def __init__(self, feeds: Feeds):
        self._make = feeds
        self._it = iter(feeds())

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._make())

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:  # qdq_loss_debug iterates instead of calling get_next
        return iter(self._make())


def _node_errors(fp32: Path, qdq: Path, calibration: Feeds, work: Path) -> dict[str, float]:
    """Each MatMul's measured quantization damage: the worst signal-to-quantization-noise ratio (dB) of the
    activations it reads, QDQ'd versus float, over the calibration data. Lower is worse."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    float_aug, qdq_aug = work / "float_aug.onnx", work / "qdq_aug.onnx"
    dbg.modify_model_output_intermediate_tensors(str(fp32), str(float_aug), op_types_for_saving=["MatMul"])
    dbg.modify_model_output_intermediate_tensors(
        str(qdq), str(qdq_aug), op_types_for_saving=["MatMul", "QuantizeLinear"]
    )
    float_acts = dbg.collect_activations(str(float_aug), _Reader(calibration))
    qdq_acts = dbg.collect_activations(str(qdq_aug), _Reader(calibration))
    errors = dbg.compute_activation_error(dbg.create_activation_matching(qdq_acts, float_acts))
    scores: dict[str, float] = {}
    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:  # only MatMuls with weights are quantized
            continue
        snr = [errors[i]["qdq_err"] for i in node.input if i in errors and "qdq_err" in errors[i]]
        if snr:
            scores[node.name] = float(min(snr))
    return scores


def _static(recipe: Recipe, fp32: Path, out: Path, calibration: Feeds, gate: Gate | None = None) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    work = out.parent / f".static-{out.stem}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cache = work / "ranges.json"
    kwargs = dict(
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=recipe.per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=str(cache),  # calibrate once, quantize twice
        extra_options={"MatMulConstBOnly": True},
    )
    try:
        full = work / "all.onnx"
        quantize_static(str(fp32), str(full), _Reader(calibration), **kwargs)
        if gate is not None and recipe.keep_float:  # the fallback only adds float MatMuls: never faster than this
            why = gate(full)
            if why is not None:
                raise Pruned(why)
        scores = _node_errors(fp32, full, calibration, work)
        worst = sorted(scores, key=lambda name: scores[name])
        keep = worst[: round(recipe.keep_float * len(worst))]
        if keep:
            quantize_static(str(fp32), str(out), _Reader(calibration), nodes_to_exclude=keep, **kwargs)
        else:
            os.replace(full, out)
        tables = 0
        if recipe.embeddings:
            import onnx

            model = onnx.load(str(out))
            tables = quantize_embeddings(model, recipe.block_size)
            onnx.save(model, str(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "activations": "uint8, calibrated min-max ranges (independent of the batch)",
        "weights": "int8 per-channel" if recipe.per_channel else "int8 per-tensor",
        "format": "QDQ",
        "matmuls_measured": len(scores),
        "kept_float": [{"node": n, "sqnr_db": round(scores[n], 2)} for n in keep],
        "worst_quantized_sqnr_db": round(min((scores[n] for n in scores if n not in keep), default=0.0), 2),
        "embedding_tables": f"{tables} as int8 blocks of {recipe.block_size} (GatherBlockQuantized)"
        if tables
        else "float",
    }
