"""``tinyharness results``: list, query, show, export and index over a database of real runs made by
``tinyharness run`` (indexed as they finish), with one-line errors and their exit codes."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from fakes import FakeSUT, registered
from tinyharness.cli import main
from tinyharness.cli.exits import handled
from tinyharness.cli.results import results
from tinyharness.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_USAGE

COLUMNS = ("run_id,path,benchmark,sut,scenario,mode,started,finished,state,valid,error,reasons,"
           "accuracy,accuracy_metric,p50_us,p90_us,throughput_ips,latency_us,sut_options,model,"
           "model_sha256,runtime,runtime_version,device,host,harness_version,sweep_id,cell_id,node,"
           "indexed_at").split(",")


def tinyharness_run(output: Path, db: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(["run", "--output", str(output), "--quiet", "--db", str(db), *args])
    return done.value.code


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    """(the database, the runs folder): a null run, an offline fake run with a SUT option and a
    failed fake run, each indexed by `tinyharness run --db` as it finished."""
    root = tmp_path_factory.mktemp("results_cmd")
    db, runs = root / "results.db", root / "runs"
    short = ("--sut", "null", "--min-duration", "0.1")
    assert tinyharness_run(runs, db, *short) == EXIT_INVALID
    with registered(FakeSUT):
        assert tinyharness_run(runs, db, "--sut", "fake", "--min-duration", "0.1", "--scenario",
                               "offline", "--mode", "performance", "--sut-option",
                               "infer_ns=1000") == EXIT_INVALID
        assert tinyharness_run(runs, db, "--sut", "fake", "--mode", "accuracy",
                               "--sut-option", "fail_after=3") == EXIT_FAILED
    return db, runs


def results_cmd(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``tinyharness results ARGV`` as main() runs a command."""
    code = handled(lambda: results.main(args=list(argv), prog_name="tinyharness results",
                                        standalone_mode=False))
    out, err = capsys.readouterr()
    return code, out, err


def table(out: str) -> list[dict[str, str]]:
    """The plain (tab-separated) table a command prints off a terminal, as dicts."""
    header, *lines = out.splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]


def test_runs_are_indexed_as_they_finish_and_listed_newest_first(made, capsys):
    db, runs = made
    code, out, _ = results_cmd(capsys, "list", "--db", str(db))
    assert code == EXIT_OK
    rows = table(out)
    assert [r["run"] for r in rows] == sorted((p.name for p in runs.iterdir()), reverse=True)
    by_kind = {r["run"].split("_", 2)[2]: r for r in rows}  # fake_offline, null_single-stream ...
    assert {kind: r["result"] for kind, r in by_kind.items()} == {
        "null_single-stream": "INVALID", "fake_offline": "INVALID", "fake_single-stream": "failed"}
    assert by_kind["fake_offline"]["options"] == "infer_ns=1000"
    assert by_kind["fake_offline"]["throughput/s"] != "-"
    assert by_kind["null_single-stream"]["p50 us"] != "-"


def test_list_filters(made, capsys):
    db = str(made[0])
    failed = table(results_cmd(capsys, "list", "--db", db, "--state", "failed")[1])
    assert [r["result"] for r in failed] == ["failed"]
    offline = table(results_cmd(capsys, "list", "--db", db, "--scenario", "offline", "--sut", "fake")[1])
    assert len(offline) == 1 and "_offline" in offline[0]["run"]
    assert results_cmd(capsys, "list", "--db", db, "--scenario", "offline", "--sut", "null")[1] == ""
    assert len(table(results_cmd(capsys, "list", "--db", db, "--invalid")[1])) == 2
    code, out, err = results_cmd(capsys, "list", "--db", db, "--valid")
    assert (code, out, err.strip()) == (EXIT_OK, "", "no indexed runs match")
    code, out, _ = results_cmd(capsys, "list", "--db", db, "--since", "2999-01-01")
    assert (code, out) == (EXIT_OK, "")


def test_list_limit_says_how_many_it_left_out(made, capsys):
    code, out, err = results_cmd(capsys, "list", "--db", str(made[0]), "--limit", "1")
    assert code == EXIT_OK and len(table(out)) == 1
    assert "the newest 1 of 3 runs" in err


