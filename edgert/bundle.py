"""The bundle on disk: a directory with model files, pre-processing files and the ``edgert.json`` manifest.

The manifest is versioned. It lists every file with its size and sha256, says what the model is for (task,
inputs, outputs, pre- and post-processing) and carries the model card and provenance written at export.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import integrity
from .errors import BundleError, EdgertError
from .safepath import plain_relative, read_bounded

MANIFEST = "edgert.json"
FORMAT = "edgert.bundle"
SCHEMA_VERSION = 1


MAX_JSON_BYTES = 16 << 20  # a manifest or a preprocessor config: a few KB in practice
MAX_JSON_DEPTH = 32


def _depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``value``, counting no further than ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def read_json(path: Path, *, error: type[EdgertError], what: str) -> Any:
    """A JSON file edgert did not write (a manifest, a preprocessor config): a regular file of at most 16 MiB,
    UTF-8, nested at most 32 deep; anything else is one line naming the file."""
    try:
        text = read_bounded(path, MAX_JSON_BYTES, error=error, what=what).decode("utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: corrupt {what}, not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: corrupt or truncated {what} ({exc})") from None
    except RecursionError:
        raise error(f"{path}: {what} nests deeper than {MAX_JSON_DEPTH} levels; refused") from None
    if _depth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise error(f"{path}: {what} nests deeper than {MAX_JSON_DEPTH} levels; refused")
    return raw


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):  # hashlib.file_digest is Python 3.11+, and no faster than this
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


@dataclass(frozen=True)
class FileEntry:
    name: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """A bundle whose manifest has been read and checked. Build one with ``Bundle.open(path)``."""

    path: Path
    task: str
    models: dict[str, str]
    default_model: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    pre: dict[str, Any]
    post: dict[str, Any]
    files: dict[str, FileEntry]
    card: dict[str, Any] = field(default_factory=dict)
    model_data: dict[str, str] = field(default_factory=dict)  # variant -> its external-data (weights) file
    provenance: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify: bool = False) -> Bundle:
        """Reads and checks ``edgert.json``; every listed file must exist with its recorded size.

        ``verify=True`` also checks every file's sha256 (``load()`` checks the files it uses).
        """
        root = Path(path)
        if not root.exists():
            raise BundleError(f"{root}: no such bundle directory")
        if not root.is_dir():
            raise BundleError(f"{root}: not a directory (a bundle is a directory holding {MANIFEST})")
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(f"{root}: no {MANIFEST}; not an edgert bundle (make one with `edgert export`)")
        raw = read_json(manifest_path, error=BundleError, what="manifest")
        bundle = cls._from_manifest(root, raw)
        bundle.check_sizes()
        if verify:
            bundle.verify()
        return bundle

    @classmethod
    def _from_manifest(cls, root: Path, raw: Any) -> Bundle:
        where = root / MANIFEST
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BundleError(f'{where}: not an edgert manifest (no "format": "{FORMAT}")')
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {version!r} is not supported (this edgert reads {SCHEMA_VERSION})"
            )
        try:
            files = {name: FileEntry(name, int(e["bytes"]), str(e["sha256"])) for name, e in raw["files"].items()}
            task = str(raw["task"])
            models = {str(k): str(v) for k, v in raw["models"].items()}
            default_model = str(raw["default_model"])
            bundle = cls(
                path=root,
                task=task,
                models=models,
                default_model=default_model,
                inputs=tuple(raw["inputs"]),
                outputs=tuple(raw["outputs"]),
                pre=dict(raw.get("pre") or {}),
                post=dict(raw.get("post") or {}),
                files=files,
                card=dict(raw.get("card") or {}),
                model_data={str(k): str(v) for k, v in (raw.get("model_data") or {}).items()},
                provenance=dict(raw.get("provenance") or {}),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{where}: malformed manifest ({type(exc).__name__}: {exc})") from None
        for name in files:
            _check_name(name, where)
        if not task:  # which tasks exist is the pipelines' registry's to say (edgert.tasks.registry), at load
            raise BundleError(f"{where}: task is empty")
        if default_model not in models:
            raise BundleError(f"{where}: default_model {default_model!r} is not one of {sorted(models)}")
        for variant, name in (*models.items(), *bundle.model_data.items()):
            if name not in files:
                raise BundleError(f"{where}: model {variant!r} file {name} is not listed under files")
        return bundle

    def file(self, name: str) -> Path:
        """The path of a listed file; it must resolve inside the bundle (a symlink out of it is refused)."""
        if name not in self.files:
            raise BundleError(f"{self.path}: {name} is not listed in {MANIFEST}")
        path = self.path / name
        root = os.path.realpath(self.path)
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root:
            raise BundleError(f"{path}: resolves outside the bundle (to {real}); edgert reads only files inside it")
        return path

    def model_file(self, variant: str | None = None) -> Path:
        variant = variant or self.default_model
        if variant not in self.models:
            raise BundleError(
                f"{self.path}: no {variant!r} model in this bundle (has: {', '.join(sorted(self.models))})"
            )
        return self.file(self.models[variant])

    def model_files(self, variant: str | None = None, *, verify: bool = False, remember: bool = False) -> list[str]:
        """Every file onnxruntime reads for a variant: the graph and each external-data file it names.

        The external files are read from the graph itself, not from the manifest's ``model_data``: a graph that
        names a file the manifest does not list is refused, since its bytes could not be verified. ``verify``
        checks the sha256 of each (``remember``: see ``verify``).
        """
        variant = variant or self.default_model
        self.model_file(variant)
        graph = self.models[variant]
        if verify:
            facts = self._verify_one(graph, remember=remember, facts=lambda p: {"external": locations(p)})
            refs = facts["external"]
        else:
            refs = locations(self.file(graph))
        names = [graph]
        for location in refs:
            name = posixpath.normpath(posixpath.join(posixpath.dirname(graph), location))
            if not plain_relative(location) or name not in self.files:
                raise BundleError(
                    f"{self.file(graph)}: reads external data {location!r}, which {MANIFEST} does not list; "
                    "edgert runs only bytes it can verify"
                )
            names.append(name)
        if verify:
            self.verify(names[1:], remember=remember)
        return names

    def pre_files(self) -> list[str]:
        """The pre-processing files the pipeline reads (tokenizer, configs); each must be listed."""
        names = self.pre.get("files", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BundleError(f"{self.path / MANIFEST}: pre.files must be a list of file names, got {names!r}")
        for name in names:
            if name not in self.files:
                raise BundleError(f"{self.path / MANIFEST}: pre.files names {name}, which is not listed under files")
        return list(names)

    def check_sizes(self) -> None:
        for entry in self.files.values():
            p = self.file(entry.name)
            if not p.is_file():
                raise BundleError(f"{p}: listed in {MANIFEST} but missing")
            size = p.stat().st_size
            if size != entry.bytes:
                raise BundleError(
                    f"{p}: size mismatch (expected {entry.bytes} bytes, got {size}); truncated or replaced"
                )

    def verify(self, names: Iterable[str] | None = None, *, remember: bool = False) -> None:
        """Checks the sha256 of the named files (all files by default); raises BundleError on a mismatch.

        ``remember=True`` skips a file hashed before whose size, mtime, ctime and inode are unchanged, if a stamp
        signed with this user's key says so (see edgert.integrity): any write to a file moves its ctime, so a
        changed file is always hashed again. This keeps hashing (about 60 ms for a 90 MB model) out of every cold
        start after the first. Without ``names``, every model's external-data files must be listed too.
        """
        done: set[str] = set()
        if names is None:
            for variant in self.models:
                done.update(self.model_files(variant, verify=True, remember=remember))
        for name in self.files if names is None else names:
            if name not in done:
                self._verify_one(name, remember=remember)

    def _verify_one(
        self, name: str, *, remember: bool, facts: Callable[[Path], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Hashes one file (unless remembered) and returns the facts remembered with it, computed by ``facts``."""
        if name not in self.files:
            raise BundleError(f"{self.path}: {name} is not listed in {MANIFEST}")
        entry = self.files[name]
        path = self.file(name)
        known = integrity.recall(path, entry.sha256) if remember else None
        if known is not None and (facts is None or known):
            return known
        got = sha256_file(path)
        if got != entry.sha256:
            raise BundleError(f"{path}: sha256 mismatch (expected {entry.sha256[:12]}.., got {got[:12]}..)")
        found = facts(path) if facts is not None else {}
        if remember:
            integrity.remember(path, entry.sha256, found)
        return found

    @property
    def name(self) -> str:
        return str(self.provenance.get("name") or self.path.name)


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", list: "a list"}
_PLURAL = {int: "whole numbers", float: "numbers", str: "strings"}


