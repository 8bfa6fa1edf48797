"""What every task shares: a verified bundle and one onnxruntime session built by edgert.session."""

from __future__ import annotations

import operator
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from ..bundle import Bundle
from ..device import U8S8_SATURATES, cpu_model, u8s8_exact
from ..errors import InputError, TaskError
from ..session import SessionConfig, create_session


def positive(value: object, name: str = "batch_size") -> int:
    """A whole number >= 1 (NumPy integers too, not bools), or InputError naming the argument."""
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        n = 0
    if isinstance(value, bool) or n < 1:
        raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
    return n


def cpu_unfit(bundle: Bundle, variant: str) -> str | None:
    """Why VARIANT of BUNDLE would compute wrong numbers on this CPU, or None. A per-token model with 8-bit
    int8 weights (its card says ``requires: u8s8_exact``) is exact only where onnxruntime's u8 x s8 kernel does
    not saturate."""
    q = bundle.card.get("quantization")
    if not isinstance(q, dict) or q.get("variant") != variant or q.get("requires") != "u8s8_exact":
        return None
    if u8s8_exact():
        return None
    return (
        f"its int8 products are u8 x s8: {U8S8_SATURATES} ({cpu_model()}); re-export it here, or with "
        "--target avx2, for a model exact on this CPU"
    )


class Task:
    """Base of the task pipelines. ``tasks`` lists the bundle tasks a subclass serves.

    Verification happens here, whichever way a pipeline is built (``edgert.load`` or a constructor): with
    ``verify=True`` (the default) the sha256 of every file onnxruntime reads (the graph and the external data it
    names) and of every file the pipeline opens (``self.resource``) is checked before it is used. An unverified
    pipeline never uses the optimised-graph cache, which verified loads trust.
    """

    #: the bundle tasks this pipeline serves (the manifest's "task"); empty for a base class
    tasks: ClassVar[tuple[str, ...]] = ()
    #: what it takes: "text", "image", "audio" or "tensors"
    input_kind: ClassVar[str] = "tensors"
    #: the task `edgert import` writes for it (None: not importable), and the ImportOptions fields it reads
    import_task: ClassVar[str | None] = None
    import_options: ClassVar[frozenset[str]] = frozenset()
    #: gives scores over labels (post.labels, post.output_kind)
    labelled: ClassVar[bool] = False
    #: the method bench calls with (items, batch_size=n) to run one batch; None: bench drives it its own way
    bench_call: ClassVar[str | None] = None
    #: serves any bundle, whatever its task (the raw session)
    accepts_any_bundle: ClassVar[bool] = False
    #: the kinds of evaluation set ``edgert eval`` scores it on: "retrieval", "similarity", "classification",
    #: "speech", "tensors" (a tensors set runs any bundle raw)
    eval_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        if not self.accepts_any_bundle and bundle.task not in self.tasks:
            raise TaskError(
                f"{bundle.path}: bundle task is {bundle.task!r}, but {type(self).__name__} serves "
                f"{' or '.join(self.tasks)}; use edgert.load() to get the right pipeline"
            )
        self.bundle = bundle
        self.variant = variant or bundle.default_model
        unfit = cpu_unfit(bundle, self.variant)
        if unfit and variant is None and "fp32" in bundle.models:
            warnings.warn(f"edgert: {bundle.path}: loading fp32, not {self.variant}: {unfit}", RuntimeWarning, 3)
            self.variant = "fp32"
        elif unfit:
            raise TaskError(f"{bundle.path}: model {self.variant!r} cannot run right here: {unfit}")
        self.verified = verify
        model_path = bundle.model_file(self.variant)
        entry = bundle.files[bundle.models[self.variant]]
        if verify:
            bundle.model_files(self.variant, verify=True, remember=True)
            bundle.verify(bundle.pre_files(), remember=True)
        else:
            config = replace(config or SessionConfig(), cache_optimized=False)
        self.session_config = (config or SessionConfig()).resolved()
        # A model with external weights is not cached optimised: onnxruntime memory-maps those weights, which
        # halves peak RSS at load, and a cached single-file copy would load them into memory again.
        sha = None if self.variant in bundle.model_data else entry.sha256
        self.session = create_session(model_path, self.session_config, model_sha256=sha)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def output_width(self, name: str) -> int | None:
        """The fixed size of an output's last axis as the graph declares it, or None when it is dynamic."""
        shape = next((o.shape for o in self.session.get_outputs() if o.name == name), None)
        last = shape[-1] if shape else None
        return last if isinstance(last, int) and last > 0 else None

    def _seq_limit(self) -> int | None:
        """The fixed sequence length of input_ids, where the graph declares one."""
        shape = next((i.shape for i in self.session.get_inputs() if i.name == "input_ids"), None)
        last = shape[-1] if shape and len(shape) >= 2 else None
        return last if isinstance(last, int) and last > 0 else None

    def run_session(self, outputs: list[str], feeds: dict[str, Any], hint: str = "") -> list[Any]:
        """session.run, with onnxruntime's failure as one TaskError line naming what was fed (and ``hint``)."""
        try:
            return list(self.session.run(outputs, feeds))
        except Exception as exc:  # onnxruntime's own exception types
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            shapes = ", ".join(f"{k} {list(getattr(v, 'shape', ()))}" for k, v in feeds.items())
            raise TaskError(
                f"{self.bundle.path}: onnxruntime failed on inputs {shapes} ({first[:300]}){hint}"
            ) from None

    def resource(self, name: str) -> Path:
        """A file of the bundle the pipeline opens (a tokenizer, a config): it must be listed, and it is hashed
        first when the pipeline is verified, whether or not the manifest names it under ``pre.files``."""
        path = self.bundle.file(name)
        if self.verified:
            self.bundle.verify([name], remember=True)
        return path

    #: the configuration edgert tune chose, when edgert.load applied one (an edgert.tuned.Decision)
    tuned: Any = None

    def __repr__(self) -> str:
        tuned = f", tuned: {self.tuned.describe()}" if self.tuned is not None else ""
        return f"{type(self).__name__}({str(self.bundle.path)!r}, variant={self.variant!r}{tuned})"