def test_list_json(made, capsys):
    rows = json.loads(results_cmd(capsys, "list", "--db", str(made[0]), "--json")[1])
    by_sut = {(r["sut"], r["scenario"]): r for r in rows}
    assert by_sut["fake", "single-stream"]["valid"] is None  # failed: no verdict
    assert by_sut["null", "single-stream"]["valid"] is False
    assert by_sut["fake", "offline"]["sut_options"] == {"infer_ns": "1000"}


def test_query_expression(made, capsys):
    db = str(made[0])
    code, out, _ = results_cmd(capsys, "query", "--db", db, "sut=null,fake", "state=done", "valid=false")
    assert code == EXIT_OK and len(table(out)) == 2
    code, out, _ = results_cmd(capsys, "query", "--db", db, "sut=fake limit=5 mode=accuracy")
    assert [r["result"] for r in table(out)] == ["failed"]


@pytest.mark.parametrize("expression, message", [
    ("sut", "is not key=value"),
    ("colour=red", "no filter 'colour'"),
    ("sut=a sut=b", "names 'sut' twice"),
    ("state=faild", "did you mean 'failed'"),
    ("since='tomorrow", "quote a value"),
])
def test_a_bad_query_is_one_line_and_exit_2(made, capsys, expression, message):
    code, out, err = results_cmd(capsys, "query", "--db", str(made[0]), expression)
    assert code == EXIT_USAGE and out == ""
    assert message in err and err.count("\n") == 1


def test_show_by_the_start_of_an_id_or_by_path(made, capsys):
    db, runs = made
    failed = next(p for p in runs.iterdir() if p.name.endswith("_fake_single-stream"))
    code, out, _ = results_cmd(capsys, "show", "--db", str(db), failed.name[:22])
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{failed.name}: failed"
    fields = dict(line.split("\t", 1) for line in out.splitlines()[2:])
    status = json.loads((failed / "status.json").read_text())
    assert fields["error"] == status["error"] and fields["path"] == str(failed)
    shown = json.loads(results_cmd(capsys, "show", "--db", str(db), "--json", str(failed))[1])
    assert shown["run_id"] == failed.name and shown["state"] == "failed"


def test_show_of_an_unknown_or_ambiguous_id_is_one_line(made, capsys):
    code, _, err = results_cmd(capsys, "show", "--db", str(made[0]), "no-such-run")
    assert code == EXIT_USAGE and "no indexed run 'no-such-run'" in err
    code, _, err = results_cmd(capsys, "show", "--db", str(made[0]), "2")
    assert code == EXIT_USAGE and "is the start of 3 run ids" in err


def test_export_csv_has_the_documented_columns(made, capsys):
    db, runs = made
    code, out, _ = results_cmd(capsys, "export", "--db", str(db), "--csv")
    assert code == EXIT_OK
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == COLUMNS
    rows = list(reader)
    assert sorted(r["run_id"] for r in rows) == sorted(p.name for p in runs.iterdir())
    single = next(r for r in rows if r["scenario"] == "single-stream" and r["sut"] == "null")
    document = json.loads((Path(single["path"]) / "summary.json").read_text())
    assert float(single["p50_us"]) == document["latency_us"]["p50"]
    assert single["valid"] == "0" and single["state"] == "done"


def test_export_json_to_a_file_with_filters(made, capsys, tmp_path):
    target = tmp_path / "out.json"
    code, out, _ = results_cmd(capsys, "export", "--db", str(made[0]), "--json", "--sut", "fake",
                               "--state", "failed", "--output", str(target))
    assert (code, out) == (EXIT_OK, "")
    (row,) = json.loads(target.read_text())
    assert list(row) == COLUMNS and row["state"] == "failed" and row["valid"] is None


def test_export_needs_a_format(made, capsys):
    code, _, err = results_cmd(capsys, "export", "--db", str(made[0]))
    assert code == EXIT_USAGE and "give --csv or --json" in err


