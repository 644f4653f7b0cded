"""ResultsDB: indexing (idempotent), rebuilding from folders, filters, sweeps and their cells, and
the one-line refusals of a path that is no results database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from db_helpers import SCHEMA1, copy_run, summary_of
from tinyharness.db import ResultsDB, default_db_path
from tinyharness.db.store import MAX_DEPTH
from tinyharness.errors import UsageError

SWEEP = "a1b2c3d4e5f6"


@pytest.fixture
def db(tmp_path):
    with ResultsDB(tmp_path / "deep" / "er" / "results.db") as store:
        yield store


def count_rows(db: ResultsDB, table: str) -> int:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- indexing -------------------------------------------------------------------------------------

def test_indexing_twice_keeps_one_row_and_updates_it(db, real_runs, tmp_path):
    copy = copy_run(real_runs["single"], tmp_path, "20261201-101010-abcdef_digits01_null_single-stream")
    assert db.index_run(copy) == copy.name
    first = db.run(copy.name)
    (copy / "summary.json").write_text((copy / "summary.json").read_text().replace(
        '"cpu_model": "', '"cpu_model": "renamed '))
    assert db.index_run(copy) == copy.name
    assert count_rows(db, "runs") == 1
    second = db.run(copy.name)
    assert second["host"] == "renamed " + first["host"]
    assert {k: v for k, v in second.items() if k not in ("host", "indexed_at")} == \
        {k: v for k, v in first.items() if k not in ("host", "indexed_at")}


def test_a_reindex_keeps_the_sweep_cell_and_node_it_does_not_name(db, real_runs):
    run_id = db.index_run(real_runs["single"], sweep_id=SWEEP, cell_id="c1", node="host-a")
    db.index_run(real_runs["single"])
    row = db.run(run_id)
    assert (row["sweep_id"], row["cell_id"], row["node"]) == (SWEEP, "c1", "host-a")


def test_failed_and_interrupted_runs_are_indexed_with_their_state(db, real_runs):
    for name in ("failed", "interrupted"):
        db.index_run(real_runs[name])
    assert sorted(r["state"] for r in db.runs()) == ["failed", "interrupted"]
    assert [r["run_id"] for r in db.runs(state="failed")] == [real_runs["failed"].name]


def test_rebuild_finds_runs_recursively_and_notes_what_it_skips(db, real_runs, tmp_path):
    tree = tmp_path / "tree"
    nested = copy_run(real_runs["single"], tree / "a" / "b", "r1")
    sibling = copy_run(real_runs["offline"], tree / "a", "r2")
    damaged = copy_run(real_runs["single"], tree / "c", "r3")
    (damaged / "summary.json").write_text("{")
    copy_run(real_runs["single"], tree / ".hidden", "r4")  # hidden folders are not looked into
    too_deep = tree.joinpath(*[f"d{i}" for i in range(MAX_DEPTH)])
    copy_run(real_runs["single"], too_deep, "r5")
    (tree / "notes").mkdir()
    (tree / "notes" / "readme.txt").write_text("not a run")
    notes: list[str] = []
    assert db.rebuild([tree, tmp_path / "empty_file"], warn=notes.append) == 2
    assert {r["run_id"] for r in db.runs()} == {nested.name, sibling.name}
    assert len(notes) == 2 and all("\n" not in n for n in notes)
    assert str(damaged / "summary.json") in notes[0]
    assert "empty_file" in notes[1] and "not a folder" in notes[1]


def test_rebuild_of_a_folder_without_runs_says_so(db, tmp_path):
    notes: list[str] = []
    assert db.rebuild([tmp_path], warn=notes.append) == 0
    assert notes and "no run directories" in notes[-1]


def test_rebuild_reads_the_schema1_fixtures(db):
    assert db.rebuild([SCHEMA1], warn=pytest.fail) == 3
    assert [r["sut"] for r in db.runs(valid=True)] == ["serial"]


# -- filters --------------------------------------------------------------------------------------

@pytest.fixture
def dated(db, real_runs, tmp_path):
    """Four runs with chosen start times (two given with offsets), sut, scenario and verdict."""
    single, offline = real_runs["single"], real_runs["offline"]
    made = {
        "early": copy_run(single, tmp_path, "early", started="2026-11-30T23:30:00-01:00"),  # 12-01 00:30Z
        "late": copy_run(single, tmp_path, "late", started="2026-12-01T23:59:59+00:00"),
        "next": copy_run(offline, tmp_path, "next", started="2026-12-02T00:00:00+00:00"),
        "before": copy_run(single, tmp_path, "before", started="2026-12-01T00:10:00+01:00",  # 11-30 23:10Z
                           sut="other", valid=True, invalid_reasons=[]),
    }
    for run_dir in made.values():
        db.index_run(run_dir)
    return made


def names(rows) -> list[str]:
    return [r["run_id"] for r in rows]


def test_runs_are_newest_first(db, dated):
    assert names(db.runs()) == ["next", "late", "early", "before"]
    assert names(db.runs(limit=2)) == ["next", "late"]


def test_since_and_until_take_a_date_as_a_whole_utc_day(db, dated):
    assert names(db.runs(since="2026-12-01", until="2026-12-01")) == ["late", "early"]
    assert names(db.runs(until="2026-11-30")) == ["before"]
    assert names(db.runs(since="2026-12-01T23:59:59")) == ["next", "late"]
    assert names(db.runs(until="2026-12-01T00:30:00")) == ["early", "before"]  # a time: inclusive
    assert names(db.runs(since="2026-12-01T01:00+01:00", until="2026-12-01T00:30Z")) == ["early"]


def test_text_filters_and_validity(db, dated):
    assert names(db.runs(sut="other")) == ["before"]
    assert names(db.runs(sut=["other", "null"], scenario="offline")) == ["next"]
    assert names(db.runs(sut="null,other", valid=True)) == ["before"]
    assert names(db.runs(valid=False, benchmark="digits01")) == ["next", "late", "early"]
    assert db.runs(benchmark="kws01") == []


def test_the_sweep_filter_finds_runs_by_their_link_or_their_cell(db, dated, real_runs):
    db.index_run(real_runs["failed"], sweep_id=SWEEP, cell_id="c1")
    db.record_sweep(SWEEP, "s", {"cells": []})
    db.record_cell(SWEEP, {"id": "c2", "sut": "null"},
                   {"cell_id": "c2", "status": "ok", "run_dir": str(dated["late"])})
    assert sorted(names(db.runs(sweep=SWEEP))) == sorted([real_runs["failed"].name, "late"])


@pytest.mark.parametrize("filters, message", [
    ({"colour": "red"}, "no filter 'colour'"),
    ({"state": "finished"}, "state 'finished' is not one of"),
    ({"since": "last week"}, "not an ISO date"),
    ({"valid": "maybe"}, "not true or false"),
    ({"limit": 0}, "limit 0 is out of range"),
])
def test_a_bad_filter_is_one_line(db, filters, message):
    with pytest.raises(UsageError, match=message):
        db.runs(**filters)


# -- sweeps and cells -----------------------------------------------------------------------------

def cell(cell_id: str, sut: str = "null") -> dict:
    """A cell as ``{**Cell.to_dict(), "id": cell.id}`` gives it."""
    return {"benchmark": "digits01", "sut": sut, "scenario": "single-stream", "mode": "all",
            "model": None, "sut_options": {"threads": "1"}, "board": None, "run_args": [],
            "timeout_s": 60.0, "id": cell_id}


def result(cell_id: str, status: str, run_dir: Path | None = None, **more) -> dict:
    """A result as ``CellResult.to_dict()`` gives it."""
    return {"cell_id": cell_id, "status": status, "reason": more.pop("reason", ""),
            "returncode": 0 if status == "ok" else None, "run_dir": str(run_dir) if run_dir else None,
            "node": "host-a", "started": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:00:05+00:00", "wall_s": 5.0, "attempts": 1, **more}


@pytest.fixture
def sweep(db):
    spec = {"name": "grid", "cells": [cell("c0"), cell("c1"), cell("c2"), cell("c3")]}
    db.record_sweep(SWEEP, "grid", spec)
    return spec


def test_cells_come_back_in_spec_order_whatever_order_they_finish(db, sweep):
    for cell_id, status in (("c2", "ok"), ("c0", "failed"), ("c3", "timeout"), ("c1", "crashed")):
        db.record_cell(SWEEP, cell(cell_id), result(cell_id, status))
    rows = db.cells(SWEEP)
    assert [r["cell_id"] for r in rows] == ["c0", "c1", "c2", "c3"]
    assert [r["position"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["status"] == "crashed" and rows[1]["sut_options"] == {"threads": "1"}


def test_a_cell_recorded_again_is_one_row_and_skipped_never_overwrites(db, sweep):
    db.record_cell(SWEEP, cell("c0"), result("c0", "timeout", reason="no answer in 60 s"))
    db.record_cell(SWEEP, cell("c0"), result("c0", "ok"))  # the rerun finished it
    db.record_cell(SWEEP, cell("c0"), result("c0", "skipped", reason="finished earlier"))
    db.record_cell(SWEEP, cell("c1"), result("c1", "skipped"))  # nothing before it: kept
    assert count_rows(db, "cells") == 2
    assert [(r["cell_id"], r["status"]) for r in db.cells(SWEEP)] == [("c0", "ok"), ("c1", "skipped")]


def test_finished_cells_are_those_a_rerun_skips(db, sweep):
    statuses = {"c0": "ok", "c1": "invalid", "c2": "failed", "c3": "crashed", "c4": "timeout",
                "c5": "interrupted", "c6": "lost"}
    for cell_id, status in statuses.items():
        db.record_cell(SWEEP, cell(cell_id), result(cell_id, status))
    finished = db.finished_cells(SWEEP)
    assert sorted(finished) == ["c0", "c1", "c2", "c3"]
    assert finished["c1"]["status"] == "invalid" and finished["c1"]["node"] == "host-a"
    assert db.finished_cells("another") == {}


def test_cells_carry_their_run_row_or_their_results_summary(db, sweep, real_runs):
    single, offline = real_runs["single"], real_runs["offline"]
    db.index_run(single, sweep_id=SWEEP, cell_id="c0", node="host-a")
    db.record_cell(SWEEP, cell("c0"), result("c0", "invalid", single))
    db.record_cell(SWEEP, cell("c1"), result("c1", "invalid", Path("/elsewhere") / offline.name,
                                             summary=summary_of(offline)))  # not indexed here
    db.record_cell(SWEEP, cell("c2"), result("c2", "crashed", reason="SIGSEGV"))
    c0, c1, c2 = db.cells(SWEEP)
    assert c0["run_id"] == single.name and c0["p50_us"] == summary_of(single)["latency_us"]["p50"]
    assert c0["path"] == str(single) and c0["state"] == "done" and c0["valid"] == 0
    assert c1["run_id"] == offline.name and c1["path"] is None
    assert c1["throughput_ips"] == summary_of(offline)["throughput_ips"] and c1["valid"] == 0
    assert "summary" not in c1
    assert c2["run_id"] is None and c2["reason"] == "SIGSEGV" and c2["p50_us"] is None


def test_sweeps_are_listed_with_their_counts(db, sweep):
    db.record_cell(SWEEP, cell("c0"), result("c0", "ok"))
    db.record_cell(SWEEP, cell("c1"), result("c1", "ok"))
    db.record_cell(SWEEP, cell("c2"), result("c2", "failed"))
    db.record_sweep(SWEEP, "grid renamed", sweep)  # an upsert, never a second sweep
    (found,) = db.sweeps()
    assert (found["sweep_id"], found["name"], found["cells"]) == (SWEEP, "grid renamed", 4)
    assert found["counts"] == {"ok": 2, "failed": 1} and found["spec"] == sweep


def test_record_cell_refuses_a_result_of_another_cell(db, sweep):
    with pytest.raises(ValueError):
        db.record_cell(SWEEP, cell("c0"), result("c1", "ok"))


# -- opening --------------------------------------------------------------------------------------

def test_the_default_path_is_the_environments_then_the_user_data_dir(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setenv("TINYHARNESS_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.setenv("TINYHARNESS_DB", "none")
    with pytest.raises(UsageError, match="TINYHARNESS_DB=none"):
        default_db_path()
    monkeypatch.delenv("TINYHARNESS_DB")
    assert default_db_path() == Path(platformdirs.user_data_dir("tinyharness")) / "results.db"


def test_a_file_that_is_no_database_is_one_line(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite, " * 100)
    with pytest.raises(UsageError, match="not a results database") as error:
        ResultsDB(junk)
    assert "\n" not in str(error.value)


def test_another_programs_database_is_refused_untouched(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE runs (x)")
    with pytest.raises(UsageError, match="another program"):
        ResultsDB(other)
    with sqlite3.connect(other) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


def test_reading_commands_may_refuse_a_missing_database(tmp_path):
    with pytest.raises(UsageError, match="no results database at"):
        ResultsDB(tmp_path / "typo.db", create=False)
    assert not (tmp_path / "typo.db").exists()
