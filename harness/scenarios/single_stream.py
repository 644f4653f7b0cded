"""Single-stream scenario: exactly one query in flight, the next issued when the previous completes.

The hot loop runs on the calling thread with no hand-off, no logging and no allocation between the
two clock reads: ``prepare`` (untimed) copies the sample in, the clock pair brackets ``infer`` alone,
and the latency lands in a preallocated int64 buffer. Sample choices are drawn in chunks outside the
timed region; progress is reported between chunks. The garbage collector is paused during the run
so that a collection cannot land inside a query.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..sut import SUT

ProgressFn = Callable[[int, float], None]  # (queries so far, elapsed seconds)


@dataclass(frozen=True)
class QueryRun:
    """Raw outcome of the timed single-stream run."""

    latencies_ns: np.ndarray
    start_ns: int
    last_issue_ns: int
    end_ns: int

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    @property
    def duration_s(self) -> float:
        return (self.last_issue_ns - self.start_ns) / 1e9

    def qps_with_overhead(self) -> float:
        """LoadGen: (count - 1) / issue time of the last query."""
        span = self.last_issue_ns - self.start_ns
        return (self.count - 1) / (span / 1e9) if span > 0 else 0.0

    def qps_without_overhead(self) -> float:
        """LoadGen: 1 / mean latency."""
        return 1e9 / float(self.latencies_ns.mean())


def run_queries(sut: SUT, samples: Sequence[np.ndarray], sample_index_seed: int,
                min_duration_s: float, min_query_count: int, max_duration_s: float = 0.0,
                progress: ProgressFn | None = None) -> QueryRun:
    """Issue single-sample queries, chosen uniformly with replacement from ``samples``, until
    both the minimum duration (measured at issue time) and the minimum count are met."""
    rng = np.random.Generator(np.random.MT19937(sample_index_seed))
    prepare, infer, clock = sut.prepare, sut.infer, time.perf_counter_ns
    buffer = np.empty(max(min_query_count, 1 << 14), dtype=np.int64)
    chunk = 256  # resized after each chunk to about a fifth of a second of queries
    n = 0
    t0 = 0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        deadline = start + int(min_duration_s * 1e9)
        hard_stop = start + int(max_duration_s * 1e9) if max_duration_s > 0 else math.inf
        while True:
            batch = [samples[i] for i in rng.integers(0, len(samples), chunk)]
            if n + chunk > len(buffer):
                grown = np.empty(2 * (n + chunk), dtype=np.int64)
                grown[:n] = buffer[:n]
                buffer = grown
            done = False
            for sample in batch:
                prepare(sample)
                t0 = clock()
                infer()
                t1 = clock()
                buffer[n] = t1 - t0
                n += 1
                if t0 >= deadline and n >= min_query_count:
                    done = True
                    break
            now = clock()
            if progress is not None:
                progress(n, (now - start) / 1e9)
            if done or now >= hard_stop:
                break
            chunk = int(min(max(0.2e9 * n / max(now - start, 1), 64), 1 << 16))
    finally:
        if was_enabled:
            gc.enable()
    return QueryRun(buffer[:n].copy(), start, t0, now)


@dataclass(frozen=True)
class Window:
    """One MLPerf Tiny performance window: one sample inferred N times back to back."""

    sample_index: int
    file: str
    inferences: int
    runtime_s: float
    attempts: int

    @property
    def throughput_ips(self) -> float:
        return self.inferences / self.runtime_s


def run_window(sut: SUT, sample: np.ndarray, index: int, file: str, min_window_s: float,
               latency_estimate_ns: float, warmup: int = 10) -> Window:
    """Like the DUT's ``infer N W``: W warm-up inferences, then N timed back to back as a whole.

    N is calibrated from the single-stream latency so the window lasts at least ``min_window_s``;
    a window that still came out short is run again with a larger N (as a user tunes N per device).
    """
    sut.prepare(sample)
    infer, clock = sut.infer, time.perf_counter_ns
    t = clock()
    for _ in range(warmup):
        infer()
    # The warm-up's own pace bounds a too-small estimate (which would make N huge).
    estimate = max(latency_estimate_ns, (clock() - t) / max(warmup, 1) / 2, 1.0)
    target_ns = min_window_s * 1e9
    n = max(1, math.ceil(1.05 * target_ns / estimate))
    attempts = 0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            attempts += 1
            loop = range(n)
            t0 = clock()
            for _ in loop:
                infer()
            elapsed = clock() - t0
            if elapsed >= target_ns or attempts >= 4:
                break
            n = math.ceil(n * 1.1 * target_ns / max(elapsed, 1))
    finally:
        if was_enabled:
            gc.enable()
    return Window(index, file, n, elapsed / 1e9, attempts)


def run_device_window(sut: SUT, sample: np.ndarray, index: int, file: str, min_window_s: float,
                      warmup: int = 10) -> Window:
    """A window on a device-timed SUT: the device runs ``infer N W`` and reports its own elapsed
    time. N comes from a one-inference probe, then grows until the window lasts ``min_window_s``."""
    sut.prepare(sample)
    target_ns = min_window_s * 1e9
    per_inference = max(sut.run_window(1, 0), 1)  # device clock: may read 0 for a fast model
    n = max(1, math.ceil(1.05 * target_ns / per_inference))
    attempts = 0
    while True:
        attempts += 1
        elapsed = sut.run_window(n, warmup)
        if elapsed >= target_ns or attempts >= 4:
            break
        n = math.ceil(n * 1.1 * target_ns / max(elapsed, 1))
    return Window(index, file, n, elapsed / 1e9, attempts)
