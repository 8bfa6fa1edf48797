"""A bundle or bare .onnx file run as is: feeds in, named outputs out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..bundle import Bundle
from ..errors import TaskError
from ..session import SessionConfig, create_session, numpy_dtype
from .base import Task

#: A failing run raises with onnxruntime's reason; its own log line on stderr would only repeat it.
_RUN_OPTIONS = ort.RunOptions()
_RUN_OPTIONS.log_severity_level = 4


class RawModel(Task):
    """``run(feeds)`` returns {output name: array}; inputs are checked by name and cast to the declared dtype."""

    tasks = ("raw",)
    import_task = "raw"
    eval_kinds = ("tensors",)
    accepts_any_bundle = True  # load(path, task="raw") gives the bare session of any bundle

    def __init__(
        self,
        bundle: Bundle | None = None,
        *,
        variant: str | None = None,
        config: SessionConfig | None = None,
        model_path: str | os.PathLike[str] | None = None,
        verify: bool = True,
    ):
        if bundle is not None:
            super().__init__(bundle, variant=variant, config=config, verify=verify)
        else:
            self.bundle = None  # type: ignore[assignment]  # a bare file has no bundle
            self.variant = None  # type: ignore[assignment]
            self.verified = False  # a bare file has no manifest to verify against; it is never cached optimised
            if model_path is None:
                raise TaskError("RawModel needs a bundle or a model_path")
            self.model_path = Path(model_path)
            self.session_config = (config or SessionConfig()).resolved()
            self.session = create_session(Path(model_path), self.session_config)
            self.input_names = tuple(i.name for i in self.session.get_inputs())
            self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._dtypes = {i.name: numpy_dtype(i.type) for i in self.session.get_inputs()}

    def run(self, feeds: Mapping[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        unknown = set(feeds) - set(self.input_names)
        missing = set(self.input_names) - set(feeds)
        if unknown or missing:
            raise TaskError(
                f"inputs do not match the model: missing {sorted(missing)}, unknown {sorted(unknown)}; "
                f"model takes {list(self.input_names)}"
            )
        cast = {k: np.asarray(v, dtype=self._dtypes[k]) for k, v in feeds.items()}
        names = outputs or list(self.output_names)
        return dict(zip(names, self.session.run(names, cast, _RUN_OPTIONS)))

    __call__ = run

    @property
    def metadata(self) -> dict[str, str]:
        """The model's own metadata (producer, graph name, description, version, and its custom map, where
        converters often keep the class labels)."""
        meta = self.session.get_modelmeta()
        return {
            "producer": meta.producer_name,
            "graph": meta.graph_name,
            "domain": meta.domain,
            "description": meta.description,
            "version": str(meta.version),
            **dict(meta.custom_metadata_map),
        }

    def __repr__(self) -> str:
        where = self.bundle.path if self.bundle is not None else self.model_path
        return f"RawModel({str(where)!r})"
