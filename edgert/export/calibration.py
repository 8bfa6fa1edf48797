"""Calibration and validation data for quantization, kept apart so a recipe is never judged on what tuned it.

Built in: ``edgert/data/calibration.txt`` and ``edgert/data/validation.txt``, varied real text written for
edgert (prose, queries, reviews, code, logs, lists, long documents, 30-odd languages and scripts), disjoint by
construction and checked by the tests. In those files ``\\n`` and ``\\t`` stand for a newline and a tab.

A user's calibration is a text file (one text per line) or a folder of images. Validation stays the built-in
set for text (minus any line that also appears in the user's file); a folder of images is split in two by file
order, even files for calibration and odd ones for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ExportError
from ..quality import builtin_texts
from ..tasks.text import read_lines as text_lines

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_lines(path: Path) -> list[str]:
    """Non-blank lines of a UTF-8 text file; a bad byte is reported with its line number."""
    lines = [line for line in text_lines(path, error=ExportError) if line.strip()]
    if not lines:
        raise ExportError(f"{path}: no calibration texts (the file has no non-blank lines)")
    return lines


@dataclass(frozen=True)
class Data:
    """Calibration and validation items (texts, or image paths) and where they came from."""

    calibration: tuple[str, ...]
    validation: tuple[str, ...]
    source: str
    kind: str  # "text" or "image"
    dropped: int = 0  # validation items left out because the calibration data contains them

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "calibration_items": len(self.calibration),
            "validation_items": len(self.validation),
            "validation_dropped_as_overlap": self.dropped,
        }


def for_task(task: str, user: str | None) -> Data:
    """Calibration and validation data for a task, from the user's file or folder or the built-in sets."""
    if task == "image-classification":
        if user is None:
            raise ExportError(
                "image models need calibration images for a quantized export: pass --calibration FOLDER "
                "(or --quantize none)"
            )
        folder = Path(user).expanduser()
        if not folder.is_dir():
            raise ExportError(f"{folder}: an image model's calibration must be a folder of images")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if len(files) < 4:
            raise ExportError(f"{folder}: needs at least 4 images ({', '.join(IMAGE_SUFFIXES)}), found {len(files)}")
        return Data(tuple(map(str, files[0::2])), tuple(map(str, files[1::2])), str(folder), "image")
    validation = builtin_texts("validation")
    if user is None:
        return Data(tuple(builtin_texts("calibration")), tuple(validation), "built-in", "text")
    path = Path(user).expanduser()
    if path.is_dir():
        raise ExportError(f"{path}: a text model's calibration must be a text file, one text per line")
    texts = read_lines(path)
    seen = set(texts)
    kept = tuple(t for t in validation if t not in seen)
    return Data(tuple(texts), kept, str(path), "text", dropped=len(validation) - len(kept))
