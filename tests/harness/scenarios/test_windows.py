"""The MLPerf Tiny windows: one loop (run_window) over a host or a device clock, and WindowsPass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakes import DeviceFake, FakeClock, FakeSUT
from tinyharness.dataset import Dataset
from tinyharness.errors import RunFailed
from tinyharness.progress import Progress
from tinyharness.qsl import QSL, Seeds
from tinyharness.results import ReasonCode
from tinyharness.scenarios import windows
from tinyharness.scenarios.base import Context
from tinyharness.scenarios.windows import ATTEMPTS, DeviceTimer, HostTimer, WindowsPass, run_window
from tinyharness.settings import TestSettings

SAMPLE = np.zeros(1, dtype=np.float32)


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(windows, "time", clock)
    return clock


class ScriptedTimer:
    """A timer whose probe and per-inference time are given; records each window length asked."""

    def __init__(self, probe_ns: float, per_inference_ns: int, cap_ns: int | None = None) -> None:
        self.probe_ns, self.per_inference_ns, self.cap_ns = probe_ns, per_inference_ns, cap_ns
        self.asked: list[int] = []

    def probe(self, sut, target_ns: float) -> float:
        return self.probe_ns

    def time(self, sut, n: int) -> int:
        self.asked.append(n)
        elapsed = n * self.per_inference_ns
        return elapsed if self.cap_ns is None else min(elapsed, self.cap_ns)


# -- the loop -------------------------------------------------------------------------------------

def test_n_from_the_probe_when_the_probe_is_right():
    timer = ScriptedTimer(probe_ns=1_000_000, per_inference_ns=1_000_000)
    window = run_window(FakeSUT(), SAMPLE, 3, "f.bin", 1.0, timer)
    assert timer.asked == [1030]  # ceil(1.03 x 1 s / 1 ms)
    assert (window.sample_index, window.file, window.inferences, window.attempts) == (3, "f.bin", 1030, 1)
    assert window.runtime_s == 1.03 and window.throughput_ips == 1000.0 and window.short_runs == []


def test_n_grows_until_the_window_is_long_enough():
    timer = ScriptedTimer(probe_ns=40_000_000, per_inference_ns=3_000_000)  # the probe is too slow
    window = run_window(FakeSUT(), SAMPLE, 0, "a.bin", 1.0, timer)
    # ceil(1.03 s / 40 ms) = 26 inferences last 78 ms; then ceil(26 x 1.3 x 1 s / 78 ms) = 434
    assert timer.asked == [26, 434]
    assert window.attempts == 2 and window.inferences == 434 and window.runtime_s == 1.302
    assert [(r.inferences, r.runtime_s) for r in window.short_runs] == [(26, 0.078)]  # kept, shown


def test_a_window_still_short_after_every_attempt_is_reported_as_it_is():
    timer = ScriptedTimer(probe_ns=1_000_000, per_inference_ns=1_000_000, cap_ns=500_000_000)
    window = run_window(FakeSUT(), SAMPLE, 0, "a.bin", 1.0, timer)
    assert len(timer.asked) == window.attempts == ATTEMPTS == len(window.short_runs) + 1
    assert timer.asked == sorted(timer.asked) and window.runtime_s == 0.5


def test_the_sample_is_prepared_once_before_the_window():
    sut = FakeSUT(samples=[SAMPLE])
    run_window(sut, SAMPLE, 0, "a.bin", 1.0, ScriptedTimer(1_000_000, 1_000_000))
    assert sut.received == [] and sut.x is SAMPLE and sut.pending  # the scripted timer never infers


# -- the host clock -------------------------------------------------------------------------------

@pytest.mark.parametrize(("estimate_ns", "inferences", "attempts"), [
    (50_000, 824, 1),  # right: ceil(1.03 x 40 ms / 50 us)
    (1e12, 1040, 2),  # too large: 1 inference, then ceil(1 x 1.3 x 40 ms / 50 us)
    # too small: bounded by half the warm-up's pace (25 us), not the 8240 that 5 us would ask for
    (5_000, 1648, 1),
], ids=["right", "too-large", "too-small"])
def test_host_timer_calibrates_from_the_estimate_and_the_warmup(clock, estimate_ns, inferences, attempts):
    sut = FakeSUT(clock=clock, infer_ns=50_000)
    window = run_window(sut, SAMPLE, 3, "f.bin", 0.04, HostTimer(estimate_ns, warmup=10))
    assert (window.inferences, window.attempts) == (inferences, attempts)
    assert window.runtime_s == pytest.approx(inferences * 50e-6) and window.throughput_ips == 20_000.0
    first_n = 1 if attempts == 2 else 0
    assert sut.infer_calls == 10 + first_n + inferences  # warm-up, then every attempt


def test_host_timer_on_the_real_clock_brackets_the_inferences():
    sut = FakeSUT(infer_ns=50_000)
    window = run_window(sut, SAMPLE, 0, "f.bin", 0.02, HostTimer(50_000, warmup=7))
    assert window.runtime_s >= 0.02 or window.attempts == ATTEMPTS
    assert window.runtime_s >= window.inferences * 50e-6 - 1e-6  # each takes >= 50 us (runtime_s: in us)
    assert sut.infer_calls >= 7 + window.inferences


# -- the device clock -----------------------------------------------------------------------------

def test_device_timer_probes_warm_then_calibrates_on_a_longer_run():
    sut = DeviceFake(device_ns=2_000_000)
    window = run_window(sut, SAMPLE, 0, "a.bin", 1.0, DeviceTimer())
    # one warmed-up inference, a calibration run of 5 % of the window (25 x 2 ms), then
    # ceil(1.03 x 1 s / 2 ms) = 515 with the warm-up
    assert sut.windows_run == [(1, 10), (25, 0), (515, 10)]
    assert window.inferences == 515 and window.throughput_ips == 500.0
    assert sut.infer_calls == 0  # the host never times a device-timed SUT


def test_device_clock_reading_zero_for_one_inference_is_probed_as_one_ns():
    assert DeviceTimer().probe(DeviceFake(device_ns=0), 1e9) == 1


def test_a_coarse_device_clock_does_not_ask_for_an_endless_window():
    sut = DeviceFake(device_ns=500_000, tick_ns=1_000_000)  # 0.5 ms per inference, a 1 ms clock
    window = run_window(sut, SAMPLE, 0, "a.bin", 0.1, DeviceTimer())
    # 200 inferences fill the 0.1 s window; a probe read as 1 ns would ask for 105 000 000
    assert max(n for n, _ in sut.windows_run) <= 10 * 200
    assert window.runtime_s >= 0.1


# -- a device's figures are checked, and N stays bounded -------------------------------------------

class Reports(DeviceFake):
    """A device-timed fake whose run_window reports ``figure`` (whatever it ran)."""

    def __init__(self, figure, **kwargs) -> None:
        super().__init__(**kwargs)
        self.figure = figure

    def run_window(self, iterations: int, warmup: int):
        self.windows_run.append((iterations, warmup))
        return self.figure


@pytest.mark.parametrize("figure", [-1, 1.5e6, float("nan"), None, "2000000", True])
def test_a_device_time_that_is_not_whole_non_negative_nanoseconds_fails_the_run(figure):
    with pytest.raises(RunFailed) as info:
        run_window(Reports(figure), SAMPLE, 0, "a.bin", 1.0, DeviceTimer())
    assert str(info.value) == (f"SUT 'fake-device' reported {figure!r} as the device time of 1 "
                               "inferences; run_window() must return the elapsed device time as a "
                               "whole number of nanoseconds >= 0")


def test_numpy_integers_are_device_times():
    window = run_window(Reports(np.int64(2_000_000_000)), SAMPLE, 0, "a.bin", 1.0, DeviceTimer())
    assert window.runtime_s == 2.0


def test_a_device_clock_that_always_reads_zero_cannot_size_an_endless_window():
    sut = Reports(0)
    window = run_window(sut, SAMPLE, 0, "a.bin", 10.0, DeviceTimer())
    asked = [n for n, _ in sut.windows_run]
    assert max(asked) == windows.MAX_ITERATIONS == 2**31 - 1  # a 32-bit `infer N`, not 10^20
    assert asked[-1] == windows.MAX_ITERATIONS  # and, at the bound, no further attempt
    assert window.runtime_s == 0.0 and window.throughput_ips == 0.0  # reported as it is: INVALID


# -- the pass -------------------------------------------------------------------------------------

def make_qsl(folder: Path, files: int) -> QSL:
    folder.mkdir()
    rows = []
    for i in range(files):
        (folder / f"s{i}.bin").write_bytes(bytes([i, 0]))
        rows.append(f"s{i}.bin,10,{i % 10}\n")
    (folder / "y_labels.csv").write_text("".join(rows))
    dataset = Dataset.open(folder, "w", "y_labels.csv", (2,), "uint8")
    return QSL(dataset, "identity", FakeSUT().input_spec())


def context(windows: int, window_min_s: float, events: list) -> Context:
    settings = TestSettings("single-stream", "performance", min_duration_s=0.0, min_query_count=1,
                            windows=windows, window_min_s=window_min_s, seed=0)
    return Context(settings, Seeds.from_seed(0), None, Progress(False),
                   lambda key, value: events.append((key, value)))


def test_windows_pass_runs_one_window_on_the_first_sample_of_each_file(tmp_path):
    events = []
    sut = DeviceFake(device_ns=1_000_000)
    measured = WindowsPass(context(5, 0.05, events)).run(sut, make_qsl(tmp_path / "w", 7))
    w = measured.windows
    assert [d.sample_index for d in w.details] == [0, 1, 2, 3, 4]
    assert [d.file for d in w.details] == [f"s{i}.bin" for i in range(5)]
    assert w.throughput_ips == [1000.0] * 5 and w.median_throughput_ips == 1000.0 and w.latency_us == 1000.0
    assert measured.reasons == []
    assert [key for key, _ in events] == ["window_result"] * 5


def test_windows_pass_with_fewer_files_than_windows_is_invalid(tmp_path):
    measured = WindowsPass(context(5, 0.05, [])).run(DeviceFake(), make_qsl(tmp_path / "w", 3))
    assert len(measured.windows.details) == 3
    assert [r.code for r in measured.reasons] == [ReasonCode.WINDOW_COUNT]
    assert "3 performance windows, the rules require 5" in measured.reasons[0].message
