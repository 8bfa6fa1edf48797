"""What ``edgert eval`` takes, declared once (the CLI builds its flags from these fields). Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..options import check, option


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True)
class EvalOptions:
    data: Path = option(
        help="a BEIR folder (retrieval), a .csv/.tsv/.jsonl of labelled items or of scored sentence pairs, an "
        "ImageFolder tree, a folder of WAVs with segments.csv or .rttm (speech), or an .npz of a raw model's inputs "
        "and expected.OUTPUT references",
        metavar="PATH", parse=Path,
    )  # fmt: skip
    variants: tuple[str, ...] = option(
        (), help="model variants to evaluate in each bundle, e.g. fp32,int8", parse=_names, shown="every one"
    )
    metrics: tuple[str, ...] = option(
        (), help="a raw model's metrics against the .npz references: mse, mae, top1", parse=_names, flag="--metric",
        shown="every one that applies",
    )  # fmt: skip
    k: int = option(10, help="cut-off of the retrieval metrics (nDCG@k, recall@k, MRR@k)")
    split: str = option("test", help="the BEIR qrels split (qrels/SPLIT.tsv)")
    text_column: str = option("text", help="the column of the items (texts, or image paths relative to the file)")
    label_column: str = option("label", help="the column of the gold labels")
    slice_column: str | None = option(None, help="a column to report the headline metric per value of")
    batch_size: int = option(32, help="items per model call")
    max_tokens: int = option(
        512, help="padded tokens per model call at most (texts x longest): long texts go in smaller batches, which "
        "bounds memory (10,000 long documents: benchmarks/eval_memory.py)",
    )  # fmt: skip
    draws: int = option(1000, help="bootstrap resamples per interval")
    level: float = option(0.95, help="the intervals' coverage")
    seed: int = option(0, help="the bootstrap's random seed")
    cost: bool = option(True, help="measure each variant's p50, energy and peak RSS with bench's quick settings")
    card: bool = option(False, help="write the result into each bundle's card (card.evaluations; hashes untouched)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))  # frozen: a str from Python callers becomes a Path once
        check(1 <= self.k <= 1000, "k", f"must be between 1 and 1000, got {self.k}")
        check(1 <= self.batch_size <= 4096, "batch_size", f"must be between 1 and 4096, got {self.batch_size}")
        check(self.max_tokens >= 1, "max_tokens", f"must be at least 1, got {self.max_tokens}")
        check(100 <= self.draws <= 100_000, "draws", f"must be between 100 and 100000, got {self.draws}")
        check(math.isfinite(self.level) and 0.5 <= self.level < 1, "level", f"must be in [0.5, 1), got {self.level}")
        check(self.split and "/" not in self.split and self.split not in (".", ".."), "split", "must be a file name")
