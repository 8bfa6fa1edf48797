"""Evaluation sets made from material on the machine, no download (FACTS.md): a BEIR-format retrieval set from the
standard library's module docstrings (query: a module's first docstring line; relevant document: the rest of it),
and STS-style pairs. Used by the tests, the README's run and benchmarks/eval_memory.py.

    python -m tests.evalsets OUT_DIR      writes OUT_DIR/stdlib (BEIR) and OUT_DIR/pairs.csv
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

#: modules left out: GUI, joke and platform-specific ones, and those with side effects on import
SKIP = {"this", "antigravity", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data", "lib2to3", "ensurepip",
        "venv", "msilib", "winreg", "winsound", "_winapi", "nturl2path", "xxsubtype", "test"}  # fmt: skip


def stdlib_modules() -> Iterator[ModuleType]:
    """Every public top-level standard-library module this platform imports, by name (SKIP left out)."""
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module this platform lacks
            continue


def stdlib_docstrings() -> list[tuple[str, str, str]]:
    """(module, first line, rest) for every top-level standard-library module with a usable docstring: at least
    200 characters, a first line of 3+ words."""
    out = []
    for module in stdlib_modules():
        doc = (module.__doc__ or "").strip()
        first, _, rest = doc.partition("\n")
        rest = " ".join(rest.split())
        if len(doc) >= 200 and len(first.split()) >= 3 and len(rest) >= 40:
            out.append((module.__name__, first.strip(), rest))
    return out


def write_stdlib_beir(folder: Path, limit: int | None = None) -> Path:
    rows = stdlib_docstrings()[:limit]
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for name, _, rest in rows:
            f.write(json.dumps({"_id": f"doc-{name}", "title": "", "text": rest}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for name, first, _ in rows:
            f.write(json.dumps({"_id": f"q-{name}", "text": first}) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for name, _, _ in rows:
            f.write(f"q-{name}\tdoc-{name}\t1\n")
    return folder


#: (sentence1, sentence2, score): paraphrases score high, related sentences in the middle, unrelated ones low
PAIRS = [
    ("A man is playing a guitar.", "Someone plays the guitar.", 4.8),
    ("The cat sits on the mat.", "A cat is sitting on a rug.", 4.2),
    ("Refunds take ten working days.", "A refund is issued within ten business days.", 4.6),
    ("The train leaves at noon.", "The train departs at 12 o'clock.", 4.7),
    ("She is reading a book in the park.", "A woman reads outdoors.", 3.6),
    ("The stock market fell sharply today.", "Shares dropped a lot on Monday.", 3.4),
    ("He cooks pasta for dinner.", "He is making spaghetti in the evening.", 3.8),
    ("The router needs a reset.", "How do I restart my modem?", 2.9),
    ("The weather is sunny and warm.", "It is a hot, bright day.", 4.0),
    ("A child is riding a bicycle.", "A kid rides a bike down the street.", 4.4),
    ("The meeting was moved to Friday.", "Friday is when the meeting now takes place.", 4.5),
    ("Python is a programming language.", "Snakes live in many habitats.", 0.8),
    ("The mitochondria is the powerhouse of the cell.", "Cells get energy from mitochondria.", 3.9),
    ("The concert was cancelled.", "The band played for three hours.", 1.2),
    ("I lost my keys.", "The keys to success are patience and work.", 0.9),
    ("A dog barks at the mailman.", "The stock market fell sharply today.", 0.1),
    ("The soup is too salty.", "A man is playing a guitar.", 0.0),
    ("Edge devices run small models.", "Small models run on edge hardware.", 4.7),
    ("The library opens at nine.", "Books can be borrowed for two weeks.", 1.8),
    ("She bought a new phone.", "Her old phone was broken, so she got another.", 3.0),
]


def write_pairs(path: Path) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence1", "sentence2", "score"])
        w.writerows(PAIRS)
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1])
    write_stdlib_beir(out / "stdlib")
    write_pairs(out / "pairs.csv")
    print(out)
