"""The worker side of the distributed engine: a node's declared boards and timing slots, and the task
that runs one sweep cell there.

A node joins the cluster with ``tinyharness sweep-worker ADDRESS --board ID=PORT ...``: its Dask
worker declares the resources ``timing=<slots>`` and ``board:<ID>=1`` per board, and carries a
worker plugin holding the boards map (:class:`NodeState`), which :func:`execute_cell` reads to find
the port of a cell's board. Nothing here imports Dask at module level: the head imports it too.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    from .cell_run import CellResult
    from .spec import Cell

PLUGIN_NAME = "tinyharness-node"
TIMING = "timing"
BOARD_PREFIX = "board:"

# A cell's child must not outlive its worker: a worker killed with SIGKILL cannot stop it, so the
# child asks the kernel for SIGTERM when its parent dies (Linux; elsewhere a no-op), then execs the
# real command line. argv: PARENT_PID COMMAND...
_GUARD = """\
import os, signal, sys
parent, command = int(sys.argv[1]), sys.argv[2:]
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit("tinyharness sweep-worker: the worker exited before this cell started")
os.execvp(command[0], command)
"""


def board_resource(board: str) -> str:
    return BOARD_PREFIX + board


@dataclass(frozen=True)
class NodeConfig:
    """What a node declares when it joins: its name, boards (id -> serial port) and timing slots."""

    name: str
    boards: Mapping[str, str] = field(default_factory=dict)
    timing_slots: int = 1
    workdir: Path = Path(".")
    keep_runs: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise UsageError("--name must not be empty")
        if self.timing_slots < 0:
            raise UsageError(f"--timing-slots {self.timing_slots}: must be 0 or more")
        for board, port in self.boards.items():
            if not board or not port or any(c.isspace() for c in board):
                raise UsageError(f"--board {board}={port}: expected ID=PORT, e.g. kws-a=/dev/ttyACM0")

    def resources(self) -> dict[str, float]:
        found = {board_resource(board): 1.0 for board in self.boards}
        if self.timing_slots:
            found[TIMING] = float(self.timing_slots)
        return found


def parse_boards(pairs: Sequence[str]) -> dict[str, str]:
    """``("kws-a=/dev/ttyACM0", ...)`` -> ``{"kws-a": "/dev/ttyACM0"}``; one-line errors."""
    boards: dict[str, str] = {}
    for pair in pairs:
        board, sep, port = pair.partition("=")
        board, port = board.strip(), port.strip()
        if not sep or not board or not port:
            raise UsageError(f"--board {pair!r}: expected ID=PORT, e.g. kws-a=/dev/ttyACM0")
        if board in boards:
            raise UsageError(f"--board {board} given twice: one port per board id")
        boards[board] = port
    return boards


def default_node_name() -> str:
    return socket.gethostname() or "node"


class NodeLeft(RuntimeError):
    """The node left the cluster (SIGTERM, Ctrl-C) while the cell ran: the head runs it again."""


class NodeState:
    """The node's state inside its Dask worker: the declared config, one stop event per sweep
    (set: its queued cells start nothing, its running cells are interrupted), and whether the
    node is leaving."""

    MAX_SWEEPS = 1000  # stop events kept (a long-lived node serves many sweeps)

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.leaving = False
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def stop_event(self, token: str) -> threading.Event:
        with self._lock:
            event = self._stops.get(token)
            if event is None:
                while len(self._stops) >= self.MAX_SWEEPS:
                    self._stops.pop(next(iter(self._stops)))
                event = self._stops[token] = threading.Event()
            return event

    def stop(self, token: str) -> None:
        self.stop_event(token).set()

    def leave(self) -> None:
        """Every running cell is interrupted, and its task ends in NodeLeft (it runs elsewhere)."""
        self.leaving = True
        with self._lock:
            events = list(self._stops.values())
        for event in events:
            event.set()


def node_plugin(config: NodeConfig):
    """The worker plugin (registered under PLUGIN_NAME) through which tasks reach the NodeState."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class NodePlugin(WorkerPlugin):
        name = PLUGIN_NAME

        def __init__(self) -> None:
            self.state = NodeState(config)

    return NodePlugin()


def _node(worker=None) -> NodeState:
    """This node's state: from ``worker`` (what client.run passes), else the task's worker."""
    if worker is None:
        from distributed import get_worker

        worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None:  # a plain `dask worker` declaring the resources by hand
        raise RuntimeError("this Dask worker was not started by 'tinyharness sweep-worker'")
    return plugin.state


def guarded_launcher(launcher: Sequence[str] | None) -> list[str]:
    """The launcher a cell runs with on this node: the given one (or this node's own tinyharness),
    behind the guard that ends the child when the worker dies."""
    command = list(launcher) if launcher else [sys.executable, "-m", "tinyharness.cli"]
    return [sys.executable, "-c", _GUARD, str(os.getpid()), *command]


def execute_cell(cell: "Cell", token: str, launcher: Sequence[str] | None,
                 env: Mapping[str, str] | None = None) -> "CellResult | None":
    """The Dask task: run one cell on this node, its run directory packed into the result.
    None when its sweep was stopped before the cell started (nothing ran: nothing to record)."""
    from .cell_run import CellResult, CellStatus, run_cell, utc_now

    node = _node()
    config, stop = node.config, node.stop_event(token)
    if stop.is_set():
        return None
    if node.leaving:
        raise NodeLeft(f"node {config.name} is leaving the cluster")
    port = None
    if cell.board is not None:
        port = config.boards.get(cell.board)
        if port is None:  # the scheduler matched resources, so only a hand-made worker gets here
            now = utc_now()
            return CellResult(cell.id, CellStatus.FAILED, f"board {cell.board} is not attached to "
                              f"node {config.name}", None, None, config.name, now, now, 0.0)
    folder = config.workdir / token / f"{cell.id}-{os.urandom(3).hex()}"
    result = None
    try:
        result = run_cell(cell, folder, port=port, launcher=guarded_launcher(launcher), env=env,
                          pack=True, stop=stop)
    finally:
        # a run directory too large to travel stays here (the result says where)
        stays = result is not None and result.run_dir is not None and result.archive is None
        if not config.keep_runs and not stays:
            shutil.rmtree(folder, ignore_errors=True)
            _remove_if_empty(config.workdir / token)
    if node.leaving:
        raise NodeLeft(f"node {config.name} left the cluster while the cell ran")
    return replace(result, node=config.name)


def interrupt_cells(token: str, dask_worker=None) -> None:
    """Run on every node (client.run) when a sweep stops: its queued cells start nothing, and its
    running cells are interrupted as Ctrl-C would (run_cell escalates; run dirs say interrupted)."""
    _node(dask_worker).stop(token)


def node_info(dask_worker=None) -> dict:
    """Run on each node by the head (client.run): who it is and what it declares."""
    from .. import __version__

    config = _node(dask_worker).config
    return {"name": config.name, "boards": dict(config.boards), "timing_slots": config.timing_slots,
            "tinyharness": __version__, "host": socket.gethostname()}


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def scheduler_address(text: str) -> str:
    """``host:port`` or ``tcp://host:port`` -> ``tcp://host:port``; a one-line error otherwise."""
    rest = text.split("://", 1)[1] if "://" in text else text
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"scheduler address {text!r}: expected HOST:PORT or tcp://HOST:PORT, e.g. "
                         "tcp://192.168.1.5:8786")
    return text if "://" in text else f"tcp://{text}"
