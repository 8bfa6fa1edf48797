"""Evaluation sets in the formats people already have: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``), a table of labelled items (CSV, TSV or JSONL with a text and a label column), and a table
of scored pairs (STS: ``sentence1``, ``sentence2``, ``score``).

A bad row never stops the rest: it is skipped and recorded as a ``Problem`` (file, line, why), the report counts
them and shows the first few, and only a set with nothing usable is refused (``DataError``).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import safepath
from ..errors import DataError

#: problems kept with their text; the rest are only counted by kind
KEPT = 20
#: largest evaluation file read (a 10,000-document corpus is a few MB)
MAX_BYTES = 2 << 30


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    why: str

    def __str__(self) -> str:  # line 0: about the file as a whole
        return f"{self.file}:{self.line}: {self.why}" if self.line else f"{self.file}: {self.why}"


@dataclass
class Problems:
    """Skipped rows: the first KEPT in full, all of them counted by file."""

    shown: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    seen: set[tuple[str, int, str]] = field(default_factory=set)

    def add(self, file: Path, line: int, why: str) -> None:
        """Records a problem once: the same one found again (by the next variant scored) is not counted twice."""
        if (file.name, line, why) in self.seen:
            return
        self.seen.add((file.name, line, why))
        self.counts[file.name] += 1
        if len(self.shown) < KEPT:
            self.shown.append(Problem(file.name, line, why))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Retrieval:
    """A BEIR set: documents and queries by id, and graded judgements, all ids checked to exist."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    problems: Problems
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Labelled:
    """Items (texts, or image paths) with their gold labels, and a slice key per item when one is named."""

    name: str
    items: list[str]
    labels: list[str]
    slices: list[str] | None
    problems: Problems
    files: tuple[Path, ...]
    #: the table or the ImageFolder tree, as problems name it
    source: Path


@dataclass(frozen=True)
class Pairs:
    name: str
    first: list[str]
    second: list[str]
    scores: list[float]
    problems: Problems
    files: tuple[Path, ...]


def _file(path: Path) -> Path:
    safepath.regular_file(path, error=DataError, what="evaluation file", max_bytes=MAX_BYTES)
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            yield from enumerate(f, 1)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} of a line)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def _jsonl(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, object]]]:
    for number, line in _lines(_file(path)):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.add(path, number, f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else 'too deep'})")
            continue
        if not isinstance(row, dict):
            problems.add(path, number, f"a JSON {type(row).__name__}, not an object")
            continue
        yield number, row


