"""A sweep from start to table: what earlier runs of it finished is skipped, the rest goes to an
executor, and every result is recorded as it comes, in the results database and in the sweep
folder ``OUTPUT/sweeps/<sweep id>/sweep.json`` (rewritten atomically after each cell), so a sweep
stopped anywhere (Ctrl-C, a crash of this process) resumes where it was.

The executor calls back from any thread; results are recorded from this one (SQLite connections
are per thread), which is also where a Ctrl-C lands: it stops the executor, which interrupts the
running cells, and what finished meanwhile is still recorded.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .cell_run import FINISHED, CellResult, CellStatus, read_summary, unpack_run_dir, utc_now
from .spec import Cell, SweepSpec

if TYPE_CHECKING:
    from ..db import ResultsDB
    from .local import Executor

FOLDER = "sweeps"
STATE_FILE = "sweep.json"
STATE_FORMAT = 1
MAX_STATE_BYTES = 64 << 20


@dataclass(frozen=True)
class Row:
    """One cell of the sweep as it stands: its result (None: it never ran, the sweep stopped
    first) and, for a cell skipped because an earlier run finished it, that run's status."""

    cell: Cell
    result: CellResult | None
    earlier: CellStatus | None = None

    @property
    def status(self) -> CellStatus | None:
        """What became of the cell, an earlier run's status for a skipped one."""
        if self.result is None:
            return None
        return self.earlier if self.result.status is CellStatus.SKIPPED else self.result.status


@dataclass(frozen=True)
class SweepOutcome:
    spec: SweepSpec
    rows: tuple[Row, ...]  # in the spec's order
    interrupted: bool
    folder: Path
    error: str | None = None  # the executor itself failed (not a cell)


