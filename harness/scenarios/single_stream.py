"""Single-stream scenario: exactly one query in flight, the next issued when the previous completes.

The hot loop runs on the calling thread with no hand-off, no logging and no allocation between the
two clock reads: ``prepare`` (untimed) copies the sample in, the clock pair brackets ``infer`` alone,
and the latency lands in a preallocated uint32 block (latencies.py: 4 bytes a query). Sample choices are drawn in chunks outside the
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

from ..results import Measurement, Reason, ReasonCode
from ..results.sections import QPS, EarlyStoppingResult, Latency, Performance
from ..latencies import Latencies
from ..sut import SUT
from .base import Pass, load_performance_set, minimum_reasons, warm_up
from .windows import WindowsPass

ProgressFn = Callable[[int, float], None]  # (queries so far, elapsed seconds)


@dataclass(frozen=True)
class QueryRun:
    """Raw outcome of the timed single-stream run."""

    latencies_ns: Latencies
    start_ns: int
    last_issue_ns: int
    end_ns: int
    runtime_ns: Latencies | None = None  # the runtime's own figure per query, where it has one

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
        return 1e9 / self.latencies_ns.mean()


def _chunk(batch, prepare, infer, clock, out, i, deadline, need, record) -> tuple[int, int, bool]:
    """The hot loop over one chunk, writing from index ``i`` of the record's block ``out``:
    (index after the last query, last issue time, done). ``need``: queries still needed, counted
    from the block's index 0."""
    t0 = 0
    for sample in batch:
        prepare(sample)
        t0 = clock()
        infer()
        t1 = clock()
        try:
            out[i] = t1 - t0
        except OverflowError:  # past 4.29 s: kept exactly beside the block (free until it happens)
            out[i] = record.overflow(i, t1 - t0)
        i += 1
        if t0 >= deadline and i >= need:
            return i, t0, True
    return i, t0, False


def _chunk_reading(batch, prepare, infer, clock, out, i, deadline, need, record, read, read_out,
                   read_record):
    """:func:`_chunk`, also reading the runtime's own latency after each query's clock pair (a
    separate loop, so that SUTs without one keep the bare loop)."""
    t0 = 0
    for sample in batch:
        prepare(sample)
        t0 = clock()
        infer()
        t1 = clock()
        try:
            out[i] = t1 - t0
        except OverflowError:
            out[i] = record.overflow(i, t1 - t0)
        try:
            read_out[i] = read()
        except OverflowError:
            read_out[i] = read_record.overflow(i, read())
        i += 1
        if t0 >= deadline and i >= need:
            return i, t0, True
    return i, t0, False


def run_queries(sut: SUT, samples: Sequence[np.ndarray], sample_index_seed: int,
                min_duration_s: float, min_query_count: int, max_duration_s: float = 0.0,
                progress: ProgressFn | None = None) -> QueryRun:
    """Issue single-sample queries, chosen uniformly with replacement from ``samples``, until
    both the minimum duration (measured at issue time) and the minimum count are met."""
    rng = np.random.Generator(np.random.MT19937(sample_index_seed))
    loop = (sut.prepare, sut.infer, time.perf_counter_ns)
    clock = loop[2]
    record = Latencies()
    runtime = Latencies() if sut.reports_runtime_latency else None
    chunk = 16  # resized after each chunk to about a fifth of a second of queries (a slow SUT
    # reports progress, and beats the watchdog, after each of its queries)
    n = t0 = 0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        deadline = start + int(min_duration_s * 1e9)
        hard_stop = start + int(max_duration_s * 1e9) if max_duration_s > 0 else math.inf
        while True:
            out, i, room = record.space()
            size = min(chunk, room)
            batch = [samples[k] for k in rng.integers(0, len(samples), size)]
            need = min_query_count - n + i
            if runtime is None:
                end, t0, done = _chunk(batch, *loop, out, i, deadline, need, record)
            else:
                read_out, _, _ = runtime.space()
                end, t0, done = _chunk_reading(batch, *loop, out, i, deadline, need, record,
                                               sut.runtime_latency_ns, read_out, runtime)
                runtime.advance(end)
            record.advance(end)
            n += end - i
            now = clock()
            if progress is not None:
                progress(n, (now - start) / 1e9)
            if done or now >= hard_stop:
                break
            chunk = int(min(max(0.2e9 * n / max(now - start, 1), 1), 1 << 16))
    finally:
        if was_enabled:
            gc.enable()
    record.finish()
    return QueryRun(record, start, t0, now, runtime)


def query_reasons(run: QueryRun, early: EarlyStoppingResult, min_duration_s: float,
                  min_query_count: int) -> list[Reason]:
    out = minimum_reasons(run.duration_s, run.count, min_duration_s, min_query_count,
                          last="last query issued", unit="queries")
    if not early.met:
        out.append(Reason(ReasonCode.EARLY_STOPPING, f"early stopping not met: {run.count} queries, "
                          f"needs at least {early.min_queries} for a p90 estimate "
                          f"({early.min_queries - run.count} more)"))
    return out


def measure(run: QueryRun, min_duration_s: float, min_query_count: int) -> Measurement:
    """The single-stream sections of a query run, and the rules it broke."""
    early = EarlyStoppingResult.from_ns(run.latencies_ns)
    return Measurement(
        latency_us=Latency.from_ns(run.latencies_ns), early_stopping=early,
        qps=QPS(round(run.qps_with_overhead(), 3), round(run.qps_without_overhead(), 3)),
        performance=Performance(run.count, round(run.duration_s, 6),
                                run.duration_s >= min_duration_s, run.count >= min_query_count),
        reasons=query_reasons(run, early, min_duration_s, min_query_count),
        latencies_ns=run.latencies_ns,
        runtime_latency_us=None if run.runtime_ns is None else Latency.from_ns(run.runtime_ns))


class SingleStreamPass(Pass):
    """LoadGen's single-stream run over the performance set, then the MLPerf Tiny windows timed
    with the host clock (their N calibrated from the run's mean latency)."""

    name = "single-stream"

    def run(self, sut: SUT, qsl) -> Measurement:
        ctx, s = self.ctx, self.ctx.settings
        loaded = load_performance_set(qsl, ctx)
        warm_up(sut, loaded[0])
        ctx.progress.phase(self.name, s.min_duration_s, unit="s")
        run = run_queries(sut, loaded, ctx.seeds.sample_index_rng_seed, s.min_duration_s,
                          s.min_query_count, s.max_duration_s,
                          progress=lambda n, t: ctx.progress.update(min(t, s.min_duration_s), f"{n} queries"))
        measured = measure(run, s.min_duration_s, s.min_query_count)
        ctx.event("result_query_count", run.count)
        ctx.event("early_stopping_latency_ss", measured.latency_us.p90_early_stopping)
        qsl.unload()
        windows = WindowsPass(ctx, float(run.latencies_ns.mean())).run(sut, qsl)
        qsl.unload()
        measured.windows = windows.windows
        measured.reasons += windows.reasons
        return measured
