"""The run reader as compare and report use it: schema-1 runs, archives, labels, bad input."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from tinyharness.compare import compare
from tinyharness.errors import UsageError
from tinyharness.report import row_of
from tinyharness.results import ReasonCode
from tinyharness.results.read import load_runs, read_summary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"


def metric_rows(result: dict) -> list[list[dict]]:
    return [pair["metrics"] for pair in result["pairs"]]


def test_schema1_reasons_get_codes():
    runs = {r.sut: r.summary for r in load_runs([FIXTURES])}
    assert [r.code for r in runs["onnxruntime-cpu"].invalid_reasons] == [ReasonCode.OVERRIDE] * 2
    assert [r.code for r in runs["tflite-cpu"].invalid_reasons] == [ReasonCode.OVERRIDE,
                                                                    ReasonCode.MIN_DURATION]
    assert runs["serial"].invalid_reasons == [] and runs["serial"].latency_us is None


def test_schema2_rewrite_reads_the_same(tmp_path):
    """A schema-1 run rewritten as schema 2 compares and reports exactly as the original."""
    copy = shutil.copytree(SINGLE_STREAM, tmp_path / "v2")
    document = read_summary(copy).to_dict()
    assert document["schema_version"] == 2
    (copy / "summary.json").write_text(json.dumps(document))
    same = compare([SINGLE_STREAM], [SINGLE_STREAM])
    assert metric_rows(compare([SINGLE_STREAM], [copy])) == metric_rows(same)
    (old,), (new,) = load_runs([SINGLE_STREAM]), load_runs([copy])
    assert row_of(old) == row_of(new)


def test_archive_reads_like_the_folder(tmp_path):
    with tarfile.open(tmp_path / "runs.tar.gz", "w:gz") as tar:
        tar.add(FIXTURES, arcname="pkg")
    from_tar = compare([tmp_path / "runs.tar.gz"], [FIXTURES], seed=5)
    assert metric_rows(from_tar) == metric_rows(compare([FIXTURES], [FIXTURES], seed=5))
    assert all(p["a"]["path"].startswith(f"{tmp_path / 'runs.tar.gz'}:pkg/") for p in from_tar["pairs"])


def test_labels_number_runs_of_one_sut(tmp_path):
    shutil.copytree(SINGLE_STREAM, tmp_path / "one")
    shutil.copytree(SINGLE_STREAM, tmp_path / "two")
    assert [row_of(r)["SUT"] for r in load_runs([tmp_path])] == ["onnxruntime-cpu", "onnxruntime-cpu #2"]


@pytest.mark.parametrize("summary, message", [
    (None, "no run directories"),
    ({"schema_version": 99}, "schema_version 99"),
    ({"schema_version": 1, "benchmark": "digits01"}, "not a tinyharness run summary"),
    ("[1, 2]", "not a run summary"),
])
def test_bad_input_is_one_usage_error(tmp_path, summary, message):
    run = tmp_path / "run"
    run.mkdir()
    if summary is not None:
        (run / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    with pytest.raises(UsageError, match=message):
        compare([tmp_path], [SINGLE_STREAM])
