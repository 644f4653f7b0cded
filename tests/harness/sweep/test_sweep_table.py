"""The sweep's table: the figures taken from each cell's summary, the console form with its legend,
the CSV columns, the report's cells, and the --fail-under/--fail-over gates."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console

from tinyharness.errors import UsageError
from tinyharness.sweep.cell_run import CellResult, CellStatus
from tinyharness.sweep.driver import Row
from tinyharness.sweep.spec import Cell
from tinyharness.sweep.table import (CSV_COLUMNS, LEGEND, Gate, csv_text, from_record, from_row,
                                     gate_misses, metrics_of, print_sweep_table, rows_for_report)

SINGLE = {"valid": True, "latency_us": {"p50": 41.5, "p90": 57.25},
          "windows": {"median_throughput_ips": 24000.0, "latency_us": 41.666667},
          "throughput_ips": None, "accuracy": {"metric": "top1", "value": 97.5}}
OFFLINE = {"valid": False, "latency_us": None, "windows": None, "throughput_ips": 123456.5,
           "accuracy": None}


def result(cell: Cell, status: str, summary=None, reason: str = "") -> CellResult:
    return CellResult(cell.id, status, reason, 0, f"/runs/{cell.id}", "node-a",
                      "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:09+00:00", 9.0, summary=summary)


CELLS = [Cell("digits01", "onnxruntime-cpu", sut_options=(("threads", "2"),)),
         Cell("digits01", "onnxruntime-cpu", "offline", sut_options=(("threads", "2"),)),
         Cell("digits01", "bad", mode="accuracy"),
         Cell("digits01", "null"),
         Cell("digits01", "null", "offline")]


def rows():
    return [from_row("sweep1", Row(CELLS[0], result(CELLS[0], "ok", SINGLE))),
            from_row("sweep1", Row(CELLS[1], result(CELLS[1], "skipped", OFFLINE, "short"), CellStatus.INVALID)),
            from_row("sweep1", Row(CELLS[2], result(CELLS[2], "crashed", None, "SIGSEGV: killed"))),
            from_row("sweep1", Row(CELLS[3], result(CELLS[3], "timeout", None, "no result within 3 s"))),
            from_row("sweep1", Row(CELLS[4], None))]


def test_the_figures_are_the_indexed_ones():
    assert metrics_of(SINGLE) == {"valid": True, "p50_us": 41.5, "p90_us": 57.25, "throughput_ips": 24000.0,
                                  "latency_us": 41.666667, "accuracy": 97.5, "accuracy_metric": "top1"}
    assert metrics_of(OFFLINE)["throughput_ips"] == 123456.5 and metrics_of(OFFLINE)["p50_us"] is None
    assert metrics_of(None)["valid"] is None
    assert metrics_of({"latency_us": {"p50": float("nan"), "p90": True}})["p50_us"] is None


def test_rows_say_what_became_of_each_cell():
    ok, skipped, crashed, timeout, never = rows()
    assert (ok.status, ok.resumed, ok.sut_options, ok.p50_us) == ("ok", False, "threads=2", 41.5)
    assert (skipped.status, skipped.resumed, skipped.throughput_ips) == ("invalid", True, 123456.5)
    assert (crashed.status, crashed.reason) == ("crashed", "SIGSEGV: killed")
    assert timeout.status == "timeout"
    assert (never.status, never.node, never.reason) == ("not run", None, "")


def test_the_console_table_has_a_legend_and_a_row_per_cell():
    out = Console(file=io.StringIO(), force_terminal=False, width=200)
    print_sweep_table(rows(), title="sweep x", out=out)
    lines = out.file.getvalue().splitlines()
    assert lines[0] == "sweep x"
    assert lines[1].split("\t")[:6] == ["SUT", "benchmark", "scenario", "options", "status", "p50 µs"]
    assert lines[2].split("\t") == ["onnxruntime-cpu", "digits01", "single-stream", "threads=2", "✔ ok",
                                    "41.5", "57.2", "24,000", "97.5 top1", "node-a", "-"]
    assert lines[3].split("\t")[4] == "↷ ! invalid" and lines[3].split("\t")[7] == "123,456"
    assert lines[4].split("\t")[2:5] == ["single-stream (accuracy)", "-", "☠ crashed"]
    assert lines[4].split("\t")[-1] == "SIGSEGV: killed"
    assert lines[5].split("\t")[4] == "⏱ timeout" and lines[6].split("\t")[4] == "· not run"
    assert lines[-1] == LEGEND
    for symbol, word in (("✔", "ok"), ("✖", "failed"), ("☠", "crashed"), ("⏱", "timeout"),
                         ("!", "invalid"), ("↷", "earlier run"), ("?", "lost")):
        assert f"{symbol} " in LEGEND and word in LEGEND


def test_the_csv_has_the_documented_columns():
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows()))))
    assert tuple(parsed[0]) == CSV_COLUMNS
    first = parsed[0]
    assert (first["sweep_id"], first["cell_id"], first["sut"], first["sut_options"]) == \
        ("sweep1", CELLS[0].id, "onnxruntime-cpu", "threads=2")
    assert (first["status"], first["resumed"], first["valid"], first["p50_us"], first["accuracy"]) == \
        ("ok", "false", "true", "41.5", "97.5")
    assert parsed[1]["throughput_ips"] == "123456.5" and parsed[1]["resumed"] == "true"
    assert parsed[1]["p50_us"] == "" and parsed[4]["status"] == "not run"


def test_database_rows_make_the_same_report_cells():
    record = {"sweep_id": "s", "cell_id": "c1", "benchmark": "digits01", "sut": "onnxruntime-cpu",
              "scenario": "single-stream", "mode": "all", "sut_options": {"threads": "2"},
              "status": "ok", "reason": None, "node": "node-a", "valid": 1, "p50_us": 41.5,
              "p90_us": 57.25, "throughput_ips": 24000.0, "accuracy": 97.5, "accuracy_metric": "top1"}
    row = from_record(record)
    assert row.valid is True and row.sut_options == "threads=2"
    headers, cells = rows_for_report([record])
    assert headers[:5] == ["SUT", "benchmark", "scenario", "options", "status"]
    assert cells == [["onnxruntime-cpu", "digits01", "single-stream", "threads=2", "✔ ok", "41.5", "57.2",
                      "24,000", "97.5 top1", "node-a", "-"]]


def test_gates_are_floors_and_ceilings_on_finished_cells():
    table = rows()
    assert gate_misses(table, [Gate.parse("accuracy=90", True)]) == []
    assert gate_misses(table, [Gate.parse("accuracy=98", True)]) == [
        "accuracy >= 98: onnxruntime-cpu digits01 single-stream threads=2 has 97.5"]
    # the skipped cell finished INVALID in an earlier run: its figures count
    assert len(gate_misses(table, [Gate.parse("throughput_ips=200000", True)])) == 2
    assert gate_misses(table, [Gate.parse("p90_us=60", False)]) == []
    assert len(gate_misses(table, [Gate.parse("p90_us=50", False)])) == 1
    # a gate that no finished cell reports is a miss, never a silent pass
    assert gate_misses(table[1:], [Gate.parse("accuracy=1", True)]) == [
        "accuracy >= 1: no finished cell reports accuracy"]


@pytest.mark.parametrize("text, floor, message", [
    ("acuracy=90", True, "METRIC one of accuracy, throughput_ips (did you mean 'accuracy'?)"),
    ("accuracy", True, "give METRIC=VALUE"),
    ("p50_us=90", True, "METRIC one of accuracy, throughput_ips"),
    ("accuracy=nan", True, "'nan' is not a finite number"),
    ("accuracy=90", False, "--fail-over 'accuracy=90': give METRIC=VALUE with METRIC one of p50_us"),
])
def test_a_bad_gate_is_a_usage_error(text, floor, message):
    with pytest.raises(UsageError) as error:
        Gate.parse(text, floor)
    assert message in str(error.value)
