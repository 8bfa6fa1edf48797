"""What an export can be asked for: the choices the CLI offers and ``ExportOptions``.

Light on purpose (no onnx, torch or optimum): ``edgert --help`` reads its choices from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ExportOptionError
from ..options import check, option
from . import recipes
from .source import TASK_CHOICES

QUANTIZE_CHOICES = (
    "auto", "none", "dynamic", "static", "int8-weights", "int4-weights", "int8-pertoken", "int8-pertoken-vnni",
    "int8-pertoken-w7",
)  # fmt: skip
TARGET_CHOICES = ("auto", "avx2", "avx512", "avx512_vnni", "arm64", "arm64_dotprod")


def _names(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


@dataclass(frozen=True)
class ExportOptions:
    """How to export. ``quantize="auto"`` searches the target's recipes for the fastest one whose worst
    agreement with fp32 on held-apart data is at least ``accuracy_budget`` and that is batch-invariant."""

    task: str = option(
        "auto", help="what the model is for; auto reads it from the model's config", choices=TASK_CHOICES
    )
    quantize: str = option(
        "auto", help="auto: the fastest recipe that meets the accuracy budget and is batch-invariant",
        choices=QUANTIZE_CHOICES,
    )  # fmt: skip
    target: str = option("auto", help="quantization preset; auto reads this CPU's ISA", choices=TARGET_CHOICES)
    per_channel: bool = option(True, help="per-channel weight scales (per-tensor loses much more accuracy)")
    opset: int | None = option(None, help="ONNX opset of the export", shown="optimum's choice")
    force: bool = option(False, help="replace OUTPUT if it is an edgert bundle")
    discard_unlisted: bool = option(
        False, help="with force: also delete files in OUTPUT that its manifest does not list (refused otherwise)"
    )
    accuracy_budget: float = option(
        0.99, help="worst agreement with fp32 that auto accepts: cosine for embeddings, top-1 share for classifiers",
        metavar="X",
    )  # fmt: skip
    allow_miss: bool = option(False, help="when no recipe meets the budget, keep fp32 and exit 0 instead of 1")
    calibration: str | None = option(
        None, help="calibration data: a text file, one text per line, or a folder of images", metavar="FILE|DIR",
        shown="built-in texts",
    )  # fmt: skip
    keep_candidates: int = option(
        1, help="recipes kept beside fp32: the N fastest that meet the budget, so each device can choose (edgert "
        "tune) without exporting again", metavar="N",
    )  # fmt: skip
    candidates: tuple[str, ...] | None = option(
        None, help="recipes for auto to try, instead of the target's preset (names as in the card's search table)",
        metavar="R1,R2", parse=_names,
    )  # fmt: skip

    def __post_init__(self) -> None:
        for value, choices, what in (
            (self.task, TASK_CHOICES, "task"),
            (self.quantize, QUANTIZE_CHOICES, "quantize"),
            (self.target, TARGET_CHOICES, "target"),
        ):
            check(value in choices, what, f"{value!r} is not one of {', '.join(choices)}", ExportOptionError)
        check(
            self.opset is None or 11 <= self.opset <= 25,
            "opset",
            f"{self.opset} is out of range (11-25)",
            ExportOptionError,
        )
        check(
            0.0 < self.accuracy_budget <= 1.0, "accuracy_budget", f"must be in (0, 1], got {self.accuracy_budget}",
            ExportOptionError,
        )  # fmt: skip
        check(1 <= self.keep_candidates <= 8, "keep_candidates", f"must be between 1 and 8, got {self.keep_candidates}",
              ExportOptionError)  # fmt: skip
        if self.keep_candidates > 1:
            check(self.quantize == "auto", "keep_candidates", "goes with quantize auto (a search)", ExportOptionError)
        if self.discard_unlisted:
            object.__setattr__(self, "force", True)  # frozen: set once, while the instance is built
        if self.candidates is not None:
            check(self.quantize == "auto", "candidates", "goes with quantize auto", ExportOptionError)
            check(self.candidates, "candidates", "names no recipe", ExportOptionError)
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
            "int8-pertoken": recipes.PERTOKEN,
            "int8-pertoken-vnni": recipes.PERTOKEN_VNNI,
            "int8-pertoken-w7": recipes.PERTOKEN_W7,
        }
        return (fixed[self.quantize],)