def _text(row: dict[str, object], key: str) -> str | None:
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _table(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, object]]]:
    """Rows of a JSONL, CSV or TSV file as dicts, by its suffix."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path, problems)
        return
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"{path}: edgert reads .jsonl, .csv and .tsv evaluation files, not {suffix or 'no suffix'}")
    lines = (line for _, line in _lines(_file(path)))
    reader = csv.DictReader(lines, delimiter="\t" if suffix == ".tsv" else ",")
    try:
        for row in reader:
            if None in row:  # more fields than the header names
                problems.add(
                    path, reader.line_num, f"{len(row) - 1 + len(row[None])} fields, the header has {len(row) - 1}"
                )
                continue
            yield reader.line_num, dict(row)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None


def read_retrieval(folder: Path, split: str = "test") -> Retrieval:
    """A BEIR folder. Documents are ``title + " " + text`` (BEIR's own encoding), queries their text; a qrels row
    naming an unknown query or document, or with a grade that is not a whole number, is skipped."""
    problems = Problems()
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for f in (corpus_file, queries_file, qrels_file):
        if not f.exists():
            raise DataError(f"{folder}: not a BEIR folder (no {f.relative_to(folder)})")
    corpus: dict[str, str] = {}
    for number, row in _jsonl(corpus_file, problems):
        doc_id, text, title = _text(row, "_id"), _text(row, "text"), _text(row, "title") or ""
        if doc_id is None or text is None:
            problems.add(corpus_file, number, "no string _id and text")
        elif doc_id in corpus:
            problems.add(corpus_file, number, f"document {doc_id!r} again (the first is kept)")
        else:
            corpus[doc_id] = f"{title} {text}".strip() if title else text
    queries: dict[str, str] = {}
    for number, row in _jsonl(queries_file, problems):
        query_id, text = _text(row, "_id"), _text(row, "text")
        if query_id is None or text is None:
            problems.add(queries_file, number, "no string _id and text")
        elif query_id in queries:
            problems.add(queries_file, number, f"query {query_id!r} again (the first is kept)")
        else:
            queries[query_id] = text
    qrels: dict[str, dict[str, int]] = {}
    for number, line in _lines(_file(qrels_file)):
        fields = line.rstrip("\r\n").split("\t")
        if not line.strip() or (number == 1 and fields[0] in ("query-id", "query_id", "qid")):
            continue
        if len(fields) != 3:
            problems.add(qrels_file, number, f"{len(fields)} fields, not query-id, corpus-id, score")
            continue
        q, d, grade = fields
        try:
            g = int(grade)
        except ValueError:
            problems.add(qrels_file, number, f"score {grade!r} is not a whole number")
            continue
        if q not in queries:
            problems.add(qrels_file, number, f"query {q!r} is not in queries.jsonl")
        elif d not in corpus:
            problems.add(qrels_file, number, f"document {d!r} is not in corpus.jsonl")
        else:
            qrels.setdefault(q, {})[d] = g
    qrels = {q: j for q, j in qrels.items() if any(g > 0 for g in j.values())}
    if not corpus or not qrels:
        what = "no usable document" if not corpus else "no query with a relevant document"
        raise DataError(f"{folder}: {what} ({problems.total} rows skipped{_first(problems)})")
    files = (corpus_file, queries_file, qrels_file)
    return Retrieval(folder.name, corpus, {q: queries[q] for q in sorted(qrels)}, qrels, problems, files)


def read_labelled(path: Path, item: str = "text", label: str = "label", slice_by: str | None = None) -> Labelled:
    """A table of items and labels. A row without the item or the label is skipped; for images, ITEM holds a path
    relative to the file's folder."""
    problems = Problems()
    items, labels, slices = [], [], []
    for number, row in _table(path, problems):
        value, gold = _text(row, item), _text(row, label)
        key = _text(row, slice_by) if slice_by else None
        if not value or not gold:  # an empty cell is a missing one
            problems.add(path, number, f"no {item!r} and {label!r}")
            continue
        if slice_by and key is None:
            problems.add(path, number, f"no {slice_by!r} to slice by")
            continue
        items.append(value)
        labels.append(gold)
        slices.append(key or "")
    if not items:
        raise DataError(f"{path}: no row with {item!r} and {label!r} ({problems.total} rows skipped{_first(problems)})")
    return Labelled(path.stem, items, labels, slices if slice_by else None, problems, (path,), path)


def read_pairs(path: Path, first: str = "sentence1", second: str = "sentence2", score: str = "score") -> Pairs:
    problems = Problems()
    a, b, s = [], [], []
    for number, row in _table(path, problems):
        x, y, raw = _text(row, first), _text(row, second), row.get(score)
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = math.nan
        if x is None or y is None or not math.isfinite(value):
            problems.add(path, number, f"no {first!r}, {second!r} and a numeric {score!r}")
            continue
        a.append(x)
        b.append(y)
        s.append(value)
    if len(a) < 3:
        raise DataError(
            f"{path}: {len(a)} usable pairs, a correlation needs 3 ({problems.total} skipped{_first(problems)})"
        )
    return Pairs(path.stem, a, b, s, problems, (path,))


#: what an ImageFolder tree's files may be (others, such as a README, are not items)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image_folder(folder: Path) -> Labelled:
    """An ImageFolder tree: one folder per class, named by its label, holding that class's images. Files with
    other suffixes are skipped and counted; whether an image decodes is found when it is scored."""
    problems = Problems()
    items, labels = [], []
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in classes:
        for f in sorted(d.iterdir()):
            if f.name.startswith("."):
                continue
            if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
                problems.add(f, 0, f"in {d.name}/: not an image file by its name")
                continue
            items.append(str(f.relative_to(folder)))
            labels.append(d.name)
    if not items:
        raise DataError(f"{folder}: no images in class folders (an ImageFolder tree has one folder per label)")
    return Labelled(folder.name, items, labels, None, problems, tuple(folder / i for i in items), folder)


def looks_like(path: Path) -> str:
    """Which reader fits PATH: "retrieval" (a BEIR folder), "speech" (a folder of WAVs and their segments),
    "images" (an ImageFolder tree), "tensors" (an .npz), "pairs" (a table whose header has sentence1 and
    sentence2) or "labelled"."""
    if path.is_dir():
        if (path / "corpus.jsonl").exists():
            return "retrieval"
        return "speech" if any(path.glob("*.wav")) else "images"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npz":
        return "tensors"
    problems = Problems()
    for _, row in _table(path, problems):
        return "pairs" if "sentence1" in row and "sentence2" in row else "labelled"
    raise DataError(f"{path}: no rows ({problems.total} skipped{_first(problems)})")


def _first(problems: Problems) -> str:
    return f"; first: {problems.shown[0]}" if problems.shown else ""
