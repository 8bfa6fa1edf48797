"""What every task shares: a verified bundle and one onnxruntime session built by edgert.session."""

from __future__ import annotations

import operator
from dataclasses import replace
from pathlib import Path

from ..bundle import Bundle
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


class Task:
    """Base of the task pipelines. ``tasks`` lists the bundle tasks a subclass serves.

    Verification happens here, whichever way a pipeline is built (``edgert.load`` or a constructor): with
    ``verify=True`` (the default) the sha256 of every file onnxruntime reads (the graph and the external data it
    names) and of every file the pipeline opens (``self.resource``) is checked before it is used. An unverified
    pipeline never uses the optimised-graph cache, which verified loads trust.
    """

    tasks: tuple[str, ...] = ()

    def __init__(
        self, bundle: Bundle, *, variant: str | None = None, config: SessionConfig | None = None, verify: bool = True
    ):
        if self.tasks and bundle.task not in self.tasks:
            raise TaskError(
                f"{bundle.path}: bundle task is {bundle.task!r}, but {type(self).__name__} serves "
                f"{' or '.join(self.tasks)}; use edgert.load() to get the right pipeline"
            )
        self.bundle = bundle
        self.variant = variant or bundle.default_model
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

    def resource(self, name: str) -> Path:
        """A file of the bundle the pipeline opens (a tokenizer, a config): it must be listed, and it is hashed
        first when the pipeline is verified, whether or not the manifest names it under ``pre.files``."""
        path = self.bundle.file(name)
        if self.verified:
            self.bundle.verify([name], remember=True)
        return path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.bundle.path)!r}, variant={self.variant!r})"
