"""Offline scenario: every sample of the run issued as one query; the SUT may batch or parallelise.

N = max(min_query_count, floor(1.1 x min_duration x expected samples/s)), as LoadGen; when no
expected rate is given it comes from a short untimed probe. The query holds the loaded performance
set repeated in its loaded order. Throughput = N / (last completion - issue).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..sut import SUT


@dataclass(frozen=True)
class OfflineRun:
    completions_ns: np.ndarray  # completion time of each sample, relative to the issue
    start_ns: int
    expected_qps: float
    expected_qps_source: str  # "given" or "probe"

    @property
    def count(self) -> int:
        return len(self.completions_ns)

    @property
    def duration_s(self) -> float:
        return float(self.completions_ns.max()) / 1e9

    @property
    def throughput_ips(self) -> float:
        return self.count / self.duration_s if self.duration_s > 0 else 0.0


def _issue(sut: SUT, samples: list[np.ndarray]) -> tuple[np.ndarray, int]:
    completions = np.zeros(len(samples), dtype=np.int64)
    start = time.perf_counter_ns()
    sut.issue_offline(samples, completions)
    if np.any(completions == 0):
        raise RuntimeError(f"SUT {sut.name!r} did not complete every offline sample")
    if np.any(completions < start):
        raise RuntimeError(f"SUT {sut.name!r} stamped offline completions before the issue: "
                           "use time.perf_counter_ns()")
    return completions - start, start


def probe_rate(sut: SUT, loaded: Sequence[np.ndarray], min_probe_s: float = 0.3) -> float:
    """Samples per second from doubling-size offline queries until one lasts ``min_probe_s``."""
    n = 64
    while True:
        relative, _ = _issue(sut, [loaded[i % len(loaded)] for i in range(n)])
        span = float(relative.max()) / 1e9
        if span >= min_probe_s or n >= 1 << 22:
            return n / span
        n *= 2 if span <= 0 else max(2, min(16, math.ceil(min_probe_s / span)))


def query_size(min_query_count: int, min_duration_s: float, expected_qps: float) -> int:
    return max(min_query_count, math.floor(1.1 * min_duration_s * expected_qps))


def run_offline(sut: SUT, loaded: Sequence[np.ndarray], min_duration_s: float,
                min_query_count: int, expected_qps: float | None = None) -> OfflineRun:
    source = "given"
    if expected_qps is None:
        # A margin over LoadGen's 1.1 so that a probe that ran a little fast still meets the duration.
        expected_qps, source = 1.15 * probe_rate(sut, loaded), "probe"
    n = query_size(min_query_count, min_duration_s, expected_qps)
    samples = [loaded[i % len(loaded)] for i in range(n)]
    relative, start = _issue(sut, samples)
    return OfflineRun(relative, start, expected_qps, source)
