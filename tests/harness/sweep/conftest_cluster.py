"""A real two-node sweep cluster on 127.0.0.1, started once per test session (imported by
test_dask_engine.py; not a conftest.py, so only the tests that ask for it pay for it).

The scheduler and each node are ``tinyharness sweep-scheduler`` / ``sweep-worker`` processes, as a
user starts them: node-a holds a DUT emulator's port as board ``emu-a`` when the MLPerf Tiny data
and tflite-micro are here (``tinyharness dut emulate`` on the kws01 reference model), node-b
holds no board; each has one timing slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KWS_MODEL = REPO.parent / "shared" / "mlperf_tiny" / "models" / "kws" / "kws_ref_model.tflite"
KWS_DATA = REPO.parent / "shared" / "mlperf_tiny" / "datasets" / "kws01"
START_S = 60  # a process that prints no first line within this is killed (never a hung session)

# The commands through click directly while the lead has not registered them in tinyharness.cli.
_RUNNER = ("import sys; from tinyharness.cli.exits import handled; "
           "from tinyharness.cli.sweep_worker import sweep_scheduler, sweep_worker; "
           "cmd = {'sweep-scheduler': sweep_scheduler, 'sweep-worker': sweep_worker}[sys.argv[1]]; "
           "sys.exit(handled(lambda: cmd.main(args=sys.argv[2:], prog_name='tinyharness', "
           "standalone_mode=False)))")


def tinyharness(command: str, *args: str) -> list[str]:
    """The command line of ``tinyharness COMMAND ARGS`` in a fresh interpreter."""
    from tinyharness.cli import cli

    if command in cli.commands or command == "dut":
        return [sys.executable, "-m", "tinyharness.cli", command, *args]
    return [sys.executable, "-c", _RUNNER, command, *args]


def node_env(db: Path) -> dict[str, str]:
    """A user's environment: supervised runs (tests/conftest.py turns that off for in-process
    tests), and any results database in the test's folder, never the user's."""
    env = {k: v for k, v in os.environ.items() if k != "TINYHARNESS_SUPERVISE"}
    env["TINYHARNESS_DB"] = str(db)
    return env


def start(argv: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """Start a process that prints one line once it serves; that line. stderr goes to ``log``."""
    with open(log, "ab") as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env,
                                stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(START_S, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline().decode().strip()
    finally:
        watchdog.cancel()
    if not line:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"{argv[-1]!r} did not start: {log.read_text()[-2000:]}")
    return proc, line


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Cluster:
    address: str
    folder: Path
    env: dict[str, str]
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)
    emulator_port: str | None = None  # board emu-a on node-a, when the emulator runs

    def workdir(self, name: str) -> Path:
        """Where node ``name`` runs its cells (their run directories appear there first)."""
        return self.folder / f"{name}-work"

    def join(self, name: str, *args: str) -> subprocess.Popen:
        """One more node (the caller stops it: see :func:`stop`)."""
        proc, line = start(tinyharness("sweep-worker", self.address, "--name", name,
                                       "--startup-timeout", "20", "--workdir",
                                       str(self.workdir(name)), *args),
                           self.env, self.folder / f"{name}.log")
        assert line.startswith(f"{name} tcp://"), line
        return proc


def _emulator(env: dict[str, str], folder: Path) -> tuple[subprocess.Popen | None, str | None]:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return None, None
    if not KWS_MODEL.is_file() or not KWS_DATA.is_dir():
        return None, None
    proc, port = start(tinyharness("dut", "emulate", "--model", str(KWS_MODEL)), env,
                       folder / "emulator.log")
    return proc, port


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    folder = tmp_path_factory.mktemp("cluster")
    env = node_env(folder / "nodes.db")
    processes: list[subprocess.Popen] = []
    try:
        scheduler, address = start(tinyharness("sweep-scheduler", "--port", "0"), env,
                                   folder / "scheduler.log")
        processes.append(scheduler)
        found = Cluster(address, folder, env)
        emulator, port = _emulator(env, folder)
        if emulator is not None:
            processes.append(emulator)
            found.emulator_port = port
        boards = ["--board", f"emu-a={port}"] if port else []
        for name, args in (("node-a", boards), ("node-b", [])):
            found.nodes[name] = found.join(name, *args)
            processes.append(found.nodes[name])
        yield found
    finally:
        for proc in reversed(processes):  # nodes, then the emulator and the scheduler
            stop(proc)
