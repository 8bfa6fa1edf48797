"""Export (needs the `export` extra: torch, optimum, transformers). Nothing in the runtime imports this.

Importing this package is light: the choices and ``ExportOptions`` come from ``options``, and the exporter itself
(onnx, optimum) loads on first use of ``export_bundle``.
"""

from .options import QUANTIZE_CHOICES, TARGET_CHOICES, ExportOptions
from .source import TASK_CHOICES

__all__ = ["export_bundle", "ExportOptions", "BudgetMissError", "TASK_CHOICES", "QUANTIZE_CHOICES", "TARGET_CHOICES"]


def __getattr__(name: str) -> object:
    if name in ("export_bundle", "BudgetMissError"):
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
