"""``edgert eval``: quality on the user's own data beside its cost on this device, and the model-swap decision.

- ``data``: the sets (BEIR folders, labelled tables, scored pairs), bad rows skipped and counted;
- ``metrics``: retrieval, classification and correlation metrics from per-item values, and the bootstrap;
- ``search``: exact cosine top-k in bounded memory;
- ``score``: one pipeline on one set; ``runner``: every variant, with bench's cost; ``decide``: the Pareto front
  and the budget; ``records``: the result and its JSON form (``edgert.eval/2``).
"""

from __future__ import annotations

from .options import EvalOptions
from .runner import evaluate

__all__ = ["EvalOptions", "evaluate"]
