"""Run directory and log files: atomic writes, naming, schema-validated status and detail log."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tinyharness import logs
from tinyharness.errors import UsageError
from tinyharness.fileio import atomic_write, sha256_of
from tinyharness.logs import MLLOG, DetailLog, RunDirectory
from tinyharness.schemas import SchemaError

RULES = Path(__file__).resolve().parents[2] / "rules"


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((RULES / f"{name}.schema.json").read_text()))


# -- atomic_write ------------------------------------------------------------------------------

def test_atomic_write_creates_and_replaces_without_leftovers(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, b"first")
    assert target.read_bytes() == b"first"
    atomic_write(target, b"second, longer content")
    assert target.read_bytes() == b"second, longer content"
    atomic_write(target, b"")
    assert target.read_bytes() == b""
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write(target, b"original")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_atomic_write_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(OSError):
        atomic_write(tmp_path / "nope" / "x.txt", b"x")
    assert os.listdir(tmp_path) == []


def test_sha256_of_reads_the_whole_file_in_blocks(tmp_path):
    data = bytes(range(256)) * 8193  # just over 2 MiB: three blocks of 1 MiB
    (tmp_path / "f").write_bytes(data)
    assert sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_of(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# -- RunDirectory.create -----------------------------------------------------------------------

class _FixedNow(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz)


def _fixed(monkeypatch, tag="a1b2c3"):
    monkeypatch.setattr(logs, "datetime", _FixedNow)
    monkeypatch.setattr(logs.secrets, "token_hex", lambda n: tag[:2 * n])


def test_create_names_the_run(tmp_path, monkeypatch):
    _fixed(monkeypatch)
    run = RunDirectory.create(tmp_path / "runs", "kws01", "onnxruntime-cpu", "single-stream")
    assert run.path == tmp_path / "runs" / "20240506-070809-a1b2c3_kws01_onnxruntime-cpu_single-stream"
    assert run.path.is_dir()
    assert run.files == []


def test_create_slugs_odd_characters(tmp_path, monkeypatch):
    _fixed(monkeypatch)
    run = RunDirectory.create(tmp_path, "my bench/01", "a:b c", "///")
    assert run.path.name == "20240506-070809-a1b2c3_my-bench-01_a-b-c_x"
    assert run.path.parent == tmp_path


def test_create_is_unique_within_one_second(tmp_path, monkeypatch):
    _fixed(monkeypatch)  # the same random tag too: the counter still separates them
    base = "20240506-070809-a1b2c3_b_s_offline"
    names = [RunDirectory.create(tmp_path, "b", "s", "offline").path.name for _ in range(4)]
    assert names == [base, f"{base}-1", f"{base}-2", f"{base}-3"]


def test_runs_in_one_second_in_two_folders_get_different_names(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "datetime", _FixedNow)
    a = RunDirectory.create(tmp_path / "a", "b", "s", "offline").path.name
    b = RunDirectory.create(tmp_path / "b", "b", "s", "offline").path.name
    assert a != b and a[:15] == b[:15] == "20240506-070809"


def test_create_unique_with_the_real_clock(tmp_path):
    paths = {RunDirectory.create(tmp_path, "b", "s", "offline").path for _ in range(5)}
    assert len(paths) == 5
    assert all(p.is_dir() for p in paths)


def test_create_under_a_file_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="run directory"):
        RunDirectory.create(blocker, "b", "s", "offline")


# -- status.json -------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["running", "done", "failed", "interrupted"])
def test_set_status_writes_a_valid_document(tmp_path, state):
    run = RunDirectory.create(tmp_path, "b", "s", "single-stream")
    run.write_text("summary.txt", "hello\n")
    run.write_json("a.json", {"x": 1}, None)
    error = "boom" if state == "failed" else None
    run.set_status(state, error)
    doc = json.loads((run.path / "status.json").read_text())
    schema_validator("status").validate(doc)
    assert doc["state"] == state
    assert doc["error"] == error
    assert doc["files"] == ["a.json", "summary.txt"]  # sorted, without status.json itself
    assert datetime.fromisoformat(doc["time"]).tzinfo is not None


def test_set_status_rewrites_and_stays_out_of_its_own_list(tmp_path):
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    run.set_status("running")
    run.write_text("detail.txt", "")
    run.set_status("done")
    doc = json.loads((run.path / "status.json").read_text())
    assert doc["state"] == "done"
    assert doc["files"] == ["detail.txt"]
    assert run.files.count("status.json") == 1
    assert sorted(os.listdir(run.path)) == ["detail.txt", "status.json"]


def test_set_status_rejects_an_unknown_state(tmp_path):
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    with pytest.raises(SchemaError, match="status"):
        run.set_status("finished")
    assert os.listdir(run.path) == []


def test_write_json_invalid_document_raises_and_leaves_no_file(tmp_path):
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    bad = {"state": "done", "error": None, "time": "2024-01-01T00:00:00+00:00", "files": "not-a-list"}
    with pytest.raises(SchemaError) as info:
        run.write_json("status.json", bad, "status")
    assert "files" in str(info.value)
    assert os.listdir(run.path) == []
    assert run.files == []


def test_write_json_and_npy_round_trip(tmp_path):
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    run.write_json("doc.json", {"a": [1, 2.5, None]}, None)
    assert json.loads((run.path / "doc.json").read_text()) == {"a": [1, 2.5, None]}
    array = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]  # non-contiguous
    run.write_npy("lat.npy", array)
    assert np.array_equal(np.load(run.path / "lat.npy"), array)
    assert run.files == ["doc.json", "lat.npy"]


def test_write_json_rejects_nan(tmp_path):
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    with pytest.raises(ValueError):
        run.write_json("nan.json", {"x": float("nan")}, None)
    assert os.listdir(run.path) == []


# -- detail log ----------------------------------------------------------------------------------

def test_detail_lines_are_mllog_json_matching_the_schema(tmp_path):
    detail = DetailLog()
    detail.event("test_datetime", "2024-01-01T00:00:00")
    detail.event("effective_min_query_count", 100)
    detail.event("result_validity", "INVALID", warning=True)
    detail.event("error_runtime", "it broke", error=True)
    detail.event("sut_name", {"name": "null", "threads": None})
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    run.write_detail(detail)
    text = (run.path / "detail.txt").read_text()
    lines = text.splitlines()
    assert len(lines) == 5
    assert text.endswith("\n")
    validator = schema_validator("detail_line")
    events = []
    for line in lines:
        assert line.startswith(":::MLLOG ")
        assert MLLOG == ":::MLLOG "
        event = json.loads(line[len(":::MLLOG "):])
        validator.validate(event)
        events.append(event)
    assert [e["key"] for e in events] == ["test_datetime", "effective_min_query_count", "result_validity",
                                         "error_runtime", "sut_name"]
    assert events[1]["value"] == 100
    assert events[2]["metadata"]["is_warning"] is True and events[2]["metadata"]["is_error"] is False
    assert events[3]["metadata"]["is_error"] is True
    assert all(e["metadata"]["pid"] == os.getpid() for e in events)
    times = [e["time_ms"] for e in events]
    assert times == sorted(times) and times[0] >= 0
    assert "detail.txt" in run.files


def test_detail_event_with_an_invalid_key_is_rejected(tmp_path):
    detail = DetailLog()
    detail.event("Bad Key", 1)
    run = RunDirectory.create(tmp_path, "b", "s", "offline")
    with pytest.raises(SchemaError):
        run.write_detail(detail)
    assert os.listdir(run.path) == []


def test_empty_detail_log_renders_nothing():
    assert DetailLog().render() == ""


def test_check_run_directory_finds_each_kind_of_damage(tmp_path):
    """A real (null SUT) run directory is sound; each damage is reported with the file's name."""
    from tinyharness.logs import check_run_directory
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    summary, run_dir = Run(RunRequest(sut="null", mode="all", output=tmp_path,
                                      min_duration_s=0.05)).execute(Progress(enabled=False))
    path = run_dir.path
    assert check_run_directory(path) == []

    (path / "detail.txt").write_text((path / "detail.txt").read_text() + "not an event\n")
    log = json.loads((path / "accuracy.json").read_text())
    (path / "accuracy.json").write_text(json.dumps(log[:-1]))
    np.save(path / "latencies.npy", np.zeros(3, dtype=np.int32))
    status = json.loads((path / "status.json").read_text())
    (path / "status.json").write_text(json.dumps(dict(status, state="failed")))
    problems = "\n".join(check_run_directory(path))
    assert "detail.txt:" in problems and "not a ':::MLLOG" in problems
    assert f"accuracy.json: {len(log) - 1} entries, summary.json says {len(log)}" in problems
    assert "latencies.npy: 3 int32 values" in problems
    assert "the run is 'failed'" in problems


def test_check_run_directory_reports_a_summary_that_is_not_an_object(tmp_path):
    from tinyharness.logs import check_run_directory

    (tmp_path / "summary.json").write_text("[1, 2]")
    (tmp_path / "status.json").write_text('"done"')
    problems = check_run_directory(tmp_path)
    assert "summary.json: not a JSON object" in problems and "status.json: not a JSON object" in problems


# -- file modes --------------------------------------------------------------------------------

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, mask, mode):
    from tinyharness.fileio import atomic_write, umask

    old = os.umask(mask)
    try:
        assert umask() == mask
        atomic_write(tmp_path / "f.json", b"{}")
        run = RunDirectory.create(tmp_path / "runs", "b", "s", "offline")
        run.write_text("summary.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == mode
    assert stat.S_IMODE((run.path / "summary.txt").stat().st_mode) == mode
