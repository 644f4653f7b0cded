"""Offline scenario: every sample of the run issued as one query; the SUT may batch or parallelise.

N = max(min_query_count, floor(1.1 x min_duration x expected samples/s)), as LoadGen; when no
expected rate is given it comes from a short untimed probe. The query holds the loaded performance
set repeated in its loaded order. Throughput = N / (last completion - issue).

A probed query that completes before the minimum duration (the probe ran slower than the real
query) is re-sized from the rate it just achieved and issued again, at most ATTEMPTS times; a rate
the user gave is never overridden: the result is INVALID and says which ``--expected-qps`` passes.

N is bounded by MAX_QUERY samples (about 16 B each while the query runs: 2 GiB; see
:data:`~tinyharness.settings.MAX_QUERY_SAMPLES`). A given rate that asks for more is a UsageError
before anything is allocated (LoadGen honours a given rate exactly, so it is never silently
changed); a probed or recalibrated rate is the harness's own estimate, so its query is capped at
the bound and the cap recorded: validity is still judged on the query as run (a capped query that
ends before the minimum duration is INVALID and says so).

The SUT's completion stamps are checked after the query returns (outside the timed region): one
per sample, each within [issue, return] on ``time.perf_counter_ns``; a stamp outside is RunFailed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import RunFailed, UsageError
from ..results import Measurement
from ..results.sections import Offline, ShortQuery
from ..settings import (MAX_EXPECTED_QPS, MAX_QUERY_SAMPLES, check_expected_qps, check_offline_query,
                        offline_samples)
from ..sut import SUT
from .base import Pass, load_performance_set, minimum_reasons


ATTEMPTS = 3
MAX_QUERY = MAX_QUERY_SAMPLES  # samples in one offline query: ~16 B each while it runs, 2 GiB


@dataclass(frozen=True)
class OfflineRun:
    completions_ns: np.ndarray  # completion time of each sample, relative to the issue
    start_ns: int
    expected_qps: float
    expected_qps_source: str  # "given", "probe" or "recalibrated"
    short_runs: tuple[ShortQuery, ...] = ()
    capped_from: int | None = None  # LoadGen's N for the rate, when it was capped at MAX_QUERY

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
    """Issue one offline query and return its issue time; then (untimed) check that the SUT
    stamped every sample's completion within [issue, return] of the query."""
    start = time.perf_counter_ns()
    sut.issue_offline(samples, completions)
    end = time.perf_counter_ns()
    check_stamps(sut, completions, start, end)
    return start


def check_stamps(sut: SUT, completions: np.ndarray, start: int, end: int) -> None:
    """RunFailed naming the first sample whose completion stamp is missing (0) or lies outside
    [start, end]: a SUT that stamps on another clock, or in the future, would otherwise make any
    throughput it likes. Two reductions, no temporaries, when all is well."""
    if len(completions) == 0 or (int(completions.min()) >= start and int(completions.max()) <= end):
        return
    bad = int(np.flatnonzero((completions < start) | (completions > end))[0])
    stamp = int(completions[bad])
    if stamp == 0:
        raise RunFailed(f"SUT {sut.name!r} did not complete every offline sample: sample {bad} of "
                        f"{len(completions)} has no completion stamp; issue_offline() must stamp "
                        "each sample with time.perf_counter_ns() when it completes")
    where = "before the issue" if stamp < start else "after issue_offline() returned"
    offset = (stamp - start) / 1e9
    raise RunFailed(f"SUT {sut.name!r} stamped offline sample {bad} of {len(completions)} "
                    f"{where} ({offset:+.6f} s from the issue, the call lasted "
                    f"{(end - start) / 1e9:.6f} s); stamp each completion with "
                    "time.perf_counter_ns() when it happens, within the call")


