"""The distributed engine: a sweep's cells as Dask tasks on the nodes of a cluster.

Each cell is one task that runs ``run_cell`` on a node (worker.py's :func:`execute_cell`) and comes
back as a CellResult with its run directory packed; here the directory is unpacked into OUTPUT, so
the machine that started the sweep holds every run (and its results database indexes them).

Where a cell may run is said with Dask's worker resources, declared by each node when it joins
(``tinyharness sweep-worker``): a host-timed cell takes a whole ``timing`` slot (two never share a
node), an untimed host cell (accuracy-only, emulated) a 1/parallel share of one (so it never runs
beside a timed cell either), a board cell ``board:<id>`` (one cell per board; device-timed, it
needs no slot). Dask reschedules the cells of a node that dies; what no node can take (its board's
node is gone, or a cell's node kept dying: KilledWorker) becomes LOST after a bounded wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import distributed  # here, not later: without the cluster extra, importing this module fails

from ..errors import UsageError
from .cell_run import CellResult, CellStatus, one_line, unpack_run_dir, utc_now
from .spec import Cell
from .worker import TIMING, execute_cell, interrupt_cells, node_info, scheduler_address

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the head looks at the cluster between results
PLACEMENT_CHECK_S = 1.0
# failures of the engine, not of the cell: the cell runs again (up to `retries` times), else LOST
ENGINE_FAILURES = ("KilledWorker", "NodeLeft", "CommClosedError", "FutureCancelledError",
                   "CancelledError")


@dataclass
class _Task:
    """One submission of a cell (attempt counts from 1); unplaced_since: when it was first seen
    with no node able to run it (None: placeable)."""

    cell: Cell
    attempt: int
    future: object
    unplaced_since: float | None = None


class DaskExecutor:
    """The Executor of local.py, on a Dask cluster at ``address`` (connected at construction, so a
    wrong address is a UsageError before the sweep starts). ``launcher``: the command each node
    runs cells with (None: the node's own tinyharness); ``retries``: how often a cell whose node
    died is submitted again before it is LOST; ``wait_for_node_s``: how long a cell may wait with
    no node able to run it; ``parallel``: untimed host cells sharing one timing slot."""

    def __init__(self, address: str, output: Path, launcher: Sequence[str] | None = None,
                 retries: int = 1, connect_timeout: float = 30.0, *, parallel: int = 1,
                 wait_for_node_s: float = 120.0, stop_grace_s: float = 40.0,
                 env: Mapping[str, str] | None = None) -> None:
        for name, value, least in (("retries", retries, 0), ("parallel", parallel, 1)):
            if int(value) < least:
                raise UsageError(f"{name} must be at least {least}, not {value}")
        for name, value in (("connect_timeout", connect_timeout), ("wait_for_node_s", wait_for_node_s),
                            ("stop_grace_s", stop_grace_s)):
            if not value > 0:
                raise UsageError(f"{name} must be a positive number of seconds, not {value}")
        self.address = scheduler_address(address)
        self.output = Path(output)
        self.launcher = tuple(launcher) if launcher else None
        self.retries, self.parallel = int(retries), int(parallel)
        self.connect_timeout, self.wait_for_node_s = float(connect_timeout), float(wait_for_node_s)
        self.stop_grace_s, self.env = float(stop_grace_s), env
        self.client = _connect(self.address, self.connect_timeout)

    # -- the Executor protocol -----------------------------------------------------------------
    def run(self, cells: Sequence[Cell], on_result: Callable[[CellResult], None],
            stop: threading.Event) -> None:
        """Submit every cell, deliver each one's result once (unpacked into OUTPUT), and return
        when all are done, or when ``stop`` is set (then queued cells are cancelled and running
        ones interrupted: their INTERRUPTED results still come, within stop_grace_s)."""
        self.output.mkdir(parents=True, exist_ok=True)
        shared_hosts(self.nodes())
        sweep = _SweepRun(self, on_result, uuid.uuid4().hex[:16])
        for cell in {c.id: c for c in cells}.values():  # a cell listed twice runs once
            sweep.submit(cell, 1)
        sweep.wait(stop)
        if stop.is_set():
            sweep.stop()

    # -- the cluster ---------------------------------------------------------------------------
    def task_resources(self, cell: Cell) -> dict[str, float]:
        """What the cell's task holds on its node: cell.resources(), and for an untimed host
        cell a share of a timing slot (nothing else runs beside a timed cell)."""
        held = dict(cell.resources())
        if not cell.board and TIMING not in held:
            held[TIMING] = 1.0 / self.parallel
        return held

    def nodes(self) -> list[dict]:
        """The sweep-worker nodes now in the cluster: name, boards, timing_slots, tinyharness
        version, host (workers not started by 'tinyharness sweep-worker' are left out)."""
        answers = self.client.run(node_info, on_error="return")
        return sorted((a for a in answers.values() if isinstance(a, dict)), key=lambda a: a["name"])

    def workers_resources(self) -> list[dict[str, float]] | None:
        """Each worker's declared resources, or None when the scheduler does not answer."""
        info = None
        # newer releases take n_workers (-1: all, never a first few); older ones reject the
        # argument and list every worker
        for kwargs in ({"n_workers": -1}, {}):
            try:
                info = self.client.scheduler_info(**kwargs)
                break
            except Exception:  # noqa: BLE001 - the scheduler is gone or busy: the caller retries
                continue
        if info is None:
            return None
        return [dict(w.get("resources") or {}) for w in info.get("workers", {}).values()]

    def close(self) -> None:
        self.client.close(timeout=10)

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SweepRun:
    """One call of DaskExecutor.run: the submitted tasks, what was delivered, the clocks."""

    def __init__(self, engine: DaskExecutor, on_result: Callable[[CellResult], None],
                 token: str) -> None:
        self.engine, self.on_result, self.token = engine, on_result, token
        self.tasks: dict[str, _Task] = {}  # Dask key -> task
        self.delivered: set[str] = set()  # cell ids: one result per cell, whatever ran twice
        self.done: queue.Queue[str] = queue.Queue()
        self.scheduler_lost_since: float | None = None
        self.next_check = 0.0

    def submit(self, cell: Cell, attempt: int) -> None:
        key = f"tinyharness-cell-{cell.id}-{attempt}-{self.token}"
        engine = self.engine
        future = engine.client.submit(execute_cell, cell, self.token, engine.launcher, engine.env,
                                      key=key, pure=False, resources=engine.task_resources(cell))
        self.tasks[key] = _Task(cell, attempt, future)
        future.add_done_callback(lambda f: self.done.put(f.key))

    def wait(self, stop: threading.Event) -> None:
        while self.tasks and not stop.is_set():
            self._next_done(POLL_S)
            now = time.monotonic()
            if now >= self.next_check:
                self.next_check = now + PLACEMENT_CHECK_S
                self._check_cluster(now)

    def stop(self) -> None:
        """Queued cells start nothing, running ones are interrupted; their results are awaited
        for stop_grace_s, then whatever is left is cancelled (it never ran: no result)."""
        deadline = time.monotonic() + self.engine.stop_grace_s
        self._interrupt()
        while self.tasks and time.monotonic() < deadline and self._any_processing():
            self._next_done(POLL_S)
        if self.tasks:
            self.engine.client.cancel([t.future for t in self.tasks.values()], force=True)
            self.tasks.clear()

    # -- results -------------------------------------------------------------------------------
    def _next_done(self, timeout: float) -> None:
        try:
            key = self.done.get(timeout=timeout)
        except queue.Empty:
            return
        task = self.tasks.pop(key, None)
        if task is not None:
            self._settle(task)

    def _settle(self, task: _Task) -> None:
        future = task.future
        status = future.status
        if status == "finished":
            try:
                result = future.result(timeout=self.engine.connect_timeout)
            except Exception as exc:  # noqa: BLE001 - the result was lost on its way here
                self._failed(task, exc)
                return
            if result is not None:  # None: the sweep was stopped before the cell started
                self._deliver(result, task)
        elif status == "error":
            self._failed(task, future.exception(timeout=self.engine.connect_timeout))
        else:  # cancelled, not by us (the scheduler restarted or dropped it)
            self._failed(task, None)
        future.release()

    def _failed(self, task: _Task, exc: BaseException | None) -> None:
        kind = type(exc).__name__ if exc is not None else "CancelledError"
        why = one_line(f"{kind}: {exc}" if exc is not None and str(exc) else kind)
        if kind not in ENGINE_FAILURES:  # the task itself raised: running it again will too
            self._unplaced(task, CellStatus.FAILED, f"the cluster could not run the cell: {why}")
        elif task.attempt <= self.engine.retries:
            log.warning("cell %s: %s; submitting it again", task.cell.label(), why)
            self.submit(task.cell, task.attempt + 1)
        else:
            self._unplaced(task, CellStatus.LOST, f"its node died or left ({why}); "
                           f"{task.attempt} attempt(s) spent")

    def _unplaced(self, task: _Task, status: CellStatus, reason: str) -> None:
        now = utc_now()
        self._deliver(CellResult(task.cell.id, status, reason, None, None, "", now, now, 0.0),
                      task)

    def _deliver(self, result: CellResult, task: _Task) -> None:
        if result.cell_id in self.delivered:
            return
        self.delivered.add(result.cell_id)
        run_dir, reason = result.run_dir, result.reason
        if result.archive is not None:
            try:
                run_dir = str(unpack_run_dir(result.archive, self.engine.output))
            except (ValueError, OSError) as exc:
                run_dir, reason = None, one_line(f"{reason} (its run directory did not arrive: {exc})")
        elif run_dir is not None:  # too large to travel: it stayed on its node
            run_dir, reason = None, one_line(f"{reason} (its run directory stayed on node "
                                             f"{result.node} at {result.run_dir})")
        self.on_result(replace(result, run_dir=run_dir, reason=reason, archive=None,
                               attempts=task.attempt))

    # -- the cluster ---------------------------------------------------------------------------
    def _check_cluster(self, now: float) -> None:
        """Cells no node can run become LOST after wait_for_node_s; losing the scheduler for
        connect_timeout makes every remaining cell LOST."""
        workers = self.engine.workers_resources()
        if workers is None:
            self.scheduler_lost_since = self.scheduler_lost_since or now
            if now - self.scheduler_lost_since >= self.engine.connect_timeout:
                reason = f"lost the scheduler at {self.engine.address}"
                for key in list(self.tasks):
                    self._unplaced(self.tasks.pop(key), CellStatus.LOST, reason)
            return
        self.scheduler_lost_since = None
        wait_s = self.engine.wait_for_node_s
        for key, task in list(self.tasks.items()):
            missing = _missing(self.engine.task_resources(task.cell), workers)
            if missing is None:
                task.unplaced_since = None
                continue
            task.unplaced_since = task.unplaced_since or now
            if now - task.unplaced_since >= wait_s:
                del self.tasks[key]
                self.engine.client.cancel([task.future], force=True)
                self._unplaced(task, CellStatus.LOST, f"no node of the cluster {missing} "
                               f"(waited {wait_s:g} s)")

    def _interrupt(self) -> None:
        try:
            self.engine.client.run(interrupt_cells, self.token, on_error="ignore")
        except Exception as exc:  # noqa: BLE001 - a node that cannot be told is dead anyway
            log.warning("could not tell every node to stop: %s", one_line(str(exc)))

    def _any_processing(self) -> bool:
        """Whether a task of ours sits on a node (running, or queued there to start nothing)."""
        try:
            processing = self.engine.client.processing()
        except Exception:  # noqa: BLE001 - no scheduler: nothing will come back
            return False
        ours = {key for keys in processing.values() for key in keys}
        return any(key in ours for key in self.tasks)


def _missing(needed: Mapping[str, float], workers: list[dict[str, float]]) -> str | None:
    """None when some worker declares everything ``needed``; else what no worker has, in words."""
    if any(all(w.get(r, 0.0) >= amount for r, amount in needed.items()) for w in workers):
        return None
    if not workers:
        return "is connected"
    for resource, amount in needed.items():
        if not any(w.get(resource, 0.0) >= amount for w in workers):
            if resource.startswith("board:"):
                return f"holds board {resource.removeprefix('board:')}"
            return "offers a timing slot (nodes with --timing-slots 0 run board cells only)"
    return f"holds all of {', '.join(sorted(needed))} at once"


def _connect(address: str, timeout: float) -> distributed.Client:
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        detail = " ".join(str(exc).split())[:200] or "timed out"
        raise UsageError(f"no scheduler answered at {address} within {timeout:g} s ({detail}); "
                         "start one with 'tinyharness sweep-scheduler' and check --cluster") from None


def shared_hosts(nodes: Sequence[dict], warn=None) -> list[str]:
    """Hosts where more than one node holds a timing slot: a timing slot guards a node, not a
    machine, so timed cells on those nodes can run at once on one CPU (a warning, not an error:
    a test cluster on one machine is legitimate). Returns those hosts."""
    import click

    counts: dict[str, int] = {}
    for node in nodes:
        if node.get("timing_slots", 0) and node.get("host"):
            counts[node["host"]] = counts.get(node["host"], 0) + 1
    shared = sorted(h for h, n in counts.items() if n > 1)
    for host in shared:
        (warn or (lambda m: click.echo(m, err=True)))(
            f"warning: {counts[host]} nodes on host {host} hold a timing slot each: their timed "
            "cells may run at the same time on one machine and disturb each other (give all but "
            "one --timing-slots 0)")
    return shared
