"""``edgert.load``: a bundle directory (or a bare .onnx file) to the pipeline its manifest names."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .bundle import Bundle
from .catalog import CATALOG, resolve_bundle
from .errors import BundleError, TaskError
from .session import SessionConfig
from .tasks import RawModel, Task, registry


def load(
    path: str | os.PathLike[str] | Bundle,
    *,
    variant: str | None = None,
    task: str | None = None,
    config: SessionConfig | None = None,
    verify: bool = True,
    memory: str | None = None,
    tuned: bool = True,
) -> Task:
    """Loads a bundle and returns the task pipeline its manifest names.

    ``path`` is a bundle directory (``~`` and environment variables are expanded), a catalog name such as
    ``"minilm"`` (built on first use, which needs the export extra), an opened ``Bundle``, or a bare ``.onnx``
    file (a ``RawModel``, not verified).

    ``variant`` picks a model in the bundle ("fp32", "int8"; default: the manifest's default_model).
    ``task="raw"`` gives a plain session for any bundle. ``verify`` checks the sha256 of every file the
    pipeline reads, external weights included (once per file version: see ``Bundle.verify``).
    ``memory="lean"`` turns off the memory arena (see ``SessionConfig``).
    When ``edgert tune`` chose a configuration for this bundle on this device, it is applied (its variant, thread
    count and memory mode) unless the call names a variant or a config itself, or passes ``tuned=False``; ``repr``
    says so.
    """
    if memory is not None:
        config = replace(config or SessionConfig(), memory=memory)
    if isinstance(path, Bundle):
        bundle, p = path, path.path
    else:
        p = Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))
        if p.suffix == ".onnx":
            if not p.is_file():
                raise BundleError(f"{p}: no such model file")
            return RawModel(model_path=p, config=config)
        if os.fspath(path) in CATALOG:
            p = resolve_bundle(os.fspath(path))  # built on first use, as the CLI does
        bundle = Bundle.open(p)
    name = task or bundle.task
    try:
        pipeline = registry.pipeline(name)
    except TaskError as exc:
        raise TaskError(f"{p}: {exc}; load(path, task='raw') gives the bare session") from None
    decision = None
    if tuned and variant is None and config is None and task is None:
        from . import tuned as decisions

        key = decisions.bundle_key({n: e.sha256 for n, e in bundle.files.items()})
        decision = decisions.lookup(key, tuple(bundle.models))
        if decision is not None:
            variant = decision.variant
            config = SessionConfig(intra_op_threads=decision.threads, memory=decision.memory)
    # the pipeline verifies every byte onnxruntime and the tokenizer read (see Task), and keeps an unverified
    # model out of the optimised-graph cache that verified loads trust
    model = pipeline(bundle, variant=variant, config=config, verify=verify)
    model.tuned = decision
    return model
