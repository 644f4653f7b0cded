"""The driver's bookkeeping: results that travelled from another node, what a rerun skips (with and
without --retry-failed, with the database or only the sweep folder), cells that cannot be placed,
and the archives a remote cell's run directory travels in."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sweep_helpers import supervised_env
from tinyharness.db import ResultsDB
from tinyharness.sweep.cell_run import CellStatus, pack_run_dir, run_cell, unpack_run_dir
from tinyharness.sweep.driver import Sweep
from tinyharness.sweep.local import LocalExecutor
from tinyharness.sweep.spec import Cell, SweepSpec

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sweeps run supervised cells on Linux")
QUICK = Cell("digits01", "null", mode="accuracy")


@pytest.fixture(autouse=True)
def own_database(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "results.db"
    monkeypatch.setenv("TINYHARNESS_DB", str(path))
    return path


class ElsewhereExecutor:
    """Runs each cell in a folder of its own (another node's disk), packs its run directory, deletes
    the folder and hands the result back from another thread, as a remote node's result arrives."""

    def __init__(self, node_disk: Path) -> None:
        self.node_disk = node_disk

    def run(self, cells, on_result, stop: threading.Event) -> None:
        for cell in cells:
            result = run_cell(cell, self.node_disk, pack=True, env=supervised_env())
            shutil.rmtree(self.node_disk)
            worker = threading.Thread(target=on_result, args=(replace(result, node="node-b"),))
            worker.start()
            worker.join()


@linux
def test_a_result_that_travelled_is_unpacked_under_output_and_indexed(tmp_path, own_database):
    output = tmp_path / "out"
    spec = SweepSpec("travel", (QUICK,))
    with ResultsDB(own_database) as db:
        outcome = Sweep(spec, output=output, db=db, executor=ElsewhereExecutor(tmp_path / "node-b")).run()
        (row,) = outcome.rows
        run_dir = Path(row.result.run_dir)
        assert run_dir.parent == output and (run_dir / "summary.json").is_file()
        assert row.result.archive is None and row.result.node == "node-b"
        indexed = db.run(run_dir.name)
        assert (indexed["sweep_id"], indexed["cell_id"], indexed["node"]) == (spec.id, QUICK.id, "node-b")
        assert db.cells(spec.id)[0]["status"] == "invalid"


@linux
def test_a_rerun_skips_finished_cells_and_retry_failed_reruns_the_failed(tmp_path, own_database):
    output = tmp_path / "out"
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    broken = Cell("digits01", "onnxruntime-cpu", mode="accuracy", model=str(tmp_path / "broken.onnx"))
    spec = SweepSpec("retry", (broken, QUICK))
    executor = LocalExecutor(output, {}, env=supervised_env(TINYHARNESS_DB=str(own_database)))

    def run(**kwargs):
        with ResultsDB(own_database) as db:
            return {r.cell.id: r for r in Sweep(spec, output=output, db=db, executor=executor, **kwargs).run().rows}

    first = run()
    assert first[broken.id].result.status is CellStatus.FAILED and first[broken.id].result.reason
    assert first[QUICK.id].result.status is CellStatus.INVALID
    again = run()
    assert all(r.result.status is CellStatus.SKIPPED for r in again.values())
    assert (again[broken.id].status, again[QUICK.id].status) == (CellStatus.FAILED, CellStatus.INVALID)
    assert again[QUICK.id].result.started == first[QUICK.id].result.started
    assert again[QUICK.id].result.summary["accuracy"]["value"] == pytest.approx(10.0)
    retried = run(retry_failed=True)
    assert retried[broken.id].result.status is CellStatus.FAILED
    assert retried[broken.id].result.started != first[broken.id].result.started  # it ran again
    assert retried[QUICK.id].result.status is CellStatus.SKIPPED
    # another database: the sweep folder still knows what finished
    with ResultsDB(tmp_path / "other.db") as db:
        rows = Sweep(spec, output=output, db=db, executor=executor).run().rows
    assert [r.result.status for r in rows] == [CellStatus.SKIPPED] * 2


def test_a_sweep_stopped_before_it_starts_runs_nothing(tmp_path, own_database):
    stop = threading.Event()
    stop.set()
    output = tmp_path / "out"
    with ResultsDB(own_database) as db:
        outcome = Sweep(SweepSpec("stopped", (QUICK,)), output=output, db=db,
                        executor=LocalExecutor(output, {})).run(stop)
        assert db.cells(outcome.spec.id) == []
    assert outcome.interrupted and outcome.rows[0].result is None
    saved = json.loads((outcome.folder / "sweep.json").read_text())
    assert saved["cells"] == {QUICK.id: {"status": "pending"}} and saved["spec"]["id"] == outcome.spec.id


def test_a_board_without_a_port_here_is_a_failed_row_not_a_run(tmp_path):
    cell = Cell("kws01", "serial", board="board-a")
    results = []
    LocalExecutor(tmp_path, {}).run([cell], results.append, threading.Event())
    (result,) = results
    assert result.status is CellStatus.FAILED and "board 'board-a' has no port" in result.reason
    assert result.run_dir is None and not any(tmp_path.iterdir())


def test_the_scheduler_runs_a_timed_cell_alone_and_in_order(fake_suts):
    executor = LocalExecutor(Path("."), {}, parallel=2)
    untimed = [Cell("digits01", "null", mode="accuracy", run_args=("--seed", str(i))) for i in range(3)]
    timed = Cell("digits01", "null")
    device = Cell("digits01", "fake-device", board="b")
    assert executor._next([untimed[0], timed], {}) is untimed[0]
    assert executor._next([timed, untimed[1]], {untimed[0].id: (untimed[0], False)}) is None
    assert executor._next([timed], {}) is timed
    assert executor._next([untimed[1]], {timed.id: (timed, True)}) is None
    running = {untimed[0].id: (untimed[0], False), untimed[1].id: (untimed[1], False)}
    assert executor._next([untimed[2]], running) is None  # --parallel 2 is full
    busy = {device.id: (device, False)}
    other = Cell("digits01", "fake-device", board="b", run_args=("--seed", "1"))
    assert executor._next([other, untimed[0]], busy) is untimed[0]  # the board is taken, not the host


def test_unpack_refuses_what_is_not_one_run_directory(tmp_path):
    run_dir = tmp_path / "20260101-000000-abcdef_digits01_null_offline"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text("{}")
    (run_dir / "status.json").write_text('{"state": "done"}')
    archive = pack_run_dir(run_dir)
    home = tmp_path / "home"
    home.mkdir()
    unpacked = unpack_run_dir(archive, home)
    assert unpacked == home / run_dir.name and (unpacked / "status.json").read_text() == '{"state": "done"}'
    assert unpack_run_dir(archive, home) == unpacked  # a result that came twice

    def tar(*names: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as out:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 2
                out.addfile(info, io.BytesIO(b"{}"))
        return buffer.getvalue()

    for bad in (tar("a/summary.json", "b/summary.json"), tar("run/../../escape"), tar("../run/x.json"),
                tar("run/sub/x.json")):
        with pytest.raises(ValueError):
            unpack_run_dir(bad, home)
    assert sorted(p.name for p in home.iterdir()) == [run_dir.name]
    assert not (tmp_path / "escape").exists()