def test_index_rebuilds_from_run_directories_and_skips_a_damaged_one(made, capsys, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(made[1], runs)
    damaged = next(p for p in runs.iterdir() if p.name.endswith("_offline"))
    (damaged / "summary.json").write_text('{"valid": tru')
    db = tmp_path / "rebuilt.db"
    code, out, err = results_cmd(capsys, "index", "--db", str(db), str(runs))
    assert code == EXIT_OK and out == f"indexed 2 run directories in {db}\n"
    (warning,) = err.splitlines()
    assert warning.startswith("warning: skipped ") and str(damaged / "summary.json") in warning
    assert "Traceback" not in err
    listed = table(results_cmd(capsys, "list", "--db", str(db))[1])
    assert sorted(r["run"] for r in listed) == sorted(p.name for p in runs.iterdir() if p != damaged)


def test_index_of_a_folder_without_runs_is_exit_2(capsys, tmp_path):
    code, _, err = results_cmd(capsys, "index", "--db", str(tmp_path / "x.db"), str(tmp_path))
    assert code == EXIT_USAGE and "no run directories indexed" in err


def test_a_missing_db_is_an_error_when_named_and_empty_by_default(capsys, tmp_path, monkeypatch):
    code, _, err = results_cmd(capsys, "list", "--db", str(tmp_path / "typo.db"))
    assert code == EXIT_USAGE and "no results database at" in err
    assert not (tmp_path / "typo.db").exists()
    monkeypatch.setenv("TINYHARNESS_DB", str(tmp_path / "default" / "results.db"))
    code, out, err = results_cmd(capsys, "list")
    assert (code, out) == (EXIT_OK, "") and "no runs indexed yet" in err
    code, out, _ = results_cmd(capsys, "export", "--csv")
    assert (code, out) == (EXIT_OK, ",".join(COLUMNS) + "\n")


def test_a_file_that_is_no_database_is_one_line(capsys, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("hello " * 200)
    code, _, err = results_cmd(capsys, "list", "--db", str(junk))
    assert code == EXIT_USAGE and "not a results database" in err and err.count("\n") == 1


def test_export_help_lists_the_columns_it_writes():
    assert ", ".join(COLUMNS) in " ".join(results.commands["export"].help.split())


def test_prune_drops_the_rows_of_run_directories_that_are_gone(made, tmp_path, capsys):
    """Deleted or moved run directories: --dry-run lists their rows, prune drops them (only under
    the PATHs given), and a moved run comes back with 'results index'."""
    runs = tmp_path / "runs"
    shutil.copytree(made[1], runs)
    db = str(tmp_path / "own.db")
    assert results_cmd(capsys, "index", str(runs), "--db", db)[0] == EXIT_OK
    first, second, third = sorted(runs.iterdir())
    shutil.rmtree(first)
    moved = tmp_path / "elsewhere" / second.name
    moved.parent.mkdir()
    second.rename(moved)
    code, out, _ = results_cmd(capsys, "prune", "--dry-run", str(runs), "--db", db)
    assert code == EXIT_OK
    assert out.splitlines() == [f"{first.name}\t{first}", f"{second.name}\t{second}",
                                f"would drop 2 runs whose directory is gone, from {db}"]
    assert len(table(results_cmd(capsys, "list", "--db", db)[1])) == 3  # nothing dropped yet
    assert results_cmd(capsys, "prune", str(tmp_path / "elsewhere"), "--db", db)[1].endswith(
        "dropped 0 runs whose directory is gone, from " + db + "\n")  # not under that PATH
    code, out, _ = results_cmd(capsys, "prune", "--db", db)
    assert code == EXIT_OK and out.splitlines()[-1] == f"dropped 2 runs whose directory is gone, from {db}"
    assert [r["run"] for r in table(results_cmd(capsys, "list", "--db", db)[1])] == [third.name]
    assert results_cmd(capsys, "index", str(moved), "--db", db)[0] == EXIT_OK
    assert sorted(r["run"] for r in table(results_cmd(capsys, "list", "--db", db)[1])) == \
        sorted([second.name, third.name])


def test_prune_of_a_database_that_does_not_exist_is_one_line(tmp_path, capsys):
    code, _, err = results_cmd(capsys, "prune", "--db", str(tmp_path / "absent.db"))
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1 and "absent.db" in err
