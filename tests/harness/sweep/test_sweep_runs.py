"""Sweeps that run: real ``tinyharness run`` children on the embedded digits01, a SUT that segfaults
or hangs, a Ctrl-C and the resume after it, the exit codes of the gates, and timed cells that never
overlap while --parallel lets untimed ones.

Every child's results database is the test's own (TINYHARNESS_DB, --db), never the user's."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from fakes import BadSUT, bad_launcher, registered
from sweep_helpers import run_sweep, supervised_env, sweep_command
from tinyharness.db import ResultsDB
from tinyharness.sweep.cell_run import CellStatus
from tinyharness.sweep.driver import Sweep
from tinyharness.sweep.local import LocalExecutor
from tinyharness.sweep.spec import Cell, SweepSpec, load_spec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sweeps run supervised cells on Linux")


@pytest.fixture(autouse=True)
def own_database(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "results.db"
    monkeypatch.setenv("TINYHARNESS_DB", str(path))
    return path


def state(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "status.json").read_text())


def interval(row: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(row["started"]), datetime.fromisoformat(row["finished"])


def overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def run_dirs(output: Path) -> set[str]:
    return {p.name for p in output.iterdir() if p.is_dir() and p.name not in ("sweeps", ".cells")}


@pytest.mark.slow
def test_a_sweep_of_two_suts_and_two_scenarios_runs_and_records_every_cell(tmp_path, own_database):
    output = tmp_path / "out"
    done = run_sweep(tmp_path, "--benchmark", "digits01", "--sut", "null,onnxruntime-cpu",
                     "--scenario", "single-stream", "--scenario", "offline", "--min-duration", "1",
                     "--output", str(output), "--db", str(own_database), "--csv", str(tmp_path / "t.csv"),
                     "--json")
    assert done.returncode == 0, done.stderr  # INVALID (shortened) cells are no failure
    report = json.loads(done.stdout)
    rows = report["rows"]
    assert [(r["sut"], r["scenario"], r["status"]) for r in rows] == [
        ("null", "single-stream", "invalid"), ("null", "offline", "invalid"),
        ("onnxruntime-cpu", "single-stream", "invalid"), ("onnxruntime-cpu", "offline", "invalid")]
    for row in rows:
        assert state(row["run_dir"])["state"] == "done"
        assert Path(row["run_dir"]).parent == output  # where `tinyharness run` puts them
        assert "min_duration overridden" in row["reason"]
    single, offline = rows[2], rows[3]
    assert 0 < single["p50_us"] <= single["p90_us"] and single["throughput_ips"] > 0
    assert offline["p50_us"] is None and offline["throughput_ips"] > 0
    assert single["accuracy"] > 90 and rows[0]["accuracy"] == pytest.approx(10.0)
    timed = [interval(r) for r in rows]  # every cell is timed: one after the other
    assert not any(overlap(a, b) for i, a in enumerate(timed) for b in timed[i + 1:])
    assert run_dirs(output) == {Path(r["run_dir"]).name for r in rows}
    assert "[4/4]" in done.stderr
    with ResultsDB(own_database) as db:
        cells = db.cells(report["sweep_id"])
        assert [c["status"] for c in cells] == ["invalid"] * 4
        assert {c["run_id"] for c in cells} == {Path(r["run_dir"]).name for r in rows}
        assert len(db.runs(sweep=report["sweep_id"])) == 4
    saved = json.loads((output / "sweeps" / report["sweep_id"] / "sweep.json").read_text())
    assert [c["status"] for c in saved["cells"].values()] == ["invalid"] * 4
    table = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["cell_id"] for r in table] == [r["cell_id"] for r in rows]


@pytest.mark.slow
def test_a_segfault_and_a_hang_are_rows_and_the_rest_of_the_sweep_completes(tmp_path, own_database):
    output = tmp_path / "out"
    segfault = Cell("digits01", "bad", mode="accuracy", sut_options=(("misbehave", "segfault"),))
    hang = Cell("digits01", "bad", mode="accuracy", sut_options=(("misbehave", "hang"),), timeout_s=4)
    fine = Cell("digits01", "null", mode="accuracy")
    spec = SweepSpec("misbehaving", (segfault, hang, fine))
    env = supervised_env(TINYHARNESS_DB=str(own_database))
    with registered(BadSUT), ResultsDB(own_database) as db:
        outcome = Sweep(spec, output=output, db=db, executor=LocalExecutor(
            output, {}, launcher=bad_launcher(tmp_path), env=env)).run()
        recorded = {c["cell_id"]: c["status"] for c in db.cells(spec.id)}
    crashed, timed_out, finished = (r.result for r in outcome.rows)
    assert not outcome.interrupted and outcome.error is None
    assert crashed.status is CellStatus.CRASHED and crashed.reason.startswith("SIGSEGV")
    assert state(crashed.run_dir)["state"] == "failed" and (Path(crashed.run_dir) / "crash.txt").is_file()
    assert timed_out.status is CellStatus.TIMEOUT and "timeout of 4 s" in timed_out.reason
    assert state(timed_out.run_dir) == {**state(timed_out.run_dir), "state": "failed",
                                        "error": "no result within the cell's timeout of 4 s"}
    assert finished.status is CellStatus.INVALID and state(finished.run_dir)["state"] == "done"
    assert recorded == {segfault.id: "crashed", hang.id: "timeout", fine.id: "invalid"}
    assert not (output / ".cells").exists()


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_a_rerun_runs_only_what_did_not_finish(tmp_path, own_database):
    output = tmp_path / "out"
    spec_file = tmp_path / "resume.toml"
    spec_file.write_text('[matrix]\nsut = "null"\nscenario = "offline"\nmode = ["accuracy", "performance"]\n'
                         '[[include]]\nscenario = "single-stream"\nmode = "accuracy"\n[run]\nmin_duration = 3\n')
    first_cell, long_cell, last_cell = load_spec(spec_file).cells
    args = (str(spec_file), "--output", str(output), "--db", str(own_database), "--json")
    proc = subprocess.Popen(sweep_command(tmp_path, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=supervised_env())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((output / ".cells").glob(f"{long_cell.id}-*/*/status.json")):
        time.sleep(0.1)
    time.sleep(0.5)  # into the long cell's run
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    first = {r["cell_id"]: r for r in json.loads(out)["rows"]}
    assert [first[c.id]["status"] for c in (first_cell, long_cell, last_cell)] == ["invalid", "interrupted", "not run"]
    assert state(first[long_cell.id]["run_dir"])["state"] == "interrupted"
    before = run_dirs(output)
    assert before == {first[first_cell.id]["run_dir"].rpartition("/")[2],
                      first[long_cell.id]["run_dir"].rpartition("/")[2]}

    done = run_sweep(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    again = {r["cell_id"]: r for r in json.loads(done.stdout)["rows"]}
    assert again[first_cell.id]["resumed"] and again[first_cell.id]["run_dir"] == first[first_cell.id]["run_dir"]
    assert again[first_cell.id]["status"] == again[last_cell.id]["status"] == "invalid"
    assert again[long_cell.id]["status"] in ("ok", "invalid")  # 3 s meets digits01's minimum
    assert not again[long_cell.id]["resumed"] and not again[last_cell.id]["resumed"]
    new = run_dirs(output) - before
    assert new == {Path(again[c.id]["run_dir"]).name for c in (long_cell, last_cell)}  # nothing else re-ran
    with ResultsDB(own_database) as db:
        assert set(db.finished_cells(load_spec(spec_file).id)) == {c.id for c in (first_cell, long_cell, last_cell)}


def test_gates_and_failed_cells_set_the_exit_code(tmp_path, own_database):
    output = tmp_path / "out"
    common = ("--sut", "null", "--mode", "accuracy", "--output", str(output), "--db", str(own_database))
    passed = run_sweep(tmp_path, *common, "--fail-under", "accuracy=5")
    assert passed.returncode == 0, passed.stderr
    assert "✔ ok (VALID)" in passed.stdout  # the legend
    # the same sweep again: the cell is skipped, its earlier figures are gated
    missed = run_sweep(tmp_path, *common, "--fail-under", "accuracy=50")
    assert missed.returncode == 1
    assert "gate missed: accuracy >= 50: null digits01 single-stream has 10" in missed.stderr
    assert run_sweep(tmp_path, *common, "--fail-invalid").returncode == 1
    assert run_sweep(tmp_path, *common, "--fail-over", "p50_us=1").returncode == 1  # nothing measures it
    bad_model = tmp_path / "broken.onnx"
    bad_model.write_bytes(b"not a model")
    failed = run_sweep(tmp_path, "--sut", "onnxruntime-cpu", "--model", str(bad_model), "--mode", "accuracy",
                       "--output", str(output), "--db", str(own_database))
    assert failed.returncode == 3
    assert "✖ failed" in failed.stdout
    usage = run_sweep(tmp_path, "--sut", "nul", "--db", str(own_database))
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert "did you mean 'null'" in usage.stderr


@pytest.mark.slow
def test_timed_cells_never_overlap_while_untimed_ones_run_in_parallel(tmp_path, own_database):
    output = tmp_path / "out"
    untimed = [Cell("digits01", "null", scenario, "accuracy", run_args=("--seed", str(seed)))
               for seed in (1, 2) for scenario in ("single-stream", "offline")]
    timed = [Cell("digits01", "null", "offline", "performance", run_args=("--min-duration", "0.5", "--seed", str(s)))
             for s in (1, 2)]
    cells = (untimed[0], untimed[1], timed[0], untimed[2], untimed[3], timed[1])
    assert [c.timed for c in cells] == [False, False, True, False, False, True]
    with ResultsDB(own_database) as db:
        outcome = Sweep(SweepSpec("overlap", cells), output=output, db=db, executor=LocalExecutor(
            output, {}, parallel=3, env=supervised_env(TINYHARNESS_DB=str(own_database)))).run()
    spans = {r.cell.id: interval(r.result.to_dict()) for r in outcome.rows}
    assert all(r.result.status is CellStatus.INVALID for r in outcome.rows)
    for cell in timed:
        others = [spans[c.id] for c in cells if c is not cell]
        assert not any(overlap(spans[cell.id], other) for other in others)
    assert overlap(spans[untimed[0].id], spans[untimed[1].id])
    assert overlap(spans[untimed[2].id], spans[untimed[3].id])
    # the order holds: nothing started past a timed cell waiting for the host
    assert spans[timed[0].id][0] >= max(spans[untimed[0].id][1], spans[untimed[1].id][1])
    assert spans[untimed[2].id][0] >= spans[timed[0].id][1]
