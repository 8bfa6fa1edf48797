"""Where edgert keeps its files: EDGERT_HOME, else $XDG_CACHE_HOME/edgert, else ~/.cache/edgert."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("EDGERT_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "edgert"


def bundles_dir() -> Path:
    return home() / "bundles"


def ort_cache_dir() -> Path:
    return home() / "ort-cache"
