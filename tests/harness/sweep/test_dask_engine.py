"""The distributed engine on a real Dask cluster of two nodes on 127.0.0.1 (conftest_cluster.py):
cells spread over both nodes, timed cells never share a node, a board cell runs where its board
is, a node killed mid-sweep loses nothing and duplicates nothing, a stop interrupts.

The oracles are the cells themselves (what each run directory's summary must name), the nodes'
declared resources, and the processes the test sees on this machine."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from conftest_cluster import KWS_DATA, Cluster, cluster, stop, tinyharness  # noqa: E402,F401
from tinyharness.errors import UsageError  # noqa: E402
from tinyharness.sweep.cell_run import CellResult, CellStatus  # noqa: E402
from tinyharness.sweep.dask_engine import DaskExecutor, _missing  # noqa: E402
from tinyharness.sweep.spec import Cell  # noqa: E402
from tinyharness.sweep.worker import NodeConfig, parse_boards, scheduler_address  # noqa: E402

FAST = ("--min-duration", "1")
RAN = (CellStatus.OK, CellStatus.INVALID)  # digits01 at --min-duration 1 is INVALID by its rules


def digits_cells(*extra: str) -> list[Cell]:
    return [Cell("digits01", sut, scenario, mode="performance", run_args=(*FAST, *extra))
            for sut in ("null", "onnxruntime-cpu") for scenario in ("single-stream", "offline")]


class Collector:
    """on_result: every call kept (a cell delivered twice would show here), from any thread."""

    def __init__(self, stop_after: int | None = None, stop: threading.Event | None = None) -> None:
        self.results: list[CellResult] = []
        self.lock = threading.Lock()
        self.stop_after, self.stop = stop_after, stop

    def __call__(self, result: CellResult) -> None:
        with self.lock:
            self.results.append(result)
            if self.stop_after is not None and len(self.results) >= self.stop_after:
                self.stop.set()

    def by_cell(self) -> dict[str, CellResult]:
        counts = Counter(r.cell_id for r in self.results)
        assert max(counts.values(), default=1) == 1, f"a cell was delivered twice: {counts}"
        return {r.cell_id: r for r in self.results}


def run_on(executor: DaskExecutor, cells: list[Cell], stop: threading.Event | None = None,
           collector: Collector | None = None) -> Collector:
    collector = collector or Collector()
    executor.run(cells, collector, stop or threading.Event())
    return collector


def summary_of(result: CellResult) -> dict:
    return json.loads((Path(result.run_dir) / "summary.json").read_text())


def assert_no_timed_overlap(cells: list[Cell], results: dict[str, CellResult]) -> None:
    by_node: dict[str, list[tuple[str, str]]] = {}
    for cell in cells:
        if cell.timed and cell.id in results:
            r = results[cell.id]
            by_node.setdefault(r.node, []).append((r.started, r.finished))
    for node, spans in by_node.items():
        spans.sort()
        for (_, first_end), (second_start, _) in zip(spans, spans[1:]):
            assert first_end <= second_start, f"two timed cells overlapped on {node}: {spans}"


# -- the cluster ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_sweep_runs_across_both_nodes(cluster: Cluster, tmp_path):
    cells = digits_cells()
    if cluster.emulator_port:  # kws01 on the emulated DUT: only node-a holds board emu-a
        data = tmp_path / "data" / "kws01"
        data.mkdir(parents=True)
        rows = (KWS_DATA / "y_labels.csv").read_text().splitlines()[:20]
        for row in rows:
            name = row.split(",")[0].strip()
            (data / name).symlink_to(KWS_DATA / name)
        (data / "y_labels.csv").write_text("\n".join(rows) + "\n")
        cells.append(Cell("kws01", "serial", board="emu-a",
                          run_args=("--dataset", str(data.parent), *FAST)))
    output = tmp_path / "results"
    with DaskExecutor(cluster.address, output=output, wait_for_node_s=30) as executor:
        assert [n["name"] for n in executor.nodes()] == ["node-a", "node-b"]
        results = run_on(executor, cells).by_cell()

    assert set(results) == {c.id for c in cells}
    for cell in cells:
        result = results[cell.id]
        assert result.status in RAN, (cell.label(), result)
        assert result.archive is None and result.attempts == 1
        run_dir = Path(result.run_dir)
        assert run_dir.parent == output  # unpacked on the machine that started the sweep
        summary = summary_of(result)
        assert (summary["benchmark"], summary["sut"], summary["scenario"]) == \
            (cell.benchmark, cell.sut, cell.scenario)
        assert result.summary == summary
    assert {r.node for r in results.values()} == {"node-a", "node-b"}
    assert_no_timed_overlap(cells, results)
    if cluster.emulator_port:
        board_cell = cells[-1]
        assert not board_cell.timed and results[board_cell.id].node == "node-a"
    assert len(list(output.iterdir())) == len(cells)  # no staging left, nothing twice


HANG_LAUNCHER = textwrap.dedent('''
    import os, sys, time
    if any(a.startswith("port=hang") for a in sys.argv):  # the board that never answers
        time.sleep(120)
        sys.exit(3)
    os.execv(sys.executable, [sys.executable, "-m", "tinyharness.cli", *sys.argv[1:]])
''')


def children_with(proc: subprocess.Popen, text: str) -> list:
    import psutil

    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if any(text in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_node_killed_mid_sweep_loses_and_duplicates_nothing(cluster: Cluster, tmp_path):
    """node-c joins holding board 'doomed' (whose cell hangs) and a timing slot, and is killed
    with SIGKILL while it runs that cell: the timed cells it held finish on node-a/node-b, the
    board cell (no other node holds its board) is LOST after the bounded wait, every cell has
    exactly one result, and the hung child dies with its node."""
    launcher = tmp_path / "launcher.py"
    launcher.write_text(HANG_LAUNCHER)
    victim = cluster.join("node-c", "--board", "doomed=hang")
    try:
        cells = [Cell("digits01", sut, mode="performance", run_args=(*FAST, "--seed", str(seed)))
                 for sut in ("null", "onnxruntime-cpu") for seed in (1, 2)]
        doomed = Cell("digits01", "null", mode="accuracy", board="doomed")
        cells.append(doomed)
        output = tmp_path / "results"
        executor = DaskExecutor(cluster.address, output=output, wait_for_node_s=3,
                                launcher=[sys.executable, str(launcher)])
        collector = Collector()
        sweep = threading.Thread(target=executor.run, args=(cells, collector, threading.Event()))
        sweep.start()
        hung = wait_for(lambda: children_with(victim, "port=hang"), 60, "the doomed cell to start")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        sweep.join(timeout=300)
        assert not sweep.is_alive()
        executor.close()
    finally:
        stop(victim)

    results = collector.by_cell()
    assert set(results) == {c.id for c in cells}
    lost = results.pop(doomed.id)
    assert lost.status is CellStatus.LOST and lost.run_dir is None
    assert "holds board doomed" in lost.reason and "waited 3 s" in lost.reason
    for cell_id, result in results.items():
        assert result.status in RAN, (result.node, result.reason, result.returncode)
        assert Path(result.run_dir).parent == output and (Path(result.run_dir) / "summary.json").is_file()
    assert len(list(output.iterdir())) == len(results)
    assert_no_timed_overlap(cells, results)
    import psutil

    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in hung),
             30, "the killed node's child to end (its guard)")


@pytest.mark.slow
def test_a_stop_interrupts_running_cells_and_starts_no_more(cluster: Cluster, tmp_path):
    cells = [Cell("digits01", "null", "single-stream", mode="performance",
                  run_args=("--min-duration", "5", "--seed", str(seed))) for seed in range(6)]
    stop_event = threading.Event()
    collector = Collector()
    with DaskExecutor(cluster.address, output=tmp_path / "results", stop_grace_s=60) as executor:
        sweep = threading.Thread(target=executor.run, args=(cells, collector, stop_event))
        sweep.start()
        wait_for(lambda: any(any(cluster.workdir(n).rglob("*_digits01_null_*"))
                             for n in cluster.nodes), 60, "a run to start")
        stop_event.set()
        sweep.join(timeout=120)
        assert not sweep.is_alive()
        results = collector.by_cell()
        assert 1 <= len(results) < len(cells)  # the queued ones never started
        interrupted = [r for r in results.values() if r.status is CellStatus.INTERRUPTED]
        assert interrupted
        # a cell stopped before its run made a directory has none; the others say interrupted
        marked = [r for r in interrupted if r.run_dir is not None]
        assert marked, interrupted
        for result in marked:
            status = json.loads((Path(result.run_dir) / "status.json").read_text())
            assert status["state"] == "interrupted"
        # the nodes serve the next sweep (a stopped sweep leaves no slot held)
        again = run_on(executor, cells[:1]).by_cell()
    assert again[cells[0].id].status in RAN
    assert not any(children_with(p, "--seed") for p in cluster.nodes.values())


@pytest.mark.slow
def test_a_segfaulting_cell_is_a_crashed_row_on_the_cluster(cluster: Cluster, tmp_path):
    from fakes import bad_launcher

    cells = [Cell("digits01", "bad", mode="performance", sut_options=(("misbehave", "segfault"),),
                  run_args=FAST),
             Cell("digits01", "null", mode="performance", run_args=FAST)]
    with DaskExecutor(cluster.address, output=tmp_path / "results",
                      launcher=bad_launcher(tmp_path)) as executor:
        results = run_on(executor, cells).by_cell()
    crashed = results[cells[0].id]
    assert crashed.status in (CellStatus.CRASHED, CellStatus.FAILED)
    assert "SIGSEGV" in crashed.reason
    assert results[cells[1].id].status in RAN


@pytest.mark.slow
def test_the_sweep_command_on_the_cluster_records_in_the_head_database(cluster: Cluster, tmp_path):
    from sweep_helpers import run_sweep, supervised_env

    db = tmp_path / "head.db"
    done = run_sweep(tmp_path, "--benchmark", "digits01", "--sut", "null", "--scenario",
                     "single-stream,offline", "--mode", "performance", "--min-duration", "1",
                     "--output", str(tmp_path / "results"), "--db", str(db),
                     "--cluster", cluster.address, env=supervised_env(TINYHARNESS_DB=str(db)))
    assert done.returncode in (0, 1), done.stderr
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT path, node FROM runs WHERE sweep_id IS NOT NULL").fetchall()
    assert len(rows) == 2
    assert {node for _, node in rows} <= {"node-a", "node-b"}
    for path, _ in rows:
        assert Path(path).parent == tmp_path / "results" and (Path(path) / "summary.json").is_file()


# -- without a cluster ------------------------------------------------------------------------------
def test_no_scheduler_at_the_address_is_a_one_line_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"no scheduler answered at tcp://127\.0\.0\.1:9 within 1 s"):
        DaskExecutor("127.0.0.1:9", output=tmp_path, connect_timeout=1)
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        DaskExecutor("head", output=tmp_path)


def test_sweep_worker_without_a_scheduler_exits_2_with_one_line(tmp_path):
    done = subprocess.run(tinyharness("sweep-worker", "127.0.0.1:9", "--startup-timeout", "1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("tinyharness: error: no scheduler answered at tcp://127.0.0.1:9")


@pytest.mark.parametrize("text, expected", [
    ("head:8786", "tcp://head:8786"), ("tcp://10.0.0.2:1", "tcp://10.0.0.2:1"),
    ("[::1]:8786", "tcp://[::1]:8786")])
def test_scheduler_addresses(text, expected):
    assert scheduler_address(text) == expected


@pytest.mark.parametrize("text", ["head", "head:", ":8786", "head:port", "head:70000"])
def test_bad_scheduler_addresses(text):
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        scheduler_address(text)


def test_boards_declare_resources():
    boards = parse_boards(["kws-a=/dev/ttyACM0", "vww-b = /dev/ttyUSB1"])
    assert boards == {"kws-a": "/dev/ttyACM0", "vww-b": "/dev/ttyUSB1"}
    config = NodeConfig("n", boards, timing_slots=1)
    assert config.resources() == {"timing": 1.0, "board:kws-a": 1.0, "board:vww-b": 1.0}
    assert NodeConfig("n", boards, timing_slots=0).resources() == {"board:kws-a": 1.0,
                                                                    "board:vww-b": 1.0}
    for bad in (["kws-a"], ["=/dev/x"], ["kws-a="], ["a=/dev/x", "a=/dev/y"]):
        with pytest.raises(UsageError, match="--board"):
            parse_boards(bad)


def test_what_no_node_can_hold_is_said_in_words():
    timing = {"timing": 1.0}
    assert _missing(timing, [{"timing": 1.0}]) is None
    assert _missing({"timing": 0.5}, [{"timing": 1.0}]) is None
    assert _missing(timing, [{"board:a": 1.0}]).startswith("offers a timing slot")
    assert _missing({"board:a": 1.0}, [{"timing": 1.0}]) == "holds board a"
    assert _missing(timing, []) == "is connected"
    # each resource exists, but on different nodes
    assert _missing({"timing": 1.0, "board:a": 1.0}, [{"timing": 1.0}, {"board:a": 1.0}]) == \
        "holds all of board:a, timing at once"


def test_two_nodes_holding_timing_slots_on_one_host_are_warned_about():
    from tinyharness.sweep.dask_engine import shared_hosts

    said: list[str] = []
    nodes = [{"name": "a", "host": "lab", "timing_slots": 1}, {"name": "b", "host": "lab", "timing_slots": 1},
             {"name": "c", "host": "lab", "timing_slots": 0}, {"name": "d", "host": "rig", "timing_slots": 1}]
    assert shared_hosts(nodes, said.append) == ["lab"]
    assert len(said) == 1 and "2 nodes on host lab" in said[0] and "--timing-slots 0" in said[0]
    assert shared_hosts(nodes[2:], said.append) == [] and len(said) == 1
