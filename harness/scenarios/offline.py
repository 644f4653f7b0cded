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

from ..results import Measurement
from ..results.sections import Offline
from ..sut import SUT
from .base import Pass, load_performance_set, minimum_reasons


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


def _issue_into(sut: SUT, samples: Sequence[np.ndarray], completions: np.ndarray) -> int:
    """Issue one offline query; check the SUT stamped every completion after the issue."""
    start = time.perf_counter_ns()
    sut.issue_offline(samples, completions)
    if np.any(completions == 0):
        raise RuntimeError(f"SUT {sut.name!r} did not complete every offline sample")
    if np.any(completions < start):
        raise RuntimeError(f"SUT {sut.name!r} stamped offline completions before the issue: "
                           "use time.perf_counter_ns()")
    return start


def _issue(sut: SUT, samples: list[np.ndarray]) -> tuple[np.ndarray, int]:
    completions = np.zeros(len(samples), dtype=np.int64)
    start = _issue_into(sut, samples, completions)
    return completions - start, start


def probe_rate(sut: SUT, loaded: Sequence[np.ndarray], min_probe_s: float = 0.3) -> float:
    """Samples per second from growing offline queries until one lasts ``min_probe_s``."""
    from ..sut import offline_rate

    return offline_rate(lambda samples, completions: _issue_into(sut, samples, completions), loaded,
                        min_probe_s)


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


def measure(run: OfflineRun, min_duration_s: float, min_query_count: int) -> Measurement:
    reasons = minimum_reasons(run.duration_s, run.count, min_duration_s, min_query_count,
                              last="last sample completed", unit="samples", hint="; raise --expected-qps")
    offline = Offline(run.count, round(run.duration_s, 6), round(run.expected_qps, 3),
                      run.expected_qps_source, run.duration_s >= min_duration_s,
                      run.count >= min_query_count)
    return Measurement(throughput_ips=round(run.throughput_ips, 3), offline=offline, reasons=reasons,
                       latencies_ns=run.completions_ns)


class OfflinePass(Pass):
    """LoadGen's offline scenario: every sample of the run as one query."""

    name = "offline"

    def run(self, sut: SUT, qsl) -> Measurement:
        ctx, s = self.ctx, self.ctx.settings
        loaded = load_performance_set(qsl, ctx)
        ctx.progress.phase(self.name, None)
        run = run_offline(sut, loaded, s.min_duration_s, s.min_query_count, s.offline_expected_qps)
        qsl.unload()
        measured = measure(run, s.min_duration_s, s.min_query_count)
        ctx.event("result_samples_per_second", measured.throughput_ips)
        return measured
