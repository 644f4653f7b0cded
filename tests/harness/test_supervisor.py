"""``tinyharness run`` supervised: a SUT that crashes, exits or hangs, and SIGTERM, still leave a
marked run directory and a one-line message with the documented exit code.

Each test starts a fresh interpreter (as a user's shell does) running ``tinyharness.cli.main`` with
a misbehaving SUT registered in that process; the supervisor forks the run from it as it does for
users (conftest.py turns supervision off only for in-process tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes import bad_launcher
from tinyharness.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs are supervised on Linux only")

def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TINYHARNESS_SUPERVISE"}
    return subprocess.Popen([*bad_launcher(tmp_path), "run", "--sut", "bad", "--quiet",
                             "--output", str(tmp_path / "out"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def run_dir(tmp_path: Path) -> Path:
    (found,) = list((tmp_path / "out").iterdir())
    return found


def status(path: Path) -> dict:
    return json.loads((path / "status.json").read_text())


def assert_one_line_no_traceback(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("tinyharness:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err.replace("Fatal Python error", ""), err


def test_a_segfault_in_infer_marks_the_run_failed_with_the_native_trace(tmp_path):
    code, _, err = finish(start(tmp_path, "--mode", "accuracy", "--sut-option", "misbehave=segfault"))
    assert code == EXIT_FAILED
    assert "SIGSEGV" in err and "crash.txt" in err
    path = run_dir(tmp_path)
    assert status(path)["state"] == "failed" and "SIGSEGV" in status(path)["error"]
    assert status(path)["signal"] == "SIGSEGV"  # for readers that classify (sweep cells)
    trace = (path / "crash.txt").read_text()
    assert "Segmentation fault" in trace and "in infer" in trace
    assert "SIGSEGV" in (path / "detail.txt").read_text()
    assert "crash.txt" in status(path)["files"]


def test_os_exit_in_a_plugin_marks_the_run_failed(tmp_path):
    code, _, err = finish(start(tmp_path, "--mode", "accuracy", "--sut-option", "misbehave=exit"))
    assert code == EXIT_FAILED
    assert_one_line_no_traceback(err)
    path = run_dir(tmp_path)
    assert status(path)["state"] == "failed" and "exited with code 7" in status(path)["error"]
    assert "signal" not in status(path)
    assert (path / "detail.txt").is_file()
    assert not (path / "crash.txt").exists() and not (path / ".crash.txt").exists()


def test_a_hung_infer_is_stopped_by_the_query_timeout(tmp_path):
    code, _, err = finish(start(tmp_path, "--mode", "accuracy", "--sut-option", "misbehave=hang",
                                "--query-timeout", "2"))
    assert code == EXIT_FAILED
    assert "no progress for 2 s" in err and "--query-timeout" in err
    path = run_dir(tmp_path)
    assert status(path)["state"] == "failed" and "no progress for 2 s" in status(path)["error"]
    assert (path / "detail.txt").is_file()


def test_sigterm_marks_the_run_interrupted_and_keeps_the_detail_log(tmp_path):
    proc = start(tmp_path, "--mode", "performance", "--min-duration", "600", "--sut-option",
                 "infer_ns=200000")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "out").glob("*/status.json")):
        time.sleep(0.1)
    time.sleep(1.0)  # into the run
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == EXIT_INTERRUPTED
    assert_one_line_no_traceback(err)
    path = run_dir(tmp_path)
    assert status(path)["state"] == "interrupted" and "SIGTERM" in status(path)["error"]
    assert "error_runtime" in (path / "detail.txt").read_text()


def test_a_supervised_run_that_finishes_prints_its_summary_and_leaves_no_crash_file(tmp_path):
    script_args = ["--mode", "accuracy", "--json"]
    proc = start(tmp_path, *script_args)
    code, out, err = finish(proc)
    assert code == EXIT_INVALID  # the fake's top-1 is about 10 %
    assert json.loads(out)["valid"] is False
    path = run_dir(tmp_path)
    assert status(path)["state"] == "done"
    assert not (path / ".crash.txt").exists() and not (path / "crash.txt").exists()
