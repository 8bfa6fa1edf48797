"""Export (needs the `export` extra: torch, optimum, transformers). Nothing in the runtime imports this."""

from .build import QUANTIZE_CHOICES, TARGET_CHOICES, BudgetMissError, ExportOptions, export_bundle
from .source import TASK_CHOICES

__all__ = ["export_bundle", "ExportOptions", "BudgetMissError", "TASK_CHOICES", "QUANTIZE_CHOICES", "TARGET_CHOICES"]
