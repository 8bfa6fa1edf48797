"""What an export can be asked for: the choices the CLI offers and ``ExportOptions``.

Light on purpose (no onnx, torch or optimum): ``edgert --help`` reads its choices from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ExportError
from . import recipes
from .source import TASK_CHOICES

QUANTIZE_CHOICES = ("auto", "none", "dynamic", "static", "int8-weights", "int4-weights")
TARGET_CHOICES = ("auto", "avx2", "avx512", "avx512_vnni", "arm64", "arm64_dotprod")


@dataclass(frozen=True)
class ExportOptions:
    """How to export. ``quantize="auto"`` searches the target's recipes for the fastest one whose worst
    agreement with fp32 on held-apart data is at least ``accuracy_budget`` and that is batch-invariant."""

    task: str = "auto"
    quantize: str = "auto"
    target: str = "auto"
    per_channel: bool = True
    opset: int | None = None
    force: bool = False
    discard_unlisted: bool = False  # with force: also delete files the old bundle's manifest does not list
    accuracy_budget: float = 0.99
    allow_miss: bool = False
    calibration: str | None = None
    candidates: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for value, choices, what in (
            (self.task, TASK_CHOICES, "task"),
            (self.quantize, QUANTIZE_CHOICES, "quantize"),
            (self.target, TARGET_CHOICES, "target"),
        ):
            if value not in choices:
                raise ExportError(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
        if self.opset is not None and not 11 <= self.opset <= 25:
            raise ExportError(f"opset {self.opset} is out of range (11-25)")
        if not 0.0 < self.accuracy_budget <= 1.0:
            raise ExportError(f"accuracy budget must be in (0, 1], got {self.accuracy_budget}")
        if self.candidates is not None:
            if self.quantize != "auto":
                raise ExportError("--candidates goes with --quantize auto")
            if not self.candidates:
                raise ExportError("--candidates names no recipe")
            for name in self.candidates:
                recipes.by_name(name)  # a clear error for an unknown name, before any work

    def recipes_for(self, target: str) -> tuple[recipes.Recipe, ...]:
        """The candidates to try: the named ones, the target's preset (auto), or the one recipe asked for."""
        if self.quantize == "auto":
            if self.candidates:
                return tuple(recipes.by_name(n) for n in self.candidates)
            return recipes.PRESETS[target]
        fixed = {
            "dynamic": replace(recipes.DYNAMIC, per_channel=self.per_channel),
            "static": recipes.STATIC,
            "int8-weights": recipes.WEIGHTS8,
            "int4-weights": recipes.by_name("int4-weights-b32-acc4+emb8"),
        }
        return (fixed[self.quantize],)
