""":class:`ResultsDB`: the SQLite index of runs and the record of sweeps.

Several processes may write at once (a sweep's cells finishing, ``tinyharness run`` in another
shell, ``results index``): the database is in WAL mode (readers never wait for a writer), every
write is one ``BEGIN IMMEDIATE`` transaction (writers queue for the lock instead of failing half
way) and a writer waits for the lock at most :data:`BUSY_TIMEOUT_S`. Rows are upserts on their
keys, so indexing a run or recording a cell twice never makes a second row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import UsageError
from .index import RUN_COLUMNS, is_run_dir, now, read_row, row_from_summary
from .query import Filters
from .schema import migrate

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's transaction before giving up
MAX_DEPTH = 8  # folders below a root that rebuild() looks into for run directories
BATCH = 100  # rows one rebuild() transaction writes, so other writers wait briefly
FINISHED = ("ok", "invalid", "failed", "crashed")  # cell statuses a rerun of the sweep skips
SKIPPED = "skipped"
# cells() rows: what the run row adds to the cell and its result (never a name they have)
_RUN_EXTRAS = ("run_id", "path", "state", "valid", "error", "reasons", "accuracy", "accuracy_metric",
               "p50_us", "p90_us", "throughput_ips", "latency_us", "model_sha256", "runtime",
               "runtime_version", "device", "host", "harness_version", "indexed_at")


def default_db_path() -> Path:
    """$TINYHARNESS_DB, else results.db in the user data directory."""
    given = os.environ.get("TINYHARNESS_DB", "").strip()
    if given.lower() == "none":
        raise UsageError("the results database is off (TINYHARNESS_DB=none); give --db PATH")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("tinyharness")) / "results.db"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class ResultsDB:
    """The results database at ``path`` (None: :func:`default_db_path`), created with its
    parents and migrated to the latest schema on opening; ``create=False`` refuses a path that
    does not exist yet (for commands that only read)."""

    def __init__(self, path: Path | None = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        if not create and not self.path.exists():
            raise UsageError(f"no results database at {self.path}; runs are indexed as they finish, "
                             "or 'tinyharness results index DIR' indexes run directories")
        self._conn = self._open()
        self._positions: dict[str, dict[str, int]] = {}  # sweep_id -> cell_id -> spec position

    def _open(self) -> sqlite3.Connection:
        where = str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(where, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"{where}: cannot open the results database ({exc}); "
                             "give another --db") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if _journal_mode_wal(conn).lower() != "wal":
                raise UsageError(f"{where}: cannot use write-ahead logging there (a network file "
                                 "system?); give a local --db")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable with WAL up to the last commit
            migrate(conn, where)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _usage(exc, where) from None
            raise
        return conn

    # -- writing ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it or none."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _usage(exc, str(self.path)) from None
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:  # a failed COMMIT may have ended it already
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _usage(exc, str(self.path)) from None
            raise

    def index_run(self, run_dir: Path, *, sweep_id: str | None = None, cell_id: str | None = None,
                  node: str | None = None) -> str:
        """Index (or re-index) one run directory; its run id. Indexing again updates the row; a
        sweep, cell or node not given keeps what the row had. A one-line UsageError when the
        folder is no run directory or its summary.json does not read."""
        row = {**read_row(Path(run_dir)), "sweep_id": sweep_id, "cell_id": cell_id, "node": node}
        with self._write() as conn:
            _upsert_run(conn, row)
        return row["run_id"]

    def rebuild(self, roots: Sequence[Path], warn: Callable[[str], None] = _warn) -> int:
        """Index every run directory under ``roots`` (at most :data:`MAX_DEPTH` folders down,
        links not followed, hidden folders left out); the number indexed. What is not a run,
        or is a damaged one, is left out with a one-line note through ``warn``."""
        indexed, batch = 0, []
        for root in map(Path, roots):
            found = 0
            for run_dir in find_run_dirs(root, warn):
                found += 1
                try:
                    batch.append(read_row(run_dir))
                except UsageError as exc:
                    warn(f"skipped {exc}")
                if len(batch) >= BATCH:
                    indexed += self._write_rows(batch)
                    batch = []
            if not found and root.is_dir():
                warn(f"{root}: no run directories (a folder holding summary.json or status.json) in it")
        return indexed + self._write_rows(batch)

    def prune(self, roots: Sequence[Path] = (), dry_run: bool = False) -> list[dict[str, str]]:
        """Drop the rows of runs whose run directory is gone (deleted or moved), of those under
        ``roots`` or of all when none is given; the rows dropped (``run_id``, ``path``), which
        ``dry_run`` only lists. A sweep's cells keep their results, run id included."""
        prefixes = [os.path.abspath(root) for root in roots]
        gone = [{"run_id": row["run_id"], "path": row["path"]}
                for row in self._read("SELECT run_id, path FROM runs ORDER BY started, run_id")
                if _under(row["path"], prefixes) and not os.path.isdir(row["path"])]
        if gone and not dry_run:
            with self._write() as conn:
                conn.executemany("DELETE FROM runs WHERE run_id = ?", [(g["run_id"],) for g in gone])
        return gone

    def _write_rows(self, rows: list[dict[str, Any]]) -> int:
        with self._write() as conn:
            for row in rows:
                _upsert_run(conn, row)
        return len(rows)

    def record_sweep(self, sweep_id: str, name: str, spec: dict) -> None:
        """Record (or update) a sweep: its name and spec (``SweepSpec.to_dict()``)."""
        stamp = now()
        with self._write() as conn:
            conn.execute("INSERT INTO sweeps (sweep_id, name, spec, created, updated) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (sweep_id) DO UPDATE SET name = excluded.name, spec = excluded.spec, "
                         "updated = excluded.updated",
                         (sweep_id, name, _dumps(spec), stamp, stamp))
        self._positions.pop(sweep_id, None)

    def record_cell(self, sweep_id: str, cell: dict, result: dict) -> None:
        """Record a cell's result (``Cell.to_dict()`` with its ``id``; ``CellResult.to_dict()``):
        one row per (sweep, cell), the latest result replacing an earlier one, except that a
        "skipped" result (the cell finished in an earlier run of the sweep) never replaces one."""
        cell_id = cell.get("id")
        if not cell_id or result.get("cell_id", cell_id) != cell_id:
            raise ValueError(f"record_cell: the cell's id {cell_id!r} and the result's "
                             f"{result.get('cell_id')!r} must be given and agree")
        status = str(result.get("status", ""))
        run_dir = result.get("run_dir")
        values = (sweep_id, cell_id, self._position(sweep_id, cell), _dumps(cell), status,
                  result.get("reason"), Path(run_dir).name if run_dir else None, _dumps(result), now())
        keep = f" WHERE excluded.status != '{SKIPPED}'"
        with self._write() as conn:
            conn.execute("INSERT INTO cells (sweep_id, cell_id, position, cell, status, reason, run_id, "
                         "result, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT (sweep_id, cell_id) DO UPDATE SET position = "
                         "coalesce(excluded.position, position), cell = excluded.cell, status = "
                         "excluded.status, reason = excluded.reason, run_id = excluded.run_id, result = "
                         "excluded.result, recorded_at = excluded.recorded_at" + keep, values)

    def _position(self, sweep_id: str, cell: dict) -> int | None:
        """The cell's place in its sweep's spec (None: the sweep or the cell is not recorded)."""
        if sweep_id not in self._positions:
            row = self._conn.execute("SELECT spec FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone()
            self._positions[sweep_id] = _spec_positions(json.loads(row["spec"])) if row else {}
        positions = self._positions[sweep_id]
        return positions.get(cell["id"], positions.get(_cell_key(cell)))

    # -- reading ------------------------------------------------------------------------------------
    def finished_cells(self, sweep_id: str) -> dict[str, dict]:
        """cell id -> result, for the cells of the sweep that a rerun skips (ok, invalid, failed,
        crashed); timed-out, interrupted and lost cells are run again."""
        marks = ", ".join("?" * len(FINISHED))
        rows = self._read(f"SELECT cell_id, result FROM cells WHERE sweep_id = ? AND status IN ({marks})",
                          (sweep_id, *FINISHED))
        return {row["cell_id"]: json.loads(row["result"]) for row in rows}

    def cells(self, sweep_id: str) -> list[dict]:
        """The recorded cells of a sweep in spec order: the cell's fields (``cell_id`` for its
        id), its result's (``summary`` aside) and its run's indexed fields (the run row, or, for
        a run not indexed here, its result's summary)."""
        extras = ", ".join(f"r.{c} AS r_{c}" for c in _RUN_EXTRAS)
        rows = self._read(f"SELECT c.cell_id, c.position, c.cell, c.result, c.run_id, "
                          f"r.run_id AS indexed, {extras} FROM cells c "
                          "LEFT JOIN runs r ON r.run_id = c.run_id WHERE c.sweep_id = ? "
                          "ORDER BY c.position IS NULL, c.position, c.rowid", (sweep_id,))
        return [_cell_row(sweep_id, row) for row in rows]

    def sweeps(self) -> list[dict]:
        """Every recorded sweep, newest first: id, name, spec, created, updated, the cells in its
        spec and the recorded cells by status."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._read("SELECT sweep_id, status, count(*) AS n FROM cells "
                              "GROUP BY sweep_id, status ORDER BY status"):
            counts.setdefault(row["sweep_id"], {})[row["status"]] = row["n"]
        out = []
        for row in self._read("SELECT * FROM sweeps ORDER BY updated DESC, created DESC"):
            spec = json.loads(row["spec"])
            cells = spec.get("cells") if isinstance(spec, dict) else None
            out.append({"sweep_id": row["sweep_id"], "name": row["name"], "created": row["created"],
                        "updated": row["updated"], "cells": len(cells) if isinstance(cells, list) else None,
                        "counts": counts.get(row["sweep_id"], {}), "spec": spec})
        return out

    def runs(self, **filters: Any) -> list[dict]:
        """The indexed runs that match ``filters`` (see :meth:`Filters.of`), newest first."""
        return list(self.iter_runs(Filters.of(**filters)))

    def iter_runs(self, filters: Filters = Filters()) -> Iterator[dict]:
        """:meth:`runs` one row at a time (an export of any size stays in bounded memory)."""
        where, params = filters.where()
        limit = f" LIMIT {int(filters.limit)}" if filters.limit else ""
        columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
        sql = (f"SELECT {columns} FROM runs r WHERE {where} "
               f"ORDER BY r.started IS NULL, r.started DESC, r.run_id DESC{limit}")
        try:
            for row in self._conn.execute(sql, params):
                yield dict(row)
        except sqlite3.Error as exc:
            raise _usage(exc, str(self.path)) from None

    def count(self, filters: Filters = Filters()) -> int:
        """How many indexed runs match ``filters`` (its limit aside)."""
        where, params = filters.where()
        return int(self._read(f"SELECT count(*) FROM runs r WHERE {where}", params)[0][0])

    def run(self, run_id: str) -> dict | None:
        rows = self._read(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,))
        return dict(rows[0]) if rows else None

    def run_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Run ids that start with ``prefix`` (at most ``limit``), for a short id a user typed."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read("SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY run_id "
                          "LIMIT ?", (pattern, limit))
        return [r["run_id"] for r in rows]

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _usage(exc, str(self.path)) from None

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsDB":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def find_run_dirs(root: Path, warn: Callable[[str], None] = _warn) -> Iterator[Path]:
    """The run directories under ``root`` (``root`` itself when it is one), in path order, at most
    :data:`MAX_DEPTH` folders down; links and hidden folders are not followed, and nothing is looked
    for inside a run directory."""
    if not root.is_dir():
        warn(f"{root}: not a folder; give run directories or folders of them")
        return
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        if is_run_dir(folder):
            yield folder
            continue
        if depth >= MAX_DEPTH:
            continue
        try:
            with os.scandir(folder) as entries:
                children = sorted((e.path for e in entries
                                   if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")),
                                  reverse=True)
        except OSError as exc:
            warn(f"{folder}: not searched ({exc.strerror or exc})")
            continue
        pending += [(Path(child), depth + 1) for child in children]


def _under(path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or inside one (always, when none is given)."""
    if not prefixes:
        return True
    for prefix in prefixes:
        try:
            if os.path.commonpath([path, prefix]) == prefix:
                return True
        except ValueError:  # another drive, or a relative path against an absolute one
            continue
    return False


def _journal_mode_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL (once per database: the mode is stored in the file); the mode it is in.
    SQLite answers "locked" at once, without waiting, while another connection opens the same
    new database, so this retries, up to :data:`BUSY_TIMEOUT_S`."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _upsert_run(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    values = {c: row.get(c) for c in RUN_COLUMNS}
    values["indexed_at"] = now()
    kept = ("sweep_id", "cell_id", "node")  # a re-index that does not name them keeps them
    updates = ", ".join(f"{c} = coalesce(excluded.{c}, {c})" if c in kept else f"{c} = excluded.{c}"
                        for c in RUN_COLUMNS if c != "run_id")
    conn.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
                 f"ON CONFLICT (run_id) DO UPDATE SET {updates}", list(values.values()))


