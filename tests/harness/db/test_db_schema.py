"""Schema migrations: a database made by version 1 is brought to the latest version with its rows
kept, a failed migration leaves the database as it was, and a newer database is refused."""

from __future__ import annotations

import sqlite3

import pytest

from tinyharness.db import ResultsDB, schema
from tinyharness.errors import UsageError

# Version 1 as released (a copy, not schema.MIGRATIONS[0]: a database made by it exists whatever
# the code says today).
VERSION_1 = (
    "PRAGMA application_id = 1414022210",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, path TEXT NOT NULL, benchmark TEXT, sut TEXT, scenario TEXT,
        mode TEXT, started TEXT, finished TEXT, state TEXT NOT NULL, valid INTEGER, error TEXT,
        reasons TEXT, accuracy REAL, accuracy_metric TEXT, p50_us REAL, p90_us REAL,
        throughput_ips REAL, latency_us REAL, sut_options TEXT, model TEXT, model_sha256 TEXT,
        runtime TEXT, runtime_version TEXT, device TEXT, host TEXT, harness_version TEXT,
        indexed_at TEXT NOT NULL)""",
    "CREATE INDEX runs_started ON runs (started)",
    "CREATE INDEX runs_benchmark_sut ON runs (benchmark, sut)",
    "PRAGMA user_version = 1",
)


def make_version_1(path) -> None:
    conn = sqlite3.connect(path)
    for statement in VERSION_1:
        conn.execute(statement)
    conn.execute("INSERT INTO runs (run_id, path, benchmark, sut, scenario, mode, started, state, "
                 "valid, p50_us, indexed_at) VALUES ('r1', '/runs/r1', 'kws01', 'tflite-cpu', "
                 "'single-stream', 'all', '2026-11-01T10:00:00+00:00', 'done', 1, 123.5, "
                 "'2026-11-01T10:01:00+00:00')")
    conn.commit()
    conn.close()


def user_version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_the_released_version_1_is_what_migration_1_makes(tmp_path):
    conn = sqlite3.connect(tmp_path / "new.db", isolation_level=None)
    schema.migrate(conn, "new.db", target=1)
    made = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    assert " ".join(made.split()) == " ".join(VERSION_1[1].split())


def test_a_version_1_database_is_migrated_with_its_rows_kept(tmp_path):
    path = tmp_path / "v1.db"
    make_version_1(path)
    with ResultsDB(path) as db:
        row = db.run("r1")
        assert (row["benchmark"], row["valid"], row["p50_us"]) == ("kws01", 1, 123.5)
        assert (row["sweep_id"], row["cell_id"], row["node"]) == (None, None, None)  # version 2's
        assert [r["run_id"] for r in db.runs(sut="tflite-cpu", valid=True)] == ["r1"]
        db.record_sweep("s1", "grid", {"cells": [{"id": "c1"}]})
        db.record_cell("s1", {"id": "c1"}, {"cell_id": "c1", "status": "ok", "run_dir": "/runs/r1"})
        assert [r["run_id"] for r in db.runs(sweep="s1")] == ["r1"]
    assert user_version(path) == schema.LATEST == 2


def test_a_new_database_is_at_the_latest_version_and_marked_as_tinyharness(tmp_path):
    ResultsDB(tmp_path / "new.db").close()
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ResultsDB(tmp_path / "new.db").close()  # opening again migrates nothing
    assert user_version(tmp_path / "new.db") == schema.LATEST


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "v1.db"
    make_version_1(path)
    broken = ("CREATE TABLE half_done (x)", "ALTER TABLE no_such_table ADD COLUMN y")
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    with pytest.raises(UsageError, match="no_such_table"):
        ResultsDB(path)
    assert user_version(path) == 1
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"runs"} and conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_a_database_from_a_newer_tinyharness_is_refused(tmp_path):
    path = tmp_path / "future.db"
    ResultsDB(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    with pytest.raises(UsageError, match="made by a newer tinyharness"):
        ResultsDB(path)
