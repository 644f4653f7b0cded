"""Offline scenario: every sample of the run issued as one query; the SUT may batch or parallelise.

N = max(min_query_count, floor(1.1 x min_duration x expected samples/s)), as LoadGen; when no
expected rate is given it comes from a short untimed probe. The query holds the loaded performance
set repeated in its loaded order. Throughput = N / (last completion - issue).

A probed query that completes before the minimum duration (the probe ran slower than the real
query) is re-sized from the rate it just achieved and issued again, at most ATTEMPTS times; a rate
the user gave is never overridden: the result is INVALID and says which ``--expected-qps`` passes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..results import Measurement
from ..results.sections import Offline, ShortQuery
from ..sut import SUT
from .base import Pass, load_performance_set, minimum_reasons


ATTEMPTS = 3
MAX_QUERY = 1 << 27  # samples in one offline query: about 2 GiB of references and stamps


@dataclass(frozen=True)
class OfflineRun:
    completions_ns: np.ndarray  # completion time of each sample, relative to the issue
    start_ns: int
    expected_qps: float
    expected_qps_source: str  # "given", "probe" or "recalibrated"
    short_runs: tuple[ShortQuery, ...] = ()

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
    """LoadGen's N, bounded by MAX_QUERY (a wrong rate must not allocate without limit)."""
    return min(max(min_query_count, math.floor(1.1 * min_duration_s * expected_qps)), MAX_QUERY)


def run_offline(sut: SUT, loaded: Sequence[np.ndarray], min_duration_s: float,
                min_query_count: int, expected_qps: float | None = None) -> OfflineRun:
    source = "given"
    if expected_qps is None:
        # A margin over LoadGen's 1.1 so that a probe that ran a little fast still meets the duration.
        expected_qps, source = 1.15 * probe_rate(sut, loaded), "probe"
    short: list[ShortQuery] = []
    while True:
        n = query_size(min_query_count, min_duration_s, expected_qps)
        relative, start = _issue(sut, [loaded[i % len(loaded)] for i in range(n)])
        run = OfflineRun(relative, start, expected_qps, source, tuple(short))
        if run.duration_s >= min_duration_s or source == "given" or len(short) + 1 >= ATTEMPTS:
            return run
        short.append(ShortQuery(n, round(run.duration_s, 6), round(expected_qps, 3)))
        # the rate just achieved, with a margin that grows with each shortfall
        expected_qps, source = run.throughput_ips * (1.05 + 0.05 * len(short)), "recalibrated"


def passing_qps(run: OfflineRun) -> int:
    """An ``--expected-qps`` that would have met the minimum duration at this run's rate: N then
    lasts 1.1 x 1.1 x the minimum (two significant digits, rounded up)."""
    wanted = 1.1 * run.throughput_ips
    step = 10 ** max(0, math.floor(math.log10(max(wanted, 1))) - 1)
    return int(math.ceil(wanted / step) * step)


def measure(run: OfflineRun, min_duration_s: float, min_query_count: int) -> Measurement:
    hint = (f"; --expected-qps {passing_qps(run)} would pass (this query did "
            f"{run.throughput_ips:.0f} samples/s)")
    reasons = minimum_reasons(run.duration_s, run.count, min_duration_s, min_query_count,
                              last="last sample completed", unit="samples", hint=hint)
    offline = Offline(run.count, round(run.duration_s, 6), round(run.expected_qps, 3),
                      run.expected_qps_source, run.duration_s >= min_duration_s,
                      run.count >= min_query_count, len(run.short_runs) + 1, list(run.short_runs))
    return Measurement(throughput_ips=round(run.throughput_ips, 3), offline=offline, reasons=reasons,
                       latencies_ns=run.completions_ns)


class OfflinePass(Pass):
    """LoadGen's offline scenario: every sample of the run as one query."""

    name = "offline"

    def run(self, sut: SUT, qsl) -> Measurement:
        ctx, s = self.ctx, self.ctx.settings
        loaded = load_performance_set(qsl, ctx)
        if s.offline_expected_qps is not None:  # else the probe warms the SUT up
            _issue(sut, [loaded[i % len(loaded)] for i in range(64)])
        ctx.progress.phase(self.name, None)
        run = run_offline(sut, loaded, s.min_duration_s, s.min_query_count, s.offline_expected_qps)
        qsl.unload()
        measured = measure(run, s.min_duration_s, s.min_query_count)
        for short in run.short_runs:
            ctx.event("offline_short_query", dataclasses.asdict(short))
        ctx.event("result_samples_per_second", measured.throughput_ips)
        return measured
