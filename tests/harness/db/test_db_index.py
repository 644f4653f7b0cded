"""A run directory as an index row: real runs of ``tinyharness run`` (finished, failed,
interrupted), the schema-1 fixtures (upgraded), and directories that are no run or a damaged one.
The oracle is each run's own JSON files, read here with ``json``."""

from __future__ import annotations

import json
import os

import pytest

from db_helpers import SCHEMA1, copy_run, status_of, summary_of
from tinyharness.db.index import RUN_COLUMNS, read_row, utc
from tinyharness.errors import UsageError


def test_a_single_stream_run_gives_its_figures(real_runs):
    run_dir = real_runs["single"]
    doc, row = summary_of(run_dir), read_row(run_dir)
    assert row["run_id"] == run_dir.name and row["path"] == str(run_dir)
    assert (row["benchmark"], row["sut"], row["scenario"], row["mode"]) == (
        "digits01", "null", "single-stream", "all")
    assert row["state"] == "done" and row["valid"] == 0 and row["error"] is None
    assert row["reasons"] == "; ".join(r["message"] for r in doc["invalid_reasons"])
    assert (row["p50_us"], row["p90_us"]) == (doc["latency_us"]["p50"], doc["latency_us"]["p90"])
    assert row["throughput_ips"] == doc["windows"]["median_throughput_ips"]
    assert row["latency_us"] == doc["windows"]["latency_us"]
    assert (row["accuracy"], row["accuracy_metric"]) == (doc["accuracy"]["value"], "top1")
    assert row["started"] == doc["started"] and row["started"].endswith("+00:00")
    assert row["model_sha256"] == doc["model"]["sha256"]
    assert row["host"] == doc["system"]["cpu_model"]
    assert row["harness_version"] == doc["system"]["harness_version"]
    assert json.loads(row["sut_options"]) == {}


def test_an_offline_run_gives_its_samples_per_second(real_runs):
    doc, row = summary_of(real_runs["offline"]), read_row(real_runs["offline"])
    assert row["scenario"] == "offline"
    assert row["throughput_ips"] == doc["throughput_ips"] and row["throughput_ips"] > 0
    assert row["latency_us"] is None  # no windows offline


@pytest.mark.parametrize("name", ["failed", "interrupted"])
def test_a_run_that_did_not_finish_is_a_row_with_its_state_and_error(real_runs, name):
    run_dir = real_runs[name]
    row = read_row(run_dir)
    assert row["state"] == status_of(run_dir)["state"] == name
    assert row["error"] == status_of(run_dir)["error"]
    assert row["valid"] is None and row["p50_us"] is None
    assert (row["benchmark"], row["sut"], row["scenario"]) == ("digits01", "fake", "single-stream")
    assert row["started"] is not None


def test_schema1_windows_latency_is_upgraded_to_us():
    run_dir = next(SCHEMA1.glob("*_digits01_onnxruntime-cpu_single-stream"))
    doc, row = summary_of(run_dir), read_row(run_dir)
    assert doc.get("schema_version", 1) == 1 and "latency_ms" in doc["windows"]
    assert row["latency_us"] == pytest.approx(doc["windows"]["latency_ms"] * 1000)
    assert row["throughput_ips"] == doc["windows"]["median_throughput_ips"]


def test_a_damaged_summary_is_one_line_naming_the_file(real_runs, tmp_path):
    copy = copy_run(real_runs["single"], tmp_path, "20261201-000000-aaaaaa_digits01_null_single-stream")
    (copy / "summary.json").write_text('{"benchmark": "digits01", ')
    with pytest.raises(UsageError) as error:
        read_row(copy)
    assert str(copy / "summary.json") in str(error.value) and "\n" not in str(error.value)


def test_a_summary_that_is_a_fifo_is_refused_not_opened(real_runs, tmp_path):
    copy = copy_run(real_runs["single"], tmp_path, "run")
    (copy / "summary.json").unlink()
    os.mkfifo(copy / "summary.json")
    with pytest.raises(UsageError, match="FIFO"):
        read_row(copy)


def test_a_folder_that_is_no_run_is_refused(tmp_path):
    with pytest.raises(UsageError, match="not a run directory"):
        read_row(tmp_path)
    with pytest.raises(UsageError, match="not a folder"):
        read_row(tmp_path / "missing")


def test_an_unreadable_status_is_refused(real_runs, tmp_path):
    copy = copy_run(real_runs["failed"], tmp_path, "run")
    (copy / "status.json").write_text("[1, 2")
    with pytest.raises(UsageError, match="not indexed"):
        read_row(copy)


def test_a_finished_run_without_summary_is_refused(real_runs, tmp_path):
    copy = copy_run(real_runs["single"], tmp_path, "run")
    (copy / "summary.json").unlink()
    with pytest.raises(UsageError, match="no summary.json"):
        read_row(copy)


def test_times_are_normalised_to_utc_seconds():
    assert utc("2026-12-01T01:30:00.123456+02:00") == "2026-11-30T23:30:00+00:00"
    assert utc("2026-12-01T10:00:00Z") == "2026-12-01T10:00:00+00:00"
    assert utc("2026-12-01T10:00:00") == "2026-12-01T10:00:00+00:00"  # no offset: UTC
    assert utc("not a time") == "not a time" and utc(None) is None


def test_the_export_columns_are_the_documented_ones():
    # the CSV columns are a contract (docs and scripts read them): appending is the only change
    assert RUN_COLUMNS[:30] == (
        "run_id", "path", "benchmark", "sut", "scenario", "mode", "started", "finished", "state",
        "valid", "error", "reasons", "accuracy", "accuracy_metric", "p50_us", "p90_us",
        "throughput_ips", "latency_us", "sut_options", "model", "model_sha256", "runtime",
        "runtime_version", "device", "host", "harness_version", "sweep_id", "cell_id", "node",
        "indexed_at")
