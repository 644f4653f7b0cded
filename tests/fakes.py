"""Fake SUTs for the core tests: small, real implementations of the SUT contract that record how
the harness drives them. Every knob is a config field (``--sut-option`` strings through the runner,
keyword arguments when a test builds one); everything recorded lives on the instance.

Import as ``from fakes import ...`` (pytest puts tests/ on sys.path for its conftest.py).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyharness.hookspecs import hookimpl
from tinyharness.plugins import registry
from tinyharness.settings import Scenario
from tinyharness.sut import SUT, SUTDescription, TensorSpec, Timing, issue_in_lanes
from tinyharness.sut_config import HostConfig, choice, flag, non_negative_int, option, positive_int

ANY = TensorSpec("any", (), "")  # takes the dataset's raw sample as it is (as the null SUT)
SCORES = TensorSpec("scores", (1, 10), "float32")


def spin(ns: int) -> None:
    """Busy-wait ``ns`` nanoseconds on the real clock (sleep() is too coarse for microseconds)."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def make_samples(k: int) -> list[np.ndarray]:
    """k one-value float32 samples, 0 .. k-1: which sample a query used is its value."""
    return [np.full(1, i, dtype=np.float32) for i in range(k)]


class FakeClock:
    """A ``perf_counter_ns`` that moves only when a fake SUT given it works. Patch it in as a
    module's ``time`` (``monkeypatch.setattr(single_stream, "time", clock)``) to get exact times."""

    def __init__(self, now: int = 1_000_000_000) -> None:
        self.now = now

    def perf_counter_ns(self) -> int:
        return self.now

    def __call__(self) -> float:
        """Seconds, as ``time.monotonic`` (what Progress takes)."""
        return self.now / 1e9

    def advance(self, ns: int) -> None:
        self.now += ns

    def advance_s(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


@dataclass(frozen=True)
class FakeConfig(HostConfig):
    infer_ns: int = option("busy time of each infer()", non_negative_int, 0)
    prepare_ns: int = option("busy time of each prepare()", non_negative_int, 0)
    fail_after: int | None = option("infer() calls that succeed before every later one raises",
                                    non_negative_int)
    interrupt: bool = option("1: the failure is a KeyboardInterrupt, not a RuntimeError", flag, False)


class FakeSUT(SUT):
    """Host-timed. Predicts class ``sum(input) % 10`` (a real, if poor, model) and records each call.

    Given ``samples``, it also checks the single-stream contract (one call at a time, a fresh
    ``prepare`` before each ``infer``) and records which sample (by identity) each infer ran on.
    Given ``clock`` (a :class:`FakeClock`), its busy times advance that clock instead of spinning.
    """

    name = "fake"
    runtime = "numpy"
    model_formats = ("onnx", "tflite")
    config_class = FakeConfig

    def __init__(self, scenario: Scenario | str = Scenario.SINGLE_STREAM, config=None, *, benchmark=None,
                 samples: list[np.ndarray] | None = None, clock: FakeClock | None = None,
                 **options) -> None:
        super().__init__(scenario, self.config_class(**options) if options else config,
                         benchmark=benchmark)
        self.samples, self.fake_clock = samples, clock
        self.x: np.ndarray | None = None
        self.y = np.zeros((1, 10), np.float32)
        self.pending = self.active = False
        self.violations: list[str] = []
        self.received: list[int] = []  # index into ``samples`` of each sample inferred
        self.infer_entries: list[int] = []  # the clock when each infer() began
        self.infer_calls = 0
        self.loaded: Path | None = None
        self.closed = False

    def now(self) -> int:
        return self.fake_clock.now if self.fake_clock is not None else time.perf_counter_ns()

    def busy(self, ns: int) -> None:
        if self.fake_clock is not None:
            self.fake_clock.advance(ns)
        elif ns:
            spin(ns)

    def load(self, model: Path) -> None:
        self.loaded = model

    def input_spec(self) -> TensorSpec:
        return ANY

    def output_spec(self) -> TensorSpec:
        return SCORES

    def prepare(self, sample: np.ndarray) -> None:
        if self.active:
            self.violations.append("prepare() during infer()")
        if self.samples is not None and self.pending:
            self.violations.append("prepare() twice without infer()")
        self.x, self.pending = sample, True
        self.busy(self.config.prepare_ns)

    def infer(self) -> None:
        self.infer_calls += 1
        self.infer_entries.append(self.now())
        c = self.config
        if c.fail_after is not None and self.infer_calls > c.fail_after:
            raise (KeyboardInterrupt if c.interrupt else RuntimeError)("device fell over")
        if self.active:
            self.violations.append("two infer() in flight")
        if self.x is None:
            self.violations.append("infer() before any prepare()")
        self.active = True
        if self.samples is not None and self.pending:
            same = [i for i, s in enumerate(self.samples) if s is self.x]
            if len(same) != 1:
                self.violations.append("the prepared sample is not one object of the sample list")
            self.received += same[:1]
        self.pending = False
        self.busy(c.infer_ns)
        self.y[:] = 0.0
        self.y[0, int(np.sum(self.x)) % 10 if self.x is not None else 0] = 1.0
        self.active = False

    def output(self) -> np.ndarray:
        return self.y.copy()

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "numpy", np.__version__, "cpu", "onnx", "float32", self.threads())

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class OfflineConfig(FakeConfig):
    stamp_ns: int | None = option("stamp sample i complete (i + 1) x this after the issue, without "
                                  "running it", positive_int)
    reverse: bool = option("1: with stamp_ns, the first sample completes last", flag, False)
    leave_zero: bool = option("1: leave one completion unstamped", flag, False)
    lanes: int | None = option("run the query over this many parallel lanes (issue_in_lanes)",
                               positive_int)


