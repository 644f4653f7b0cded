"""``report`` and ``compare`` read runs from the results database: sweep:ID and query:EXPR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyharness.cli import main
from tinyharness.cli.run_sources import expand
from tinyharness.db import ResultsDB
from tinyharness.errors import UsageError


def run_null(output: Path, db: Path, *args: str) -> Path:
    with pytest.raises(SystemExit):
        main(["run", "--sut", "null", "--min-duration", "0.1", "--quiet", "--output", str(output),
              "--db", str(db), *args])
    (run_dir,) = [p for p in output.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    db = root / "results.db"
    single = run_null(root / "a", db)
    offline = run_null(root / "b", db, "--scenario", "offline")
    with ResultsDB(db) as store:  # a sweep holding the offline run
        store.record_sweep("abcd1234ef56", "demo", {"cells": [{"id": "c1"}]})
        store.record_cell("abcd1234ef56", {"id": "c1", "benchmark": "digits01", "sut": "null"},
                          {"cell_id": "c1", "status": "invalid", "reason": "", "run_dir": str(offline),
                           "node": "here"})
        store.index_run(offline, sweep_id="abcd1234ef56", cell_id="c1", node="here")
    return db, single, offline


def test_every_run_is_indexed_as_it_finishes(indexed):
    db, single, offline = indexed
    with ResultsDB(db) as store:
        ids = {r["run_id"] for r in store.runs()}
    assert ids == {single.name, offline.name}


def test_query_and_sweep_tokens_expand_to_the_run_directories(indexed):
    db, single, offline = indexed
    assert expand(["query:scenario=offline"], db) == [offline]
    assert expand(["sweep:abcd"], db) == [offline]
    assert set(expand(["query:sut=null", single], db)) == {single, offline}


@pytest.mark.parametrize("token, words", [("sweep:ab", "matches no sweep"),
                                          ("sweep:ffff", "matches no sweep"),
                                          ("query:sut=tflite-cpu", "selects no runs"),
                                          ("query:", "is empty")])
def test_tokens_that_select_nothing_are_one_line_errors(indexed, token, words):
    with pytest.raises(UsageError, match=words):
        expand([token], indexed[0])


def test_compare_reads_both_sides_from_the_database(indexed, capsys):
    db, _, _ = indexed
    with pytest.raises(SystemExit) as done:
        main(["compare", "query:scenario=single-stream", "query:scenario=single-stream", "--json",
              "--db", str(db)])
    assert done.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["scenario"] for p in result["pairs"]] == ["single-stream"]


def test_a_sweep_reports_with_its_table_and_legend(tmp_path):
    pytest.importorskip("matplotlib")
    db, out = tmp_path / "results.db", tmp_path / "runs"
    with pytest.raises(SystemExit) as done:
        main(["sweep", "--sut", "null", "--scenario", "single-stream,offline", "--min-duration",
              "0.1", "--name", "tiny", "--output", str(out), "--db", str(db)])
    assert done.value.code == 0
    with ResultsDB(db) as store:
        (sweep,) = store.sweeps()
    page = tmp_path / "report.html"
    with pytest.raises(SystemExit) as done:
        main(["report", f"sweep:{sweep['sweep_id'][:6]}", "--db", str(db), "--output", str(page)])
    assert done.value.code in (0, None)
    text = page.read_text()
    section = text.split(f"Sweep tiny ({sweep['sweep_id']})", 1)[1].split("</p>", 1)[0]
    table, legend = section.split("</table>")
    assert table.count("<td>null</td>") == 2 and "offline" in table and "single-stream" in table
    assert "crashed" in legend and "timeout" in legend
