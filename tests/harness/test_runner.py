"""A run that fails or is interrupted leaves a run directory that says so, with what it measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyharness.errors import RunFailed
from tinyharness.hookspecs import hookimpl
from tinyharness.plugins import registry
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.sut import SUT, SUTDescription, TensorSpec


class _Counting(SUT):
    """A real SUT over a tiny numpy 'model' (sum of the pixels per class bucket)."""

    model_formats = ("onnx", "tflite")
    options = ()
    fail_after: int | None = None
    exception: type[BaseException] = RuntimeError

    def load(self, model: Path) -> None:
        self.calls = 0
        self.x = np.zeros((1, 8, 8, 1), np.float32)
        self.y = np.zeros((1, 10), np.float32)

    def input_spec(self) -> TensorSpec:
        return TensorSpec("input", (1, 8, 8, 1), "float32")

    def output_spec(self) -> TensorSpec:
        return TensorSpec("out", (1, 10), "float32")

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self.x, sample)

    def infer(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise self.exception("device fell over")
        self.y[0, int(self.x.sum()) % 10] = 1.0

    def output(self) -> np.ndarray:
        out, self.y[:] = self.y.copy(), 0.0
        return out

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "numpy", np.__version__, "cpu", "onnx", "float32", 1)


class FailsMidRun(_Counting):
    name = "test-fails-mid-run"
    fail_after = 500


class Interrupted(_Counting):
    name = "test-interrupted"
    fail_after = 500
    exception = KeyboardInterrupt


class Plugin:
    @hookimpl
    def register_suts(self, register):
        register(FailsMidRun)
        register(Interrupted)


@pytest.fixture
def test_suts():
    reg = registry()
    reg.add(Plugin(), "test-plugin")
    try:
        yield
    finally:
        reg.remove("test-plugin")


def _run(sut: str, tmp_path: Path, mode: str = "all") -> Run:
    return Run(RunRequest(sut=sut, mode=mode, output=tmp_path, min_duration_s=0.2))


def test_sut_raising_mid_run_marks_the_run_failed_and_keeps_what_was_measured(test_suts, tmp_path):
    run = _run("test-fails-mid-run", tmp_path)
    with pytest.raises(RunFailed, match="device fell over"):
        run.execute(Progress(enabled=False))
    (run_dir,) = tmp_path.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "RuntimeError: device fell over" in status["error"]
    # the accuracy pass (360 samples) finished before the failure: its log and numbers survive
    assert "accuracy.json" in status["files"]
    partial = json.loads((run_dir / "partial_summary.json").read_text())
    assert partial["valid"] is False and partial["accuracy"]["count"] == 360
    assert "error_runtime" in (run_dir / "detail.txt").read_text()
    assert not (run_dir / "summary.json").exists()


def test_interrupt_marks_the_run_interrupted(test_suts, tmp_path):
    run = _run("test-interrupted", tmp_path, mode="performance")
    with pytest.raises(RunFailed, match="interrupted"):
        run.execute(Progress(enabled=False))
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "interrupted"


def test_registry_rejects_a_second_sut_with_the_same_name(test_suts):
    from tinyharness.errors import UsageError

    class Again:
        @hookimpl
        def register_suts(self, register):
            register(FailsMidRun)

    with pytest.raises(UsageError, match="both plugin 'test-plugin' and plugin 'again'"):
        registry().add(Again(), "again")
    assert registry().pm.get_plugin("again") is None


class DeviceTimed(_Counting):
    """A SUT that reports its own clock: 2 ms per inference, whatever the host measures."""

    name = "test-device-timed"
    timing = "device"
    needs_model = False
    windows_run: list[tuple[int, int]] = []

    def run_window(self, iterations: int, warmup: int) -> int:
        DeviceTimed.windows_run.append((iterations, warmup))
        return iterations * 2_000_000

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "device", "1.0", "emulated board", "tflite", "int8", None)


class DevicePlugin:
    @hookimpl
    def register_suts(self, register):
        register(DeviceTimed)


def test_device_timed_sut_gets_windows_from_its_own_clock(tmp_path):
    reg = registry()
    reg.add(DevicePlugin(), "device-plugin")
    try:
        run = Run(RunRequest(sut="test-device-timed", mode="performance", output=tmp_path,
                             min_duration_s=0.5))
        summary, run_dir = run.execute(Progress(enabled=False))
    finally:
        reg.remove("device-plugin")
    windows = summary["windows"]
    # 0.5 s shortens the windows to 0.1 s: N = ceil(1.05 * 0.1 s / 2 ms) = 53 inferences each
    assert [d["inferences"] for d in windows["details"]] == [53] * 5
    assert windows["throughput_ips"] == [500.0] * 5 and windows["latency_ms"] == 2.0
    assert summary["latency_us"] is None  # no host-timed queries on a device-timed SUT
    assert summary["model"]["found_in"] == "device" and summary["model"]["sha256"] is None
    # each window: a one-inference probe without warm-up, then N with the warm-up
    assert DeviceTimed.windows_run[:2] == [(1, 0), (53, 10)]
    assert json.loads((run_dir.path / "status.json").read_text())["state"] == "done"


def test_model_option_is_refused_for_a_model_on_the_device(tmp_path):
    from tinyharness.errors import UsageError

    reg = registry()
    reg.add(DevicePlugin(), "device-plugin")
    try:
        with pytest.raises(UsageError, match="--model does not apply"):
            Run(RunRequest(sut="test-device-timed", model=Path("x.tflite"), output=tmp_path))
    finally:
        reg.remove("device-plugin")
