"""Failure paths of the runner that must still end with a marked run directory: a full disk at the
final write, a plugin returning values JSON cannot hold, a ``close()`` that raises."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeSUT, registered
from tinyharness.errors import RunFailed
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.sut import SUTDescription


def _request(output: Path, sut: str, mode: str = "all") -> RunRequest:
    return RunRequest(sut=sut, mode=mode, output=output, min_duration_s=0.2)


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A real filesystem of ``size`` (tmpfs), or a skip where this process may not mount one."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not permitted'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_at_the_final_write_still_marks_the_run_failed(fake_suts, tmp_path):
    with small_disk(tmp_path / "disk", "16k") as disk:
        with pytest.raises(RunFailed, match="No space left on device"):
            Run(_request(disk, "fake", mode="all")).execute(Progress(enabled=False))
        (run_dir,) = disk.iterdir()
        status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed"
    assert "No space left on device" in status["error"]


class Odd(FakeSUT):
    """Describes itself and its run with values JSON cannot hold, and fails to close."""

    name = "odd"

    def describe(self) -> SUTDescription:
        d = super().describe()
        return SUTDescription(d.name, d.runtime, d.runtime_version, d.device, d.model_format,
                              d.precision, d.threads,
                              extra={"handle": object(), "clock": np.float32(1.5), "gain": float("nan")})

    def run_stats(self) -> dict:
        return {"uploads": np.int64(3), "raw": b"\x00\x01", "ratio": float("inf")}

    def close(self) -> None:
        raise RuntimeError("driver already gone")


def test_non_json_plugin_values_and_a_raising_close_still_give_a_result(tmp_path):
    with registered(Odd):
        summary, run_dir = Run(_request(tmp_path, "odd", mode="performance")).execute(Progress(enabled=False))
    status = json.loads((run_dir.path / "status.json").read_text())
    assert status["state"] == "done" and summary.latency_us.count > 0  # INVALID only for its 0.2 s
    written = json.loads((run_dir.path / "summary.json").read_text())
    assert written["system"]["sut"]["extra"]["clock"] == 1.5
    assert written["system"]["sut"]["extra"]["gain"] is None
    assert written["system"]["sut"]["extra"]["handle"].startswith("<object object")
    assert written["system"]["sut"]["run_stats"] == {"uploads": 3, "raw": "b'\\x00\\x01'", "ratio": None}
    detail = (run_dir.path / "detail.txt").read_text()
    assert "close() raised RuntimeError: driver already gone" in detail
    assert "describe().extra.handle" in detail


class FailingThenOddClose(FakeSUT):
    """Raises in infer and then in close: the run is failed for the first error, not the second."""

    name = "failing-close"

    def infer(self) -> None:
        raise RuntimeError("device fell over")

    def close(self) -> None:
        raise RuntimeError("and close failed too")


def test_a_close_raising_after_a_failure_does_not_hide_the_failure(tmp_path):
    with registered(FailingThenOddClose), pytest.raises(RunFailed, match="device fell over"):
        Run(_request(tmp_path, "failing-close", mode="performance")).execute(Progress(enabled=False))
    (run_dir,) = tmp_path.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "device fell over" in status["error"]
    assert "and close failed too" in (run_dir / "detail.txt").read_text()


class HalfLoaded(FakeSUT):
    """Starts a child process in load, then fails: the process must not outlive the run."""

    name = "half-loaded"
    children: list = []

    def load(self, model) -> None:
        self.child = subprocess.Popen(["sleep", "60"])
        HalfLoaded.children.append(self.child)
        raise RuntimeError("firmware upload failed")

    def close(self) -> None:
        self.child.kill()
        self.child.wait(timeout=10)


def test_a_sut_whose_load_raised_is_closed(tmp_path):
    HalfLoaded.children.clear()
    try:
        with registered(HalfLoaded), pytest.raises(RunFailed, match="firmware upload failed"):
            Run(_request(tmp_path, "half-loaded", mode="performance")).execute(Progress(enabled=False))
        (child,) = HalfLoaded.children
        assert child.poll() is not None  # killed by close(), not left running
    finally:
        for child in HalfLoaded.children:
            child.kill()
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"
