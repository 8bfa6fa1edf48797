"""Evaluation sets that are not text: a raw model's inputs and reference outputs (an ``.npz``), and recordings with
their reference speech segments (a folder of WAV files with ``segments.csv`` or RTTM files). Bad rows are skipped
and counted as in ``data``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .data import Problems, _file, _lines, _table, _text


@dataclass(frozen=True)
class Tensors:
    """A raw model's inputs by input name and its reference outputs by output name, items along the first axis."""

    name: str
    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    problems: Problems
    files: tuple[Path, ...]

    @property
    def items(self) -> int:
        return len(next(iter(self.expected.values())))


#: the prefix of a reference output's key in a tensors .npz (``expected.logits``); every other key is an input
EXPECTED = "expected."


def read_tensors(path: Path) -> Tensors:
    """An .npz of a raw model's inputs (keys: the input names) and reference outputs (keys: ``expected.`` and the
    output name), every array with the items along its first axis. Pickled objects are refused, not loaded."""
    import zipfile

    _file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz of numeric arrays ({exc})") from None
    inputs = {k: v for k, v in arrays.items() if not k.startswith(EXPECTED)}
    expected = {k[len(EXPECTED) :]: v for k, v in arrays.items() if k.startswith(EXPECTED)}
    if not inputs or not expected:
        raise DataError(
            f"{path}: needs the model's inputs by name and at least one reference output named {EXPECTED}OUTPUT "
            f"(has {', '.join(sorted(arrays)) or 'no arrays'})"
        )
    for key, a in arrays.items():
        if a.dtype.kind not in "biuf" or a.ndim < 1:
            raise DataError(f"{path}: {key} is {a.dtype} of shape {a.shape}, not numbers along an item axis")
    counts = {k: len(a) for k, a in arrays.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        raise DataError(f"{path}: arrays disagree on the number of items (first axis): {shown}")
    return Tensors(path.stem, inputs, expected, Problems(), (path,))


@dataclass(frozen=True)
class Speech:
    """Recordings and their reference speech segments (seconds), by recording name (the WAV's stem)."""

    name: str
    recordings: dict[str, Path]
    segments: dict[str, list[tuple[float, float]]]
    problems: Problems
    files: tuple[Path, ...]


def read_speech(folder: Path) -> Speech:
    """A folder of WAV files and their reference speech: ``segments.csv`` (columns file, start, end in seconds;
    one row per segment) or RTTM files (``SPEAKER file 1 start duration ...``). A recording no row names has no
    speech; a row naming a recording that is not there, or with an end before its start, is skipped."""
    problems = Problems()
    recordings = {f.stem: f for f in sorted(folder.glob("*.wav")) if f.is_file() and not f.name.startswith(".")}
    if not recordings:
        raise DataError(f"{folder}: no .wav files (a speech set is a folder of WAVs with segments.csv or .rttm)")
    table, rttms = folder / "segments.csv", sorted(folder.glob("*.rttm"))
    if not table.exists() and not rttms:
        raise DataError(f"{folder}: no segments.csv or .rttm file saying where the speech is")
    segments: dict[str, list[tuple[float, float]]] = {name: [] for name in recordings}

    def add(file: Path, number: int, name: str | None, start: float, end: float) -> None:
        if name is None or not (math.isfinite(start) and math.isfinite(end)):
            problems.add(file, number, "needs a recording name and numeric times")
        elif name not in recordings:
            problems.add(file, number, f"recording {name!r} has no {name}.wav here")
        elif not 0 <= start < end:
            problems.add(file, number, f"segment {start:g}-{end:g} s is empty or negative")
        else:
            segments[name].append((start, end))

    def number(value: object) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    files = [*recordings.values()]
    if table.exists():
        files.append(table)
        for line, row in _table(table, problems):
            name = _text(row, "file")
            add(table, line, Path(name).stem if name else None, number(row.get("start")), number(row.get("end")))
    for rttm in rttms:
        files.append(_file(rttm))
        for line, text in _lines(rttm):
            fields = text.split()
            if not fields or fields[0].startswith(";"):
                continue
            if fields[0] != "SPEAKER" or len(fields) < 5:
                problems.add(rttm, line, "not an RTTM SPEAKER line (SPEAKER file channel start duration ...)")
                continue
            start, duration = number(fields[3]), number(fields[4])
            add(rttm, line, fields[1], start, start + duration)
    merged = {name: _merge(found) for name, found in segments.items()}
    return Speech(folder.name, recordings, merged, problems, tuple(files))


def _merge(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping segments (two speakers at once, in RTTM) as one stretch of speech."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(segments):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