class Sweep:
    """Runs ``spec`` through ``executor`` into ``output``, recording in ``db``."""

    def __init__(self, spec: SweepSpec, *, output: Path, db: "ResultsDB", executor: "Executor",
                 retry_failed: bool = False,
                 on_row: Callable[[Row, int, int], None] | None = None) -> None:
        self.spec, self.output, self.db, self.executor = spec, Path(output), db, executor
        self.retry_failed, self.on_row = retry_failed, on_row
        self.folder = self.output / FOLDER / spec.id
        self.by_id = {c.id: c for c in spec.cells}
        self.rows: dict[str, Row] = {c.id: Row(c, None) for c in spec.cells}
        self.state: dict[str, dict] = {}
        self.recorded: set[tuple[str, str, str]] = set()

    # -- resume ---------------------------------------------------------------------------------
    def skips(self) -> set[CellStatus]:
        if self.retry_failed:
            return {CellStatus.OK, CellStatus.INVALID}
        return set(FINISHED)

    def earlier_results(self) -> dict[str, dict]:
        """cell id -> the result an earlier run of this sweep finished it with: the database's,
        and the sweep folder's where the database has none (another --db)."""
        found = {k: dict(v) for k, v in self.db.finished_cells(self.spec.id).items()}
        for cell_id, entry in self.state.items():
            result = entry.get("result")
            if isinstance(result, dict) and result.get("status") in [s.value for s in FINISHED]:
                found.setdefault(cell_id, result)
        return found

    def _load_state(self) -> None:
        from ..errors import UsageError
        from ..fileio import loads_json, read_bounded

        path = self.folder / STATE_FILE
        if not path.is_file():
            return
        try:
            document = loads_json(read_bounded(path, MAX_STATE_BYTES, "sweep state"), str(path))
        except UsageError as exc:
            print(f"tinyharness: warning: {exc}; the sweep starts afresh", file=sys.stderr)
            return
        cells = document.get("cells") if isinstance(document, dict) else None
        if isinstance(cells, dict):
            self.state = {k: v for k, v in cells.items() if k in self.by_id and isinstance(v, dict)}

    def _save_state(self) -> None:
        from ..fileio import atomic_write

        document = {"format": STATE_FORMAT, "id": self.spec.id, "name": self.spec.name,
                    "updated": utc_now(), "spec": self.spec.to_dict(),
                    "cells": {c.id: self.state.get(c.id, {"status": "pending"}) for c in self.spec.cells}}
        atomic_write(self.folder / STATE_FILE, json.dumps(document, indent=1).encode())

    # -- running --------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> SweepOutcome:
        stop = stop or threading.Event()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._load_state()
        self.db.record_sweep(self.spec.id, self.spec.name, self.spec.to_dict())
        todo = self._skip_finished()
        self._save_state()
        results: queue.Queue[CellResult] = queue.Queue()
        failure: list[str] = []
        worker = threading.Thread(target=self._execute, args=(todo, results, stop, failure),
                                  name="sweep-executor", daemon=True)
        worker.start()
        backlog: deque[CellResult] = deque()
        while True:
            try:
                self._pump(worker, results, backlog)
                break
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, then keep recording
                stop.set()
        rows = tuple(self.rows[c.id] for c in self.spec.cells)
        return SweepOutcome(self.spec, rows, stop.is_set(), self.folder, failure[0] if failure else None)

    def _skip_finished(self) -> list[Cell]:
        earlier, skips, todo = self.earlier_results(), self.skips(), []
        for cell in self.spec.cells:
            previous = earlier.get(cell.id)
            status = _status(previous)
            if status in skips:
                result = _result(previous, cell.id)
                summary = result.summary or read_summary(_local(result.run_dir))
                skipped = replace(result, status=CellStatus.SKIPPED, summary=summary)
                self.rows[cell.id] = Row(cell, skipped, status)
                self.state[cell.id] = {"status": status.value, "result": result.to_dict()}
                self._announce(cell.id)
            else:
                todo.append(cell)
        return todo

    def _execute(self, cells: list[Cell], results: queue.Queue, stop: threading.Event,
                 failure: list[str]) -> None:
        try:
            if cells:
                self.executor.run(cells, results.put, stop)
        except BaseException as exc:  # the engine, not a cell: said once, the sweep still ends
            failure.append(f"the executor failed: {type(exc).__name__}: {' '.join(str(exc).split())}")

    def _pump(self, worker: threading.Thread, results: queue.Queue, backlog: deque) -> None:
        """Record every result until the executor is done (re-entered after a Ctrl-C: the one
        being recorded then is recorded again, which the upserts make harmless)."""
        while True:
            while backlog:
                self._record(backlog[0])
                backlog.popleft()
            if not worker.is_alive() and results.empty():
                return
            try:
                backlog.append(results.get(timeout=0.2))
            except queue.Empty:
                pass

    def _record(self, result: CellResult) -> None:
        cell = self.by_id.get(result.cell_id)
        key = (result.cell_id, result.started, result.finished)
        if cell is None or key in self.recorded:
            return
        result = self._bring_home(result)
        run_dir = _local(result.run_dir)
        if run_dir is not None:
            try:
                self.db.index_run(run_dir, sweep_id=self.spec.id, cell_id=cell.id, node=result.node)
            except Exception as exc:  # a run directory the index cannot read: the cell still counts
                print(f"tinyharness: warning: could not index {run_dir}: {exc}", file=sys.stderr)
        self.db.record_cell(self.spec.id, {**cell.to_dict(), "id": cell.id}, result.to_dict())
        self.rows[cell.id] = Row(cell, result)
        self.state[cell.id] = {"status": result.status.value, "result": result.to_dict()}
        self._save_state()
        self.recorded.add(key)
        self._announce(cell.id)

    def _bring_home(self, result: CellResult) -> CellResult:
        """A result whose run directory travelled (a remote node) with it unpacked under OUTPUT."""
        if result.archive is None:
            return result
        try:
            local = unpack_run_dir(result.archive, self.output)
        except (ValueError, OSError) as exc:
            return replace(result, archive=None, reason=f"{result.reason} (its run directory could "
                           f"not be unpacked: {exc})".strip())
        return replace(result, run_dir=str(local), archive=None)

    def _announce(self, cell_id: str) -> None:
        if self.on_row is not None:
            done = sum(1 for r in self.rows.values() if r.result is not None)
            self.on_row(self.rows[cell_id], done, len(self.rows))


def _status(result: Mapping[str, Any] | None) -> CellStatus | None:
    try:
        return CellStatus(result["status"]) if result else None
    except (KeyError, ValueError, TypeError):
        return None


def _result(d: Mapping[str, Any], cell_id: str) -> CellResult:
    """An earlier result as the database or sweep.json kept it (fields it lacks get defaults)."""
    return CellResult(cell_id=cell_id, status=d["status"], reason=d.get("reason") or "",
                      returncode=d.get("returncode"), run_dir=d.get("run_dir"), node=d.get("node") or "",
                      started=d.get("started") or "", finished=d.get("finished") or "",
                      wall_s=float(d.get("wall_s") or 0.0), attempts=int(d.get("attempts") or 1),
                      summary=d.get("summary") if isinstance(d.get("summary"), dict) else None)


def _local(run_dir: str | None) -> Path | None:
    return Path(run_dir) if run_dir and Path(run_dir).is_dir() else None
