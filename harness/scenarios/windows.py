"""The MLPerf Tiny performance windows: each of the first five files inferred N times back to back
for at least the window duration (the DUT's ``infer N W``), throughput = N / elapsed, median of
the windows reported.

One loop serves both clocks: a :class:`HostTimer` times ``infer()`` itself with
``perf_counter_ns``; a :class:`DeviceTimer` asks a device-timed SUT to run the window and report
its own elapsed time (``SUT.run_window``). N is calibrated from a probe and grown until a window
lasts long enough, as a user tunes N per device.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import numbers
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import RunFailed
from ..results import Measurement
from ..results.sections import ShortRun, Window, Windows
from ..sut import Timing
from .base import WARMUP, Pass

if TYPE_CHECKING:
    import numpy as np

    from ..qsl import QSL
    from ..sut import SUT

ATTEMPTS = 6  # a window still short after this many tries is reported as it is (INVALID)
MAX_PROBE = 10_000  # inferences in the largest device-clock probe
PROBE_SHARE = 0.05  # a device window's calibration run lasts about this share of the window
MARGIN = 1.03  # N is sized for this multiple of the window: short by noise only rarely
# The largest N of one window: the DUT's ``infer N W`` takes a 32-bit count, and a device clock
# that reads 0 (or a lying one) must not size a window of 10^20 inferences; a window still short
# at this N is reported as it is (INVALID).
MAX_ITERATIONS = 2**31 - 1


class Timer(Protocol):
    def probe(self, sut: "SUT", target_ns: float) -> float:
        """Nanoseconds one inference of the prepared sample takes (after any warm-up), measured
        well enough to size a window of ``target_ns``."""

    def time(self, sut: "SUT", n: int) -> int:
        """Nanoseconds ``n`` back-to-back inferences of the prepared sample take."""


class HostTimer:
    """The host clock around a tight loop of ``infer()``, garbage collector paused."""

    def __init__(self, latency_estimate_ns: float = 0.0, warmup: int = WARMUP) -> None:
        self.estimate, self.warmup = latency_estimate_ns, warmup

    def probe(self, sut: "SUT", target_ns: float) -> float:
        infer, clock = sut.infer, time.perf_counter_ns
        t = clock()
        for _ in range(self.warmup):
            infer()
        # The warm-up's own pace bounds a too-small estimate (which would make N huge).
        return max(self.estimate, (clock() - t) / max(self.warmup, 1) / 2, 1.0)

    def time(self, sut: "SUT", n: int) -> int:
        infer, clock, loop = sut.infer, time.perf_counter_ns, range(n)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            t0 = clock()
            for _ in loop:
                infer()
            return clock() - t0
        finally:
            if was_enabled:
                gc.enable()


class DeviceTimer:
    """The device's own clock: ``SUT.run_window(N, W)`` returns the elapsed device time."""

    def __init__(self, warmup: int = WARMUP) -> None:
        self.warmup = warmup

    def probe(self, sut: "SUT", target_ns: float) -> float:
        # A coarse device clock (µs ticks) may read 0 for a fast model: grow the probe until it
        # reads something, so N is not sized from a zero.
        n = 1
        while (elapsed := device_ns(sut, sut.run_window(n, self.warmup), n)) <= 0 and n < MAX_PROBE:
            n *= 10
        per = max(elapsed / n, 1.0)
        # One warmed-up inference misjudges a long loop (windows meant for 10 s ran 18-24 s):
        # calibrate on a run of about PROBE_SHARE of the window.
        longer = min(math.ceil(PROBE_SHARE * target_ns / per), MAX_PROBE)
        if longer > n:
            per = max(device_ns(sut, sut.run_window(longer, 0), longer) / longer, 1.0)
        return per

    def time(self, sut: "SUT", n: int) -> int:
        return device_ns(sut, sut.run_window(n, self.warmup), n)


def device_ns(sut: "SUT", elapsed: object, n: int) -> int:
    """A device's reported elapsed time, checked: a whole number of nanoseconds, not negative
    (a float, NaN or a negative figure is a SUT bug, never a throughput)."""
    if isinstance(elapsed, bool) or not isinstance(elapsed, numbers.Integral) or elapsed < 0:
        raise RunFailed(f"SUT {sut.name!r} reported {elapsed!r} as the device time of {n} "
                        "inferences; run_window() must return the elapsed device time as a whole "
                        "number of nanoseconds >= 0")
    return int(elapsed)


def run_window(sut: "SUT", sample: "np.ndarray", index: int, file: str, min_window_s: float,
               timer: Timer) -> Window:
    """One window: N calibrated from the timer's probe so the window lasts ``min_window_s``; a
    window that came out short is recalibrated from its own pace and run again (at most
    ATTEMPTS times; each short attempt is kept in the result)."""
    sut.prepare(sample)
    target_ns = min_window_s * 1e9
    n = min(MAX_ITERATIONS, max(1, math.ceil(MARGIN * target_ns / timer.probe(sut, target_ns))))
    short: list[ShortRun] = []
    while True:
        elapsed = timer.time(sut, n)
        if elapsed >= target_ns or len(short) + 1 >= ATTEMPTS or n >= MAX_ITERATIONS:
            return Window.measured(index, file, n, elapsed, short)
        short.append(ShortRun(n, round(elapsed / 1e9, 6)))
        # The pace just measured, with a margin that grows with each shortfall: a window comes
        # out short when the machine's load changes under it (its pace can double on a shared
        # 2-core host), and a longer window only costs time.
        n = min(MAX_ITERATIONS, math.ceil(n * (1.1 + 0.2 * len(short)) * target_ns / max(elapsed, 1)))


def timer_for(sut: "SUT", latency_estimate_ns: float = 0.0) -> Timer:
    return DeviceTimer() if sut.timing is Timing.DEVICE else HostTimer(latency_estimate_ns)


class WindowsPass(Pass):
    """The MLPerf Tiny view of performance: one window on the first sample of each of the first
    ``settings.windows`` files (AD: a file's first window)."""

    name = "MLPerf Tiny windows"

    def __init__(self, context, latency_estimate_ns: float = 0.0) -> None:
        super().__init__(context)
        self.latency_estimate_ns = latency_estimate_ns

    def run(self, sut: "SUT", qsl: "QSL") -> Measurement:
        settings, progress = self.ctx.settings, self.ctx.progress
        timer = timer_for(sut, self.latency_estimate_ns)
        clock = "device-timed" if sut.timing is Timing.DEVICE else "host-timed"
        # a window and its re-runs report once: the watchdog allows each attempt twice its length
        progress.phase(f"{self.name} ({clock})", settings.windows, unit="window",
                       step_s=2 * ATTEMPTS * settings.window_min_s)
        firsts = qsl.dataset.first_of_groups(settings.windows)
        qsl.load(firsts)
        done = []
        for index in firsts:
            window = run_window(sut, qsl.sample(index), index, qsl.dataset.entries[index].file,
                                settings.window_min_s, timer)
            done.append(window)
            progress.update(len(done))
            self.ctx.event("window_result", dataclasses.asdict(window))
        windows = Windows.from_windows(done, settings.window_min_s)
        return Measurement(windows=windows, reasons=windows.reasons(settings.windows))
