"""The results store: SQLite by default (one file under EDGERT_HOME, no server), or a PostgreSQL URL that a team
shares across machines. The schema is versioned and migrated forward on open; a store from a newer edgert is
refused, not altered.

Each run is one row of ``runs`` (its filterable facts and the whole record as JSON), its metrics rows of
``measures`` and its independent rounds rows of ``rounds``, so the store can also be queried with SQL directly.
Writers take the database's own lock (SQLite in WAL mode with a busy timeout, PostgreSQL's transactions), so
several processes recording at once lose nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgertError
from .records import Run


class StoreError(EdgertError):
    """A store that cannot be opened, read or written: the message says which and why, in one line."""


#: how long a writer waits for another's lock before giving up, in seconds
BUSY_SECONDS = 30.0

_V1 = [
    """CREATE TABLE runs (
        id {serial} PRIMARY KEY, uid TEXT UNIQUE NOT NULL, kind TEXT NOT NULL, created TEXT NOT NULL,
        device TEXT NOT NULL, fingerprint TEXT NOT NULL, model TEXT NOT NULL, model_sha256 TEXT NOT NULL,
        variant TEXT NOT NULL, edgert TEXT, onnxruntime TEXT, git_commit TEXT, workload TEXT NOT NULL,
        record TEXT NOT NULL)""",
    """CREATE TABLE measures (
        run_id BIGINT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
        unit TEXT NOT NULL, higher_is_better INTEGER NOT NULL, low DOUBLE PRECISION, high DOUBLE PRECISION)""",
]
_V2 = [
    """CREATE TABLE rounds (
        run_id BIGINT NOT NULL REFERENCES runs(id), measure TEXT NOT NULL, idx INTEGER NOT NULL,
        value DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX runs_series ON runs (device, model, variant, created)",
    "CREATE INDEX measures_name ON measures (name, run_id)",
]
_V3 = [
    """CREATE TABLE observations (
        model TEXT NOT NULL, variant TEXT NOT NULL, device TEXT NOT NULL, created TEXT NOT NULL,
        call TEXT NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, batch INTEGER NOT NULL,
        input_size DOUBLE PRECISION, label TEXT, confidence DOUBLE PRECISION, norm DOUBLE PRECISION,
        distance DOUBLE PRECISION, speech DOUBLE PRECISION)""",
    "CREATE INDEX observations_series ON observations (model, variant, device, created)",
]
#: the statements that bring a store from version N-1 to N (version 2 added every round and the indexes, 3 the
#: monitor's observations)
MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3}
#: an observation's columns after its series (model, variant, device), in order
OBSERVED = (
    "created", "call", "latency_ms", "batch", "input_size", "label", "confidence", "norm", "distance", "speech"
)  # fmt: skip
LATEST = max(MIGRATIONS)


@dataclass(frozen=True)
class Filter:
    """Which runs a query returns; None matches any. ``since`` and ``until`` compare ISO dates as text."""

    device: str | None = None
    model: str | None = None
    variant: str | None = None
    kind: str | None = None
    metric: str | None = None
    fingerprint: str | None = None
    version: str | None = None  # edgert's
    since: str | None = None
    until: str | None = None


def default_url() -> str:
    """EDGERT_STORE, else EDGERT_HOME/history.sqlite (the folder made on first use, as edgert's caches are)."""
    from ..paths import home

    given = os.environ.get("EDGERT_STORE")
    if given:
        return given
    try:
        home().mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # check_url then says the folder does not exist
    return str(home() / "history.sqlite")


def check_url(url: str) -> str:
    """URL as the store will open it, refused in one line before any measuring: a PostgreSQL URL needs psycopg
    installed; a SQLite path needs a folder that exists (the file is created on first write)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                f"store {_shown(url)}: PostgreSQL needs psycopg; run: pip install 'edgert[history]'"
            ) from None
        return url
    if "://" in url and not url.startswith("sqlite:///"):
        raise StoreError(f"store {url}: not a SQLite path or sqlite:/// or postgresql:// URL")
    path = Path(url.removeprefix("sqlite://")).expanduser()
    if path.is_dir():
        raise StoreError(f"store {path}: is a directory; give a file such as {path / 'history.sqlite'}")
    if not path.parent.is_dir():
        raise StoreError(f"store {path}: the folder {path.parent} does not exist")
    return str(path)


def _shown(url: str) -> str:
    """A URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