def setting(
    section: dict[str, Any],
    key: str,
    kind: type,
    default: Any,
    where: str,
    *,
    minimum: float | None = None,
    choices: tuple[Any, ...] | None = None,
    items: type | None = None,
) -> Any:
    """A typed value from a manifest or preprocessor section, or one line naming the key and what it holds.

    JSON true/false are the only booleans ("false" is not false), a whole number is not a bool, and a number
    must be finite.
    """
    value = section.get(key, default)
    if value is None and default is None:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if ok and kind is float and not math.isfinite(value):
        ok = False
    if ok and items is not None:
        ok = all(isinstance(v, items) and not isinstance(v, bool) for v in value) or (
            items is float and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        )
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and choices is not None and value not in choices:
        ok = False
    if not ok:
        want = _KINDS.get(kind, kind.__name__)
        if items is not None:
            want += f" of {_PLURAL.get(items, items.__name__)}"
        if minimum is not None:
            want += f" >= {minimum:g}"
        if choices is not None:
            want = "one of " + ", ".join(map(str, choices))
        raise BundleError(f"{where}: {key} must be {want}, got {value!r}")
    return value


def _check_name(name: str, where: Path) -> None:
    """A manifest file name is a normalised relative POSIX path inside the bundle: no .., no absolute path."""
    if not plain_relative(name):
        raise BundleError(f"{where}: file entry {name!r} is not a plain relative path inside the bundle")


def locations(model: Path) -> list[str]:
    from .external_data import locations as found

    return found(model)


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    """Hashes every file under ``root`` (except the manifest) into ``manifest["files"]`` and writes it."""
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(root).as_posix()] = file_entry(p)
    body = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **manifest, "files": files}
    out = root / MANIFEST
    out.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def update_card(root: Path, key: str, value: Any) -> None:
    """Sets ``card[KEY]`` in ROOT's manifest, atomically (a temporary file, then a rename). Nothing else changes:
    file hashes are kept as they are, so a record never blesses a file that changed since export."""
    path = root / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: cannot read it to record into the card ({exc})") from None
    raw.setdefault("card", {})[key] = value
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"{path}: cannot write the card ({exc.strerror})") from None
