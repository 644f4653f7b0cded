"""Running a sweep's cells on this machine, each in a child process of its own.

Timing on one host is exclusive: a timed cell (host-timed performance) runs alone, and nothing
starts beside it; other cells (accuracy-only, device-timed) run up to ``parallel`` at a time, and
a board serves one cell at a time. Cells start in the sweep's order, and none starts past a timed
cell that is waiting for the host to be free (so a timed cell is never starved).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from .cell_run import DEFAULT_LAUNCHER, CellResult, CellStatus, run_cell, utc_now
from .spec import Cell


class Executor(Protocol):
    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            stop: threading.Event) -> None:
        """Call ``on_result`` once per cell (in any thread) and return when all are done or
        ``stop`` is set; a cell that cannot run is still a result (FAILED or LOST, with a reason)."""


class LocalExecutor:
    """Cells as child processes of this one; see the module's doc for what runs together."""

    def __init__(self, output: Path, boards: Mapping[str, str], parallel: int = 1,
                 launcher: Sequence[str] = DEFAULT_LAUNCHER, env: Mapping[str, str] | None = None) -> None:
        if int(parallel) < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        self.output, self.boards, self.parallel = Path(output), dict(boards), int(parallel)
        self.launcher, self.env = tuple(launcher), env

    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            stop: threading.Event) -> None:
        pending = list(cells)
        running: dict[str, tuple[Cell, bool]] = {}  # cell id -> (cell, timed)
        done: queue.Queue[CellResult] = queue.Queue()
        while pending or running:
            while not stop.is_set():
                cell = self._next(pending, running)
                if cell is None:
                    break
                pending.remove(cell)
                if cell.board and cell.board not in self.boards:
                    on_result(_unplaced(cell, f"board {cell.board!r} has no port on this machine; "
                                        "add it under [boards]"))
                    continue
                running[cell.id] = (cell, cell.timed)
                threading.Thread(target=self._one, args=(cell, done, stop), daemon=True,
                                 name=f"cell-{cell.id}").start()
            if not running:
                if stop.is_set() or not pending:
                    return
                continue
            result = done.get()
            running.pop(result.cell_id, None)
            on_result(result)

    def _next(self, pending: list[Cell], running: dict[str, tuple[Cell, bool]]) -> Cell | None:
        """The first pending cell that may start now, never one past a waiting timed cell."""
        if any(timed for _, timed in running.values()):
            return None
        busy = {cell.board for cell, _ in running.values() if cell.board}
        for cell in pending:
            if cell.timed:
                return None if running else cell
            if len(running) >= self.parallel:
                return None
            if not cell.board or cell.board not in busy:
                return cell
        return None

    def _one(self, cell: Cell, done: queue.Queue, stop: threading.Event) -> None:
        try:
            result = run_cell(cell, self.output, port=self.boards.get(cell.board or ""),
                              launcher=self.launcher, env=self.env, stop=stop)
        except Exception as exc:  # the child could not even start (no launcher, no disk)
            result = _unplaced(cell, f"could not start the run: {type(exc).__name__}: {exc}")
        done.put(result)


def _unplaced(cell: Cell, reason: str) -> CellResult:
    import socket

    now = utc_now()
    return CellResult(cell.id, CellStatus.FAILED, reason, None, None, socket.gethostname(), now, now, 0.0)
