"""One hierarchy of errors, every class edgert defines. The CLI prints ``EdgertError`` as one line on stderr and
exits 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EdgertError(Exception):
    """Base of every error edgert raises on purpose; the message names the cause."""


class BundleError(EdgertError):
    """A bundle that is missing, malformed, or fails verification."""


class ExportError(EdgertError):
    """A source that cannot be exported, or an export that failed."""


class MissingDependencyError(EdgertError):
    """An optional dependency is not installed; the message says what to pip install."""


class SessionError(EdgertError):
    """onnxruntime cannot build a session as configured (threads, providers, model file)."""


class InputError(EdgertError, ValueError):
    """An input that cannot be processed (a text that is not valid Unicode, an image too large to decode);
    the message names the item. A ValueError too, so callers that catch ValueError keep working."""


class TaskError(EdgertError):
    """A call that does not fit the bundle's task."""


class OptionError(EdgertError, ValueError):
    """An option with a value it cannot take. ``option`` is the field's name (``window``); the CLI shows it as
    its flag (``--window``), the library as the name."""

    def __init__(self, option: str, message: str):
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


class ModelImportError(EdgertError):
    """A model and options that cannot make a bundle; the message names the contradiction."""


class ImportOptionError(OptionError, ModelImportError):
    """An import option that cannot take its value, or that the model contradicts: both kinds at once, so callers
    may catch either."""


class ExportOptionError(OptionError, ExportError):
    """An export option that cannot take its value."""


class BudgetError(EdgertError):
    """A budget that does not parse; the message points at the bad token."""


class DataError(EdgertError):
    """An evaluation set with nothing usable in it, or in a format edgert does not read; the message says which
    file, and for a file, why."""


class RecordError(EdgertError, ValueError):
    """A result file (bench, and what builds on it) that is not what its format says: one line naming where."""


class BudgetMissError(ExportError):
    """No quantization recipe met the accuracy budget; the bundle was written with fp32 as its default model."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


class MeterUnavailable(Exception):
    """Why an energy meter cannot be used here, in words a person can act on (bench falls back, never fails)."""


class Malformed(Exception):
    """Bytes that are not a well-formed protocol-buffer message (callers turn it into a BundleError)."""


def require(module: str, extra: str) -> Any:
    """Imports an optional dependency or raises MissingDependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{module} is not installed ({exc}); run: pip install 'edgert[{extra}]'") from None