class OfflineFake(FakeSUT):
    """Records each offline query: its samples, when it reached the SUT, the completions stamped;
    with ``lanes``, also which sample values each lane ran, in order."""

    name = "fake-offline"
    config_class = OfflineConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[list[np.ndarray]] = []
        self.entries: list[int] = []
        self.stamps: list[np.ndarray] = []
        self.lane_log: list[list[float]] = []

    def issue_offline(self, samples, completions) -> None:
        c = self.config
        self.entries.append(self.now())
        self.queries.append(list(samples))
        if c.stamp_ns is not None:
            offsets = np.arange(1, len(samples) + 1, dtype=np.int64) * c.stamp_ns
            completions[:] = self.now() + (offsets[::-1] if c.reverse else offsets)
        elif c.lanes:
            self.lane_log = [[] for _ in range(c.lanes)]
            issue_in_lanes([self._lane(k) for k in range(c.lanes)], samples, completions)
        else:
            super().issue_offline(samples, completions)
        if c.leave_zero:
            completions[len(completions) // 2] = 0
        self.stamps.append(completions.copy())

    def _lane(self, k: int):
        array, log = np.zeros(1, np.float32), self.lane_log[k]

        def infer() -> None:
            log.append(float(array[0]))
            self.busy(self.config.infer_ns)
        return array, infer


@dataclass(frozen=True)
class DeviceConfig(FakeConfig):
    device_ns: int = option("nanoseconds per inference on the device's clock", non_negative_int,
                            2_000_000)
    tick_ns: int = option("the device clock's resolution (default 1 ns)", positive_int, 1)


class DeviceFake(FakeSUT):
    """Device-timed, the model on the device: ``run_window`` reports ``device_ns`` per inference
    on its own clock (read in steps of ``tick_ns``), whatever the host measures, and records each
    call (iterations, warmup)."""

    name = "fake-device"
    timing = Timing.DEVICE
    needs_model = False
    config_class = DeviceConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.windows_run: list[tuple[int, int]] = []

    def run_window(self, iterations: int, warmup: int) -> int:
        self.windows_run.append((iterations, warmup))
        return iterations * self.config.device_ns // self.config.tick_ns * self.config.tick_ns

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "device", "1.0", "emulated board", "tflite", "int8", None)


@contextmanager
def registered(*classes: type[SUT]):
    """The SUT classes registered in the process's registry for the ``with`` block."""

    class Plugin:
        @hookimpl
        def register_suts(self, register):
            for cls in classes:
                register(cls)

    name = "fakes:" + ",".join(cls.name for cls in classes)
    registry().add(Plugin(), name)
    try:
        yield
    finally:
        registry().remove(name)


def filled_system(doc: dict) -> dict:
    """A system description as a closed-division submitter completes it by hand: the fields
    ``system init`` cannot detect here filled in."""
    from tinyharness.submission.system_json import blanks

    return {**doc, **{key: "N/A" if key.startswith("Accelerator") else f"test {key.lower()}"
                      for key in blanks(doc) if key not in ("Submitter", "Division")}}


@dataclass(frozen=True)
class BadConfig(FakeConfig):
    misbehave: str = option("what the SUT does at call `at`", choice("segfault", "exit", "hang", "none"), "none")
    at: int = option("the infer() call that misbehaves", non_negative_int, 5)


class BadSUT(FakeSUT):
    """A SUT that crashes the process (segfault, ``os._exit(7)``) or hangs at one infer() call:
    run it in a fresh interpreter through :func:`bad_launcher`, never in the test's process."""

    name = "bad"
    config_class = BadConfig

    def infer(self):
        c = self.config
        if self.infer_calls + 1 == c.at:
            if c.misbehave == "segfault":
                ctypes.string_at(0)
            elif c.misbehave == "exit":
                os._exit(7)
            elif c.misbehave == "hang":
                time.sleep(3600)
        super().infer()


BAD_LAUNCHER = """import sys
sys.path.insert(0, {tests!r})
from fakes import BadSUT, registered

with registered(BadSUT):
    from tinyharness.cli import main
    main(sys.argv[1:])
"""


def bad_launcher(folder: Path) -> list[str]:
    """A command line that runs ``tinyharness`` in a fresh interpreter with :class:`BadSUT`
    registered (as a user's shell runs it: the supervisor forks the run from that process)."""
    script = Path(folder) / "tinyharness_bad.py"
    script.write_text(BAD_LAUNCHER.format(tests=str(Path(__file__).resolve().parent)))
    return [sys.executable, str(script)]