def _cell_key(cell: dict) -> str:
    """A cell as a spec lists it, whatever else it carries: its fields without the id."""
    return json.dumps({k: v for k, v in cell.items() if k != "id"}, sort_keys=True, default=str)


def _spec_positions(spec: Any) -> dict[str, int]:
    """Cell id (or :func:`_cell_key`, for a spec whose cells carry no id) -> position in the spec."""
    cells = spec.get("cells") if isinstance(spec, dict) else None
    positions: dict[str, int] = {}
    for position, cell in enumerate(cells if isinstance(cells, list) else []):
        if isinstance(cell, dict):
            positions.setdefault(cell["id"] if cell.get("id") else _cell_key(cell), position)
    return positions


def _cell_row(sweep_id: str, row: sqlite3.Row) -> dict[str, Any]:
    cell, result = json.loads(row["cell"]), json.loads(row["result"])
    summary = result.pop("summary", None)
    out = {"sweep_id": sweep_id, "cell_id": row["cell_id"], "position": row["position"],
           **{k: v for k, v in cell.items() if k != "id"}, **result}
    if row["indexed"] is not None:
        out.update({c: row[f"r_{c}"] for c in _RUN_EXTRAS})
    else:
        out.update({c: None for c in _RUN_EXTRAS})
        out.update({c: v for c, v in _summary_fields(summary).items() if c in _RUN_EXTRAS})
        out["run_id"] = row["run_id"]
    return out


def _summary_fields(summary: Any) -> dict[str, Any]:
    """The indexed fields of a result's summary.json (a run whose directory is elsewhere);
    nothing when there is none or it does not read."""
    if not isinstance(summary, dict):
        return {}
    from ..results.read import parse_summary

    try:
        return {**row_from_summary(parse_summary(_dumps(summary).encode(), "the cell's summary")),
                "state": "done"}
    except UsageError:
        return {}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _usage(exc: sqlite3.Error, where: str) -> UsageError:
    """A SQLite error as one line: a lock held past the timeout, a damaged or foreign file."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "locked" in text or "busy" in text:
        return UsageError(f"{where}: the results database stayed locked by another process for "
                          f"{BUSY_TIMEOUT_S:g} s; try again")
    if "unable to open" in text:
        return UsageError(f"{where}: cannot open the results database ({text}); give another --db")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return UsageError(f"{where}: not a results database, or a damaged one ({text}); give another "
                          "--db, or move it aside and 'tinyharness results index' run directories")
    return UsageError(f"{where}: results database error: {text}")