class Store:
    """An open store. ``add`` writes runs in one transaction; ``runs`` reads them back, oldest first."""

    def __init__(self, url: str | None = None, *, migrate_to: int = LATEST):
        self.url = check_url(url or default_url())
        self.postgres = self.url.startswith(("postgresql://", "postgres://"))
        self.where = _shown(self.url)
        with self._errors():
            self._conn = self._connect()
            self.version = self._migrate(migrate_to)

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            return psycopg.connect(self.url, connect_timeout=10, autocommit=True)  # transactions are explicit
        conn = sqlite3.connect(self.url, timeout=BUSY_SECONDS, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _sql(self, statement: str) -> str:
        statement = statement.replace("{serial}", "BIGSERIAL" if self.postgres else "INTEGER")
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction: SQLite takes its write lock at the start (BEGIN IMMEDIATE), so two writers
        never both read an old state and then collide."""
        cur = self._conn.cursor()
        if self.postgres:
            with self._conn.transaction():
                yield cur
            return
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _execute(self, cur: Any, statement: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._sql(statement), tuple(params))
        return cur

    def _version(self, cur: Any) -> int:
        exists = (
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version' "
            "AND table_schema = current_schema()"
            if self.postgres
            else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        if self._execute(cur, exists).fetchone() is None:
            return 0
        row = self._execute(cur, "SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, to: int) -> int:
        with self._tx() as cur:
            if self.postgres:  # two processes opening a new store at once: one migrates, the other waits
                self._execute(cur, "SELECT pg_advisory_xact_lock(7321)")
            current = self._version(cur)
            if current > LATEST:
                raise StoreError(
                    f"store {self.where}: schema version {current} is newer than this edgert reads ({LATEST}); "
                    "upgrade edgert to record into it"
                )
            if current == 0:
                self._execute(cur, "CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for version in range(current + 1, to + 1):
                for statement in MIGRATIONS[version]:
                    self._execute(cur, statement)
                if version == 2:
                    self._backfill_rounds(cur)
                self._execute(cur, "INSERT INTO schema_version (version) VALUES (?)", (version,))
            return max(current, to)

    def _backfill_rounds(self, cur: Any) -> None:
        """Version 1 kept the rounds only inside each run's JSON: version 2 gives them their own rows."""
        for run_id, record in self._execute(cur, "SELECT id, record FROM runs").fetchall():
            self._rounds(cur, run_id, Run.from_json(json.loads(record)))

    def _rounds(self, cur: Any, run_id: int, run: Run) -> None:
        rows = [(run_id, m.name, i, v) for m in run.measures for i, v in enumerate(m.rounds)]
        if rows:
            cur.executemany(self._sql("INSERT INTO rounds (run_id, measure, idx, value) VALUES (?, ?, ?, ?)"), rows)

    def add(self, runs: Iterable[Run]) -> int:
        """Writes RUNS (one transaction); a run whose uid is already stored is skipped. Returns how many were new."""
        added = 0
        with self._errors(), self._tx() as cur:
            for run in runs:
                if self._execute(cur, "SELECT 1 FROM runs WHERE uid = ?", (run.uid,)).fetchone():
                    continue
                facts = (
                    run.uid, run.kind, run.created, run.device, run.fingerprint, run.model, run.model_sha256,
                    run.variant, run.software.get("edgert"), run.software.get("onnxruntime"), run.git_commit,
                    run.workload, run.line(),
                )  # fmt: skip
                insert = (
                    "INSERT INTO runs (uid, kind, created, device, fingerprint, model, model_sha256, variant, "
                    "edgert, onnxruntime, git_commit, workload, record) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
                if self.postgres:
                    run_id = self._execute(cur, insert + " RETURNING id", facts).fetchone()[0]
                else:
                    run_id = self._execute(cur, insert, facts).lastrowid
                measures = [
                    (run_id, m.name, m.value, m.unit, int(m.higher_is_better), m.low, m.high) for m in run.measures
                ]
                cur.executemany(
                    self._sql(
                        "INSERT INTO measures (run_id, name, value, unit, higher_is_better, low, high) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    measures,
                )
                if self.version >= 2:
                    self._rounds(cur, run_id, run)
                added += 1
        return added

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Any database error as one StoreError line naming the store and why."""
        try:
            yield
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"store {self.where}: {_why(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - psycopg's errors: one line with its reason
            raise StoreError(f"store {self.where}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None

    def add_observations(self, series: tuple[str, str, str], rows: Sequence[tuple[Any, ...]]) -> None:
        """The monitor's rows (each OBSERVED's values) for one (model, variant, device), in one transaction."""
        columns = ("model", "variant", "device", *OBSERVED)
        statement = f"INSERT INTO observations ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._errors(), self._tx() as cur:
            cur.executemany(self._sql(statement), [(*series, *row) for row in rows])

    def observations(self, model: str, variant: str | None = None, device: str | None = None) -> list[dict[str, Any]]:
        """The monitor's rows for MODEL (and VARIANT, DEVICE), oldest first, as dicts of OBSERVED and the series."""
        clauses, params = ["model = ?"], [model]
        for column, value in (("variant", variant), ("device", device)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        columns = ("model", "variant", "device", *OBSERVED)
        query = f"SELECT {', '.join(columns)} FROM observations WHERE {' AND '.join(clauses)} ORDER BY created"
        with self._errors():
            rows = self._execute(self._conn.cursor(), query, params).fetchall()
        return [dict(zip(columns, row)) for row in rows]

    def runs(self, where: Filter | None = None) -> list[Run]:
        """The runs FILTER matches, oldest first (by date, then by the order they were stored)."""
        f = where or Filter()
        clauses, params = [], []
        for column, value in (
            ("device", f.device), ("model", f.model), ("variant", f.variant), ("kind", f.kind),
            ("fingerprint", f.fingerprint), ("edgert", f.version),
        ):  # fmt: skip
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if f.since is not None:
            clauses.append("created >= ?")
            params.append(f.since)
        if f.until is not None:
            clauses.append("created <= ?")
            params.append(f.until)
        if f.metric is not None:
            clauses.append("id IN (SELECT run_id FROM measures WHERE name = ?)")
            params.append(f.metric)
        query = "SELECT record FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        with self._errors():
            rows = self._execute(self._conn.cursor(), query + " ORDER BY created, id", params).fetchall()
        return [Run.from_json(json.loads(r[0]), f"store {self.where}") for r in rows]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _why(exc: BaseException) -> str:
    """sqlite3's reason, said so the reader knows what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"locked by another writer for more than {BUSY_SECONDS:.0f} s ({text})"
    if "readonly" in text or "read-only" in text:
        return "read-only (the file or its folder cannot be written)"
    if "full" in text:
        return "the disk is full"
    if "not a database" in text or "malformed" in text:
        return f"not a SQLite store ({text})"
    return text
