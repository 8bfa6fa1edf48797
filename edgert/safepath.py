"""One rule for every path edgert reads or writes on behalf of input it did not make, after tarfile's data filter
(PEP 706): a name from outside (a manifest entry, a model's external-data location) is a normalised relative POSIX
path; what it names must resolve, symlinks and all, inside its root; it must be a regular file (never a device, a
FIFO or a directory); and it is read only up to a bound that comes from what the model declares. An output path
may replace a regular file, never a symlink, a device node, a FIFO or a directory.

Only the standard library: the CLI checks output paths with this before anything heavy is imported.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from pathlib import Path

from .errors import EdgertError


def plain_relative(name: object) -> bool:
    """A normalised relative POSIX path that stays inside its root: no ``..``, no absolute path, no ``./``, no
    backslash, no NUL, not empty."""
    return (
        isinstance(name, str)
        and bool(name)
        and "\\" not in name
        and "\x00" not in name
        and not name.startswith("/")
        and posixpath.normpath(name) == name
        and name != "."
        and name != ".."
        and not name.startswith("../")
    )


def inside(root: Path, name: str, *, error: type[EdgertError], what: str) -> Path:
    """The real path of ``root/name``; it must be a plain relative name and resolve inside ``root``."""
    if not plain_relative(name):
        raise error(f"{what} {name!r} is not a plain relative path inside {root}")
    base = os.path.realpath(root)
    real = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, real]) != base:
        raise error(f"{what} {name!r} resolves outside {root} (to {real}); edgert reads only files inside it")
    return Path(real)


def regular_file(path: Path, *, error: type[EdgertError], what: str, max_bytes: int | None = None) -> int:
    """The size of ``path``, which must be a regular file (after symlinks) of at most ``max_bytes``."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise error(f"{what} {path}: is {kind}; edgert reads only regular files")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{what} {path}: is {st.st_size:,} bytes, more than the {max_bytes:,} allowed here")
    return st.st_size


def copy_bounded(src: Path, dst: Path, nbytes: int, *, error: type[EdgertError], what: str) -> None:
    """Copies the first ``nbytes`` of the regular file ``src`` to a new file ``dst`` (refused if it exists)."""
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in after the check never blocks
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{what} {src}: is not a regular file; edgert reads only regular files")
        with open(fd, "rb", closefd=False) as f_in, open(dst, "xb") as f_out:
            left = nbytes
            while left > 0:
                chunk = f_in.read(min(left, 1 << 20))
                if not chunk:
                    raise error(f"{what} {src}: ends after {nbytes - left:,} bytes, but {nbytes:,} are needed")
                f_out.write(chunk)
                left -= len(chunk)
        shutil.copystat(src, dst)
    finally:
        os.close(fd)


def read_bounded(path: Path, limit: int, *, error: type[EdgertError], what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``/dev/zero`` or a FIFO is refused, not read)."""
    regular_file(path, error=error, what=what, max_bytes=limit)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # grew after the check
        raise error(f"{what} {path}: is more than the {limit:,} bytes allowed here")
    return data


def check_output(path: Path, *, error: type[EdgertError], what: str) -> None:
    """An output path edgert may write: missing, or a regular file (never a symlink, device, FIFO or directory),
    in an existing directory."""
    if os.path.islink(path):
        raise error(f"{what} {path}: is a symlink; edgert writes only new or regular files (remove it first)")
    if os.path.lexists(path):
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{what} {path}: is a directory")
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path}: is a device, FIFO or socket; edgert writes only new or regular files")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"{what} {path}: its directory {parent} does not exist")


def write_output(path: Path, data: bytes | str, *, error: type[EdgertError], what: str) -> None:
    """Writes an output file atomically (a temporary file beside it, then a rename), after ``check_output``: a
    rename replaces the directory entry, so a symlink or device swapped in meanwhile is replaced, never written
    through."""
    check_output(path, error=error, what=what)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "xb") as f:
            f.write(body)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise error(f"{what} {path}: cannot write ({exc.strerror})") from None