def query_of(loaded: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    """LoadGen's offline query: the loaded set repeated in its loaded order, then a prefix of it,
    ``n`` references in all (8 B each; built at C speed, not one Python step per sample)."""
    whole, rest = divmod(n, len(loaded))
    query = list(loaded) * whole
    query += loaded[:rest]
    return query


def _issue(sut: SUT, samples: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One query; its completion stamps made relative to the issue in place (no second array)."""
    completions = np.zeros(len(samples), dtype=np.int64)
    start = _issue_into(sut, samples, completions)
    completions -= start
    return completions, start


def probe_rate(sut: SUT, loaded: Sequence[np.ndarray], min_probe_s: float = 0.3) -> float:
    """Samples per second from growing offline queries until one lasts ``min_probe_s``."""
    from ..sut import offline_rate

    return offline_rate(lambda samples, completions: _issue_into(sut, samples, completions), loaded,
                        min_probe_s)


def query_size(min_query_count: int, min_duration_s: float, expected_qps: float) -> int:
    """LoadGen's N, bounded by MAX_QUERY (a wrong rate must not allocate without limit)."""
    return min(wanted_size(min_query_count, min_duration_s, expected_qps), MAX_QUERY)


def wanted_size(min_query_count: int, min_duration_s: float, expected_qps: float) -> int:
    """LoadGen's N before the bound (finite inputs)."""
    return offline_samples(min_query_count, min_duration_s, expected_qps)


def run_offline(sut: SUT, loaded: Sequence[np.ndarray], min_duration_s: float,
                min_query_count: int, expected_qps: float | None = None) -> OfflineRun:
    if min_query_count > MAX_QUERY:  # TestSettings refuses it; this guards API callers
        raise UsageError(f"--min-queries {min_query_count} is more than the {MAX_QUERY} samples one "
                         f"offline query holds; give --min-queries {MAX_QUERY} or less")
    source = "given"
    if expected_qps is None:
        # A margin over LoadGen's 1.1 so that a probe that ran a little fast still meets the duration.
        expected_qps, source = 1.15 * probe_rate(sut, loaded), "probe"
    else:  # a given rate is honoured exactly, or refused before anything is allocated
        expected_qps = check_expected_qps(expected_qps)
        check_offline_query(min_query_count, min_duration_s, expected_qps, bound=MAX_QUERY)
    short: list[ShortQuery] = []
    while True:
        wanted = wanted_size(min_query_count, min_duration_s, expected_qps)
        n = min(wanted, MAX_QUERY)
        run = relative = None  # the previous attempt's stamps are freed before the next query
        relative, start = _issue(sut, query_of(loaded, n))
        run = OfflineRun(relative, start, expected_qps, source, tuple(short),
                         wanted if wanted > n else None)
        if run.duration_s >= min_duration_s or source == "given" or len(short) + 1 >= ATTEMPTS:
            return run
        if run.capped_from is not None:  # a larger query is not allowed: this is the result
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


def shortfall_hint(run: OfflineRun, min_duration_s: float) -> str:
    """What would make a short query last the minimum duration: a larger ``--expected-qps``, or,
    when no query within MAX_QUERY lasts that long at this rate, the bound itself."""
    if run.throughput_ips <= 0:
        return ""
    qps = passing_qps(run)
    if run.capped_from is not None or wanted_size(1, min_duration_s, qps) > MAX_QUERY:
        return (f"; at this query's {run.throughput_ips:.0f} samples/s no offline query within the "
                f"{MAX_QUERY}-sample bound lasts {min_duration_s:g} s")
    if qps > MAX_EXPECTED_QPS:
        return f"; this query did {run.throughput_ips:.0f} samples/s"
    return f"; --expected-qps {qps} would pass (this query did {run.throughput_ips:.0f} samples/s)"


def measure(run: OfflineRun, min_duration_s: float, min_query_count: int) -> Measurement:
    hint = shortfall_hint(run, min_duration_s)
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
            _issue(sut, query_of(loaded, 64))
        # the probe and up to ATTEMPTS queries report nothing until they end: the watchdog
        # allows each twice the minimum duration
        ctx.progress.phase(self.name, None, step_s=2 * (ATTEMPTS + 1) * max(s.min_duration_s, 1.0))
        run = run_offline(sut, loaded, s.min_duration_s, s.min_query_count, s.offline_expected_qps)
        qsl.unload()
        measured = measure(run, s.min_duration_s, s.min_query_count)
        for short in run.short_runs:
            ctx.event("offline_short_query", dataclasses.asdict(short))
        if run.capped_from is not None:
            ctx.event("offline_query_capped", {"samples": run.count, "wanted": run.capped_from,
                                               "expected_qps": round(run.expected_qps, 3),
                                               "expected_qps_source": run.expected_qps_source})
        ctx.event("result_samples_per_second", measured.throughput_ips)
        return measured
