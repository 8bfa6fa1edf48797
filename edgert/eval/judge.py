"""The quantization search's task judge: ``edgert export --quantize auto --eval DATA --eval-budget SPEC``.

A cosine budget can be stricter than the task needs (on the standard library's retrieval set, dynamic int8 keeps
nDCG@10 within 0.003 of fp32 while its worst cosine is 0.95). The judge scores each candidate the search has
built on the user's own set, exactly as ``edgert eval`` does, and the budget's floors are met on each metric's
interval's lower bound. The set is read and the budget checked when the judge is made, before any export work.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BudgetError, DataError
from ..export.search import TaskScore
from . import decide
from .options import EvalOptions
from .records import Evaluated
from .runner import dataset_record, read_set, score_model


class TaskJudge:
    """Scores a loaded pipeline on DATA against BUDGET (quality floors and ceilings only: the search times the
    candidates itself)."""

    def __init__(self, data: str | Path, budget: str, options: EvalOptions | None = None):
        self.options = replace(options, data=Path(data)) if options else EvalOptions(data=Path(data), cost=False)
        self.budget = budget
        quality, cost = decide.split(budget)
        if cost:
            raise BudgetError(
                f"--eval-budget {budget}: {', '.join(c.text for c in cost)} is a cost limit; the search keeps the "
                "fastest recipe that meets the task budget, so give only quality limits (e.g. ndcg@10>=0.83)"
            )
        self.quality = quality
        try:
            self.kind, self.data, names = read_set(self.options, image=False)
        except DataError as first:  # a table of image paths names them in an "image" column, as eval reads it
            if Path(data).is_dir():
                raise
            try:
                self.kind, self.data, names = read_set(self.options, image=True)
            except DataError:
                raise first from None
        decide.check_names(budget, names)
        self.dataset = dataset_record(self.kind, self.data, self.options)
        self.scored: dict[str, Evaluated] = {}

    def describe(self) -> dict[str, Any]:
        d = self.dataset
        data = {"name": d.name, "kind": d.kind, "sha256": d.sha256, "items": d.items, "skipped": d.skipped}
        return {"budget": self.budget, "data": data, "level": self.options.level, "draws": self.options.draws}

    def __call__(self, variant: str, model: Any) -> TaskScore:
        """The first limit's metric with its interval; passed only when every limit of the budget holds."""
        folder = None
        if getattr(model, "input_kind", "text") == "image":  # image paths are relative to the set's file
            data = Path(self.options.data)
            folder = data if data.is_dir() else data.parent
        found = score_model(self.kind, model, self.data, self.options, folder, lambda _: None)
        evaluated = Evaluated(bundle="search", variant=variant, model_sha256="", **found)
        self.scored[variant] = evaluated
        checks = [q.check(evaluated) for q in self.quality]
        lead = evaluated.metric(self.quality[0].metric)
        assert lead is not None  # check_names made sure the set has every metric the budget names
        return TaskScore(lead.name, lead.value, lead.low, lead.high, all(ok for _, ok in checks))
