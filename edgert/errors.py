"""One hierarchy of errors. The CLI prints ``EdgertError`` as one line on stderr and exits 2."""


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


def require(module: str, extra: str):
    """Imports an optional dependency or raises MissingDependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{module} is not installed ({exc}); run: pip install 'edgert[{extra}]'") from None
