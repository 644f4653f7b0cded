"""The results database's tables, and the migrations that bring any older database up to date.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1`` (``PRAGMA user_version``): a new
database runs them all, an older one the ones it lacks, each in one transaction with the version
it reaches, so a database is never half migrated. Migrations are only ever appended: a released one
never changes, since databases made by it exist.

Version 1: the run index (one row per run directory). Version 2: sweeps, their cells and the
sweep, cell and node a run belongs to.
"""

from __future__ import annotations

import sqlite3

from ..errors import UsageError

# 'THDB': marks a SQLite file as tinyharness's, so another program's database is never migrated.
APPLICATION_ID = 0x54484442

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the run index
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            benchmark TEXT, sut TEXT, scenario TEXT, mode TEXT,
            started TEXT, finished TEXT,
            state TEXT NOT NULL,
            valid INTEGER,
            error TEXT, reasons TEXT,
            accuracy REAL, accuracy_metric TEXT,
            p50_us REAL, p90_us REAL, throughput_ips REAL, latency_us REAL,
            sut_options TEXT, model TEXT, model_sha256 TEXT,
            runtime TEXT, runtime_version TEXT, device TEXT, host TEXT, harness_version TEXT,
            indexed_at TEXT NOT NULL)""",
        "CREATE INDEX runs_started ON runs (started)",
        "CREATE INDEX runs_benchmark_sut ON runs (benchmark, sut)",
    ),
    (  # 2: sweeps and their cells
        "ALTER TABLE runs ADD COLUMN sweep_id TEXT",
        "ALTER TABLE runs ADD COLUMN cell_id TEXT",
        "ALTER TABLE runs ADD COLUMN node TEXT",
        "CREATE INDEX runs_sweep ON runs (sweep_id, cell_id)",
        """CREATE TABLE sweeps (
            sweep_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL)""",
        """CREATE TABLE cells (
            sweep_id TEXT NOT NULL,
            cell_id TEXT NOT NULL,
            position INTEGER,
            cell TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            run_id TEXT,
            result TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (sweep_id, cell_id))""",
        "CREATE INDEX cells_run ON cells (run_id)",
    ),
)
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, where: str, target: int = LATEST) -> int:
    """Bring the database of ``conn`` (autocommit mode) to version ``target``; the version it was
    at. Two processes opening one new database at once migrate it once: the second finds the
    version already reached once the first's write lock is released."""
    found = _checked_version(conn, where)
    if found >= target:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _checked_version(conn, where)  # another process may have migrated meanwhile
        for number in range(found + 1, target + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def _checked_version(conn: sqlite3.Connection, where: str) -> int:
    """The database's version, refusing one this tinyharness cannot read: a newer one, or another
    program's. One statement, so that the three values are of one moment (another process may be
    migrating the database)."""
    found, owner, tables = conn.execute(
        "SELECT (SELECT user_version FROM pragma_user_version), "
        "(SELECT application_id FROM pragma_application_id), "
        "(SELECT count(*) FROM sqlite_master WHERE type = 'table')").fetchone()
    if found > LATEST:
        raise UsageError(f"{where}: results database version {found} was made by a newer tinyharness "
                         f"(this one reads up to {LATEST}); upgrade tinyharness or give another --db")
    if owner not in (0, APPLICATION_ID) or (owner == 0 and (found or tables)):
        raise UsageError(f"{where}: a SQLite database of another program, not a tinyharness results "
                         "database; give another --db")
    return int(found)
