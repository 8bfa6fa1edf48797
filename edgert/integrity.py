"""What edgert remembers between processes about files it verified, signed so that nobody else can write it.

Hashing a 90 MB model takes about 60 ms, so ``load()`` remembers a file it hashed: a stamp under
``$EDGERT_HOME/verified`` keyed by the file's path, size, mtime, ctime and inode. Any write to a file moves its
ctime, so a changed file is hashed again. The optimised-graph cache under ``$EDGERT_HOME/ort-cache`` is remembered
the same way. A stamp or a cache entry is trusted only if it carries an HMAC made with this user's secret key
(``$EDGERT_HOME/secret``, 32 random bytes, mode 0600): one written in advance, copied from another machine or
edited by another user does not verify, and the file is hashed again or the cache entry rebuilt.

Without a usable key (a read-only home, or a key file that others can read or that another user owns), nothing is
remembered: every load hashes every file it runs, and optimised graphs are not cached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from .paths import home

_KEY_BYTES = 32
_cached_key: tuple[Path, bytes | None] | None = None


def _key_path() -> Path:
    return home() / "secret"


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        private = stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 == 0
        if not private or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
            return None  # a key that someone else can read or wrote signs nothing
        data = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    return data if len(data) == _KEY_BYTES else None


def _create_key(path: Path) -> None:
    """Writes a new key beside ``path`` and links it into place only once it is whole, so a full disk never
    leaves a short key that would switch remembering off for good; a key another process made first wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            if os.write(fd, os.urandom(_KEY_BYTES)) != _KEY_BYTES:
                raise OSError(28, "No space left on device")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made it first
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def _broken_own_key(path: Path) -> bool:
    """A key file of ours that can sign nothing: a regular, private file of the wrong length (a write cut short
    by an older edgert on a full disk)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    mine = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
    return stat.S_ISREG(st.st_mode) and mine and st.st_mode & 0o077 == 0 and st.st_size != _KEY_BYTES


def secret() -> bytes | None:
    """This user's signing key, created on first use; None when there is no private, writable place for it."""
    global _cached_key
    path = _key_path()
    if _cached_key is not None and _cached_key[0] == path:
        return _cached_key[1]
    key = _read_key(path)
    if key is None and _broken_own_key(path):
        try:
            path.unlink()
        except OSError:
            pass
    if key is None and not os.path.lexists(path):
        try:
            _create_key(path)
        except OSError as exc:
            degraded(f"cannot create the signing key {path} ({exc.strerror})")
            return None  # not cached: a later call tries again, once there is room
        key = _read_key(path)
    _cached_key = (path, key)
    return key


_said: set[str] = set()


def degraded(why: str) -> None:
    """Says once per process that verified files and optimised graphs are not remembered, and why: results
    stay correct, only the next cold start is slower."""
    if why not in _said:
        _said.add(why)
        warnings.warn(f"edgert: caching is off: {why}; results are unaffected", RuntimeWarning, stacklevel=3)


def sign(text: str) -> str | None:
    key = secret()
    return None if key is None else hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signed(text: str, mac: str) -> bool:
    want = sign(text)
    return want is not None and hmac.compare_digest(want, mac)


def _file_key(path: Path, sha256: str) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}|{sha256}"


def _stamp_path(key: str) -> Path:
    return home() / "verified" / hashlib.sha256(key.encode()).hexdigest()[:32]


def recall(path: Path, sha256: str) -> dict[str, Any] | None:
    """What was remembered with this exact file version when it last hashed to ``sha256``, or None."""
    key = _file_key(path, sha256)
    if key is None or secret() is None:
        return None
    try:
        mac, _, body = _stamp_path(key).read_text(encoding="utf-8").partition("\n")
        facts: dict[str, Any] = json.loads(body)
        return facts if signed(key + "\n" + body, mac) else None
    except (OSError, ValueError):
        return None


def remember(path: Path, sha256: str, facts: dict[str, Any] | None = None) -> None:
    """Records that this file version hashed to ``sha256``, with facts derived from its bytes."""
    key = _file_key(path, sha256)
    if key is None:
        return
    body = json.dumps(facts or {}, sort_keys=True)
    mac = sign(key + "\n" + body)
    if mac is None:
        return
    target = _stamp_path(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{mac}\n{body}", encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home only costs the hashing next time
