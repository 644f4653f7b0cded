"""Reading runs that did not finish: ``load_runs`` leaves out a run whose status.json says it
failed, was interrupted or never finished (with or without a summary.json, whole or partial),
warns once per run in one line naming the folder and its status, and refuses only when nothing
finished is left. Labels are numbered per benchmark.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from tinyharness.errors import UsageError
from tinyharness.results.read import SkippedRun, load_runs, read_summary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
FAILED = "20261202-041625-a25538_digits01_tflite-cpu_single-stream"


def status(run: Path, state: str, error: str | None = None) -> Path:
    (run / "status.json").write_text(json.dumps({"state": state, "error": error,
                                                 "time": "2026-12-02T04:16:27+00:00", "files": []}))
    return run


def failed_run(root: Path, name: str = FAILED, error: str | None = "RuntimeError: device fell over",
               state: str = "failed") -> Path:
    """A run directory as the runner leaves a failed run: status.json, detail.txt, and a partial
    summary whose results are not to be read."""
    run = root / name
    run.mkdir(parents=True)
    (run / "detail.txt").write_text("")
    partial = json.loads((SINGLE_STREAM / "summary.json").read_text())
    (run / "partial_summary.json").write_text(json.dumps({**partial, "sut": "tflite-cpu", "mode": "accuracy",
                                                          "started": "2026-12-02T04:16:25+00:00"}))
    return status(run, state, error)


def load(paths) -> tuple[list, list[SkippedRun], list[str]]:
    warnings: list[str] = []
    skipped: list[SkippedRun] = []
    runs = load_runs(paths, skipped, warn=warnings.append)
    return runs, skipped, warnings


def test_a_failed_run_is_skipped_with_one_warning(tmp_path):
    shutil.copytree(SINGLE_STREAM, tmp_path / SINGLE_STREAM.name)
    failed = failed_run(tmp_path)
    runs, (skipped,), warnings = load([tmp_path])
    assert [r.sut for r in runs] == ["onnxruntime-cpu"]
    assert warnings == [f"skipped {failed} (status: failed): RuntimeError: device fell over"]
    # what the run was comes from its partial summary (never its figures)
    assert (skipped.benchmark, skipped.sut, skipped.scenario, skipped.mode, skipped.started) == (
        "digits01", "tflite-cpu", "single-stream", "accuracy", "2026-12-02T04:16:25+00:00")
    assert skipped.position == 1 and skipped.label == "tflite-cpu"


def test_a_failed_run_given_by_itself_among_others_is_no_error(tmp_path):
    """`report results/*`: each run directory a path of its own."""
    failed = failed_run(tmp_path)
    runs, skipped, warnings = load([SINGLE_STREAM, failed])
    assert len(runs) == 1 and len(skipped) == 1 and len(warnings) == 1


@pytest.mark.parametrize("summary", [b'{"schema_version": 2, "bench', b"", b"[1, 2]"])
def test_a_failed_run_with_a_broken_summary_json_is_skipped_not_refused(tmp_path, summary):
    """A run that died while writing summary.json: the status says so, the summary is not read."""
    failed = failed_run(tmp_path)
    (failed / "summary.json").write_bytes(summary)
    (failed / "partial_summary.json").unlink()
    runs, (skipped,), warnings = load([SINGLE_STREAM, tmp_path])
    assert len(runs) == 1 and skipped.state == "failed"
    assert (skipped.benchmark, skipped.sut) == ("digits01", "tflite-cpu")  # from the folder's name


def test_a_run_still_marked_running_is_skipped(tmp_path):
    """A run killed with SIGKILL (no supervisor) leaves status "running" and maybe a summary."""
    run = status(shutil.copytree(SINGLE_STREAM, tmp_path / "run"), "running")
    _, (skipped,), (warning,) = load([SINGLE_STREAM, run])
    assert warning == f"skipped {run} (status: running): the run never finished (killed, or still running?)"
    assert skipped.mode == "all"  # from its summary.json, read for what the run was


def test_interrupted_unreadable_and_summaryless_runs_are_skipped(tmp_path):
    interrupted = failed_run(tmp_path / "a", state="interrupted", error="terminated (SIGTERM)")
    torn = status(shutil.copytree(SINGLE_STREAM, tmp_path / "b" / "run"), "done")
    (torn / "status.json").write_text('{"state": "do')
    (tmp_path / "c" / "run").mkdir(parents=True)
    done = status(tmp_path / "c" / "run", "done")
    _, skipped, warnings = load([SINGLE_STREAM, tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    assert [s.state for s in skipped] == ["interrupted", "unreadable", "done"]
    assert warnings[0] == f"skipped {interrupted} (status: interrupted): terminated (SIGTERM)"
    assert warnings[1].startswith(f"skipped {torn} (status: unreadable): {torn / 'status.json'}: "
                                  "not readable JSON")
    assert warnings[2] == f"skipped {done} (status: done): no summary.json"


def test_a_multi_line_error_is_one_warning_line(tmp_path):
    failed = failed_run(tmp_path, error="Traceback:\n  line 1\r\n\x1b[31mboom" + "x" * 1000)
    _, _, (warning,) = load([SINGLE_STREAM, failed])
    assert "\n" not in warning and "\r" not in warning and "\x1b" not in warning
    assert "Traceback: line 1 [31mboom" in warning and len(warning) < 300 + len(str(failed)) + 40


def test_nothing_finished_is_one_usage_error(tmp_path):
    failed = failed_run(tmp_path)
    warnings: list[str] = []
    with pytest.raises(UsageError) as info:
        load_runs([failed], warn=warnings.append)
    assert str(info.value) == ("no finished runs to read: the 1 run directory given did not finish "
                               "(see the warnings above)")
    assert len(warnings) == 1


def test_warnings_go_to_stderr_by_default(tmp_path, capsys):
    failed = failed_run(tmp_path)
    load_runs([SINGLE_STREAM, failed])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (f"warning: skipped {failed} (status: failed): "
                                                   "RuntimeError: device fell over\n")


def test_a_failed_run_in_a_package_is_skipped(tmp_path):
    failed_run(tmp_path / "pkg")
    shutil.copytree(SINGLE_STREAM, tmp_path / "pkg" / SINGLE_STREAM.name)
    with tarfile.open(tmp_path / "pkg.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "pkg", arcname="pkg")
    runs, (skipped,), (warning,) = load([tmp_path / "pkg.tar.gz"])
    assert [r.sut for r in runs] == ["onnxruntime-cpu"] and runs[0].latencies is not None
    assert skipped.path == f"{tmp_path / 'pkg.tar.gz'}:pkg/{FAILED}" and skipped.mode == "accuracy"
    assert warning.endswith("(status: failed): RuntimeError: device fell over")


def test_a_finished_run_with_status_done_reads_as_before(tmp_path):
    run = status(shutil.copytree(SINGLE_STREAM, tmp_path / "run"), "done")
    (record,), skipped, warnings = load([run])
    assert record.summary == read_summary(SINGLE_STREAM) and not skipped and not warnings


def test_labels_are_numbered_per_benchmark(tmp_path):
    """Issue: the first ad01 run of a SUT was "tflite-cpu #2" because digits01 had one before."""
    shutil.copytree(SINGLE_STREAM, tmp_path / "1")
    other = shutil.copytree(SINGLE_STREAM, tmp_path / "2")
    document = json.loads((other / "summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**document, "benchmark": "kws01"}))
    shutil.copytree(SINGLE_STREAM, tmp_path / "3")
    failed_run(tmp_path / "4", name=FAILED.replace("tflite-cpu", "onnxruntime-cpu"))
    runs, (skipped,), _ = load([tmp_path])
    assert [(r.key[0], r.label) for r in runs] == [
        ("digits01", "onnxruntime-cpu"), ("kws01", "onnxruntime-cpu"), ("digits01", "onnxruntime-cpu #2")]
    assert skipped.label == "tflite-cpu"  # its partial summary names tflite-cpu, numbered on its own
