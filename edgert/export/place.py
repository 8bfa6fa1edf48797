"""Putting a freshly built bundle at its output path without ever deleting what export did not write.

- ``--force`` replaces only an existing edgert bundle (or an empty directory), and never the export's source.
- The new bundle is built in ``.<name>.partial-<pid>`` beside the output and swapped in with one atomic
  ``renameat2(RENAME_EXCHANGE)`` on Linux. Where the filesystem cannot exchange, the old bundle is first renamed
  to ``.<name>.old-<pid>``; a process killed between the two renames leaves that directory, and the next export
  to the same path puts it back before it starts.
- Work directories of processes that no longer run (an export killed by SIGKILL) are deleted by the next export
  into the same directory.

Only the standard library: the CLI checks an output path with this before anything heavy is imported.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from ..bundle import FORMAT, MANIFEST
from ..errors import ExportError

_WORK = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)$")


def is_bundle(path: Path) -> bool:
    try:
        found: object = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("format")
        return found == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def unlisted(out: Path) -> list[str]:
    """Files and folders in a bundle directory that its manifest does not list (a user's notes, results)."""
    try:
        listed = set(json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        listed = set()
    listed.add(MANIFEST)
    dirs = {p for name in listed for p in Path(name).parents if str(p) != "."}
    extra: list[str] = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if rel in listed or (p.is_dir() and not p.is_symlink() and Path(rel) in dirs):
            continue
        if not any(Path(rel).is_relative_to(Path(e)) for e in extra):
            extra.append(rel)
    return extra


def check_output(out: Path, source: Path | None, force: bool, *, discard_unlisted: bool = False) -> None:
    """Refuses, before any work, an output that export would have to delete and did not write: ``force``
    replaces a bundle that holds only the files its manifest lists; ``discard_unlisted`` one holding others too."""
    if source is not None:
        src = source.resolve()
        if out == src or out in src.parents:
            raise ExportError(f"{out}: is the export's source or holds it ({src}); choose another output directory")
    if not os.path.lexists(out):
        return
    if not force:
        raise ExportError(f"{out}: already exists; pass --force to replace it")
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"{out}: exists and is not a bundle directory; --force replaces only edgert bundles")
    if any(out.iterdir()) and not is_bundle(out):
        raise ExportError(
            f"{out}: exists and is not an edgert bundle (no {MANIFEST}); --force replaces only bundles, "
            "so nothing was touched: choose another output or remove it yourself"
        )
    extra = unlisted(out) if any(out.iterdir()) else []
    if extra and not discard_unlisted:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise ExportError(
            f"{out}: holds {len(extra)} file(s) its manifest does not list ({shown}); --force replaces only what "
            "edgert wrote, so nothing was touched: move them, or pass --discard-unlisted to delete them too"
        )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def recover(out: Path, echo: Callable[[str], object] | None = None) -> None:
    """Before an export to ``out``: put back a bundle that an interrupted swap left aside, and delete the work
    directories of dead exports to the same path."""
    echo = echo or (lambda s: print(s, file=sys.stderr))
    if not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        m = _WORK.match(entry.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])) or not entry.is_dir():
            continue
        if m["kind"] == "old" and not os.path.lexists(out) and is_bundle(entry):
            os.replace(entry, out)
            echo(f"edgert: restored {out} from {entry.name}, left by an interrupted export")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            echo(f"edgert: removed {entry}, left by an export that no longer runs")


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths (Linux renameat2 with RENAME_EXCHANGE); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False  # ENOSYS, EINVAL (a filesystem without exchange): the caller falls back


def place(tmp: Path, out: Path) -> None:
    """Moves the built bundle ``tmp`` to ``out``, replacing a bundle there; ``out`` is never missing for long."""
    if not os.path.lexists(out):
        os.replace(tmp, out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old bundle
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    os.replace(tmp, out)  # a kill before this line leaves `old`, which recover() puts back
    shutil.rmtree(old, ignore_errors=True)
