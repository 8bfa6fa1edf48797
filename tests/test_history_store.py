"""The results store against a real SQLite file and a real PostgreSQL server (pgserver, started by the tests):
the same runs read back identically from both, a store written at schema version 1 migrates to the latest with its
rounds, four processes writing at once lose nothing, and a store that is newer, locked or read-only is one line.
JSON lines carry a store's runs to another."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import uuid
from dataclasses import replace

import pytest

from edgert.device import describe
from edgert.history import store as store_mod
from edgert.history.records import Measure, Run, fingerprint
from edgert.history.store import Filter, Store, StoreError
from edgert.history.transfer import export_jsonl, import_jsonl

MACHINE = describe()


def make_run(i: int, *, device: str = "pi5", model: str = "minilm", variant: str = "int8", p50: float = 10.0) -> Run:
    rounds = tuple(p50 * (1 + 0.01 * ((i + k) % 3 - 1)) for k in range(5))
    return Run(
        uid=uuid.uuid4().hex, kind="bench", created=f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00",
        device=device, fingerprint=fingerprint(MACHINE), model=model, model_sha256="ab" * 32, variant=variant,
        software={"edgert": "0.1.0", "onnxruntime": "1.32.0"}, git_commit=f"{i:040x}",
        measures=(
            Measure("p50 threads=1", p50, "ms", False, rounds=rounds),
            Measure("ndcg@10", 0.84, "", True, low=0.79, high=0.89),
            Measure("rss", 90.5, "MiB", False),
        ),
        workload="128 tokens", machine=MACHINE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pgserver = pytest.importorskip("pgserver", reason="pgserver (the dev extra) runs a real PostgreSQL")
    pytest.importorskip("psycopg", reason="psycopg (the history extra) talks to PostgreSQL")
    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield server
    server.cleanup()


def _database(server) -> str:
    """A fresh database on the server, as a URL."""
    import psycopg

    name = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri().replace("/postgres?", f"/{name}?")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return _database(request.getfixturevalue("postgres"))


def test_runs_read_back_identically_and_filter(url):
    runs = [make_run(i) for i in range(6)] + [make_run(7, device="laptop", variant="fp32", p50=4.0)]
    with Store(url) as s:
        assert s.version == store_mod.LATEST
        assert s.add(runs) == 7
        assert s.add(runs[:2]) == 0  # a run already stored (same uid) is not stored twice
        assert s.runs() == runs
        assert s.runs(Filter(device="laptop")) == runs[-1:]
        assert s.runs(Filter(variant="int8", since="2026-12-01T03:00")) == runs[3:6]
        assert s.runs(Filter(metric="rss")) == runs and s.runs(Filter(metric="cold start")) == []


def test_a_version_1_store_migrates_with_its_rounds(url):
    runs = [make_run(i) for i in range(4)]
    with Store(url, migrate_to=1) as old:
        assert old.version == 1
        old.add(runs)
    with Store(url) as s:
        assert s.version == store_mod.LATEST == 3
        assert s.runs() == runs
        cur = s._conn.cursor()
        n = cur.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        assert n == sum(len(m.rounds) for r in runs for m in r.measures) == 20
        s.add([make_run(9)])
        assert cur.execute("SELECT COUNT(*) FROM rounds").fetchone()[0] == 25


def _writer(url: str, worker: int, n: int) -> None:
    with Store(url) as s:
        for i in range(n):  # one transaction a run: the writers interleave
            s.add([replace(make_run(i), device=f"worker{worker}")])


def test_four_processes_writing_at_once_lose_nothing(url):
    Store(url).close()  # created and migrated once; the writers then race on the rows
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with Store(url) as s:
        runs = s.runs()
    assert len(runs) == 100 and len({r.uid for r in runs}) == 100
    assert sorted(r.device for r in runs) == sorted(f"worker{w}" for w in range(4) for _ in range(25))


def test_json_lines_carry_a_store_to_another(url, tmp_path):
    source = tmp_path / "device.sqlite"
    runs = [make_run(i) for i in range(5)]
    with Store(str(source)) as s:
        s.add(runs)
        assert export_jsonl(s, tmp_path / "usb.jsonl") == 5
    lines = (tmp_path / "usb.jsonl").read_text().splitlines()
    (tmp_path / "usb.jsonl").write_text("\n".join([*lines, "{not json", '{"schema": "edgert.history/9"}']) + "\n")
    with Store(url) as s:
        got = import_jsonl(s, tmp_path / "usb.jsonl")
        assert (got.added, got.known, got.bad_count) == (5, 0, 2)
        assert "usb.jsonl:6: not JSON" in got.bad[0] and "usb.jsonl:7" in got.bad[1]
        assert s.runs() == runs
        assert import_jsonl(s, tmp_path / "usb.jsonl").known == 5  # again: nothing twice


def test_a_newer_locked_or_read_only_store_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "h.sqlite"
    Store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (9)")
    with pytest.raises(StoreError, match="schema version 9 is newer than this edgert reads"):
        Store(str(path))
    locked = tmp_path / "locked.sqlite"
    Store(str(locked)).close()
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    monkeypatch.setattr(store_mod, "BUSY_SECONDS", 0.2)
    with pytest.raises(StoreError, match="locked by another writer"):
        Store(str(locked)).add([make_run(1)])
    holder.execute("ROLLBACK")
    holder.close()
    if os.geteuid() != 0:  # root writes read-only files anyway
        ro = tmp_path / "ro.sqlite"
        Store(str(ro)).close()
        ro.chmod(0o444)
        with pytest.raises(StoreError, match="read-only"):
            Store(str(ro)).add([make_run(1)])
    with pytest.raises(StoreError, match="does not exist"):
        store_mod.check_url(str(tmp_path / "no" / "such" / "h.sqlite"))
    with pytest.raises(StoreError, match="not a SQLite path or"):
        store_mod.check_url("mysql://x")
    (tmp_path / "junk.sqlite").write_bytes(b"x" * 4096)
    with pytest.raises(StoreError, match="not a SQLite store"):
        Store(str(tmp_path / "junk.sqlite"))


def test_the_default_store_is_made_under_a_new_edgert_home(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGERT_STORE", raising=False)
    monkeypatch.setenv("EDGERT_HOME", str(tmp_path / "fresh" / "home"))
    with Store() as s:
        assert s.add([make_run(1)]) == 1
    assert (tmp_path / "fresh" / "home" / "history.sqlite").is_file()
