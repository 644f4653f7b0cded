"""Single-stream scenario (LoadGen's): run_queries, its sections, and SingleStreamPass.

Exact times come from a FakeClock that only the fake SUT moves; on the real clock, the tests assert
only what physics guarantees (a busy-wait of X ns takes at least X ns).
"""

from __future__ import annotations

import numpy as np
import pytest

from fakes import FakeClock, FakeSUT, make_samples
from tinyharness.results import ReasonCode
from tinyharness.scenarios import single_stream
from tinyharness.scenarios.single_stream import measure, run_queries


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(single_stream, "time", clock)
    return clock


# -- the contract and the stopping rule -----------------------------------------------------------

def test_one_query_in_flight_and_prepare_right_before_infer():
    samples = make_samples(8)
    sut = FakeSUT(samples=samples)
    run = run_queries(sut, samples, 1, min_duration_s=0.0, min_query_count=700)
    assert sut.violations == []
    assert run.count == len(sut.received) == len(run.latencies_ns) == sut.infer_calls == 700
    assert np.all(np.asarray(run.latencies_ns) > 0)


def test_count_binds_when_duration_is_tiny():
    samples = make_samples(4)
    sut = FakeSUT(samples=samples)
    run = run_queries(sut, samples, 3, min_duration_s=1e-6, min_query_count=5000)
    assert run.count == sut.infer_calls == 5000  # stops exactly at the count once the duration is met
    assert run.duration_s >= 1e-6
    assert run.start_ns <= run.last_issue_ns <= run.end_ns


def test_stops_at_the_first_query_issued_after_the_deadline(clock):
    sut = FakeSUT(clock=clock, infer_ns=2_000_000)  # 2 ms per query on the fake clock
    run = run_queries(sut, make_samples(4), 3, min_duration_s=0.2, min_query_count=10)
    # queries are issued at 0, 2, 4, ... ms: the first at or after 200 ms is the 101st
    assert run.count == sut.infer_calls == 101
    assert run.last_issue_ns - run.start_ns == 200_000_000 and run.duration_s == 0.2
    assert run.end_ns == run.last_issue_ns + 2_000_000  # the run ends as that query completes
    assert np.all(np.asarray(run.latencies_ns) == 2_000_000)


def test_count_binds_after_the_deadline(clock):
    sut = FakeSUT(clock=clock, infer_ns=1_000_000)
    run = run_queries(sut, make_samples(4), 3, min_duration_s=0.02, min_query_count=60)
    assert run.count == 60  # issued at 0..59 ms: the deadline (20 ms) passed long before
    assert run.duration_s == 0.059


def test_both_bind_on_the_real_clock():
    sut = FakeSUT(infer_ns=1_000_000)
    run = run_queries(sut, make_samples(4), 3, min_duration_s=0.02, min_query_count=5)
    assert run.count >= 5 and run.duration_s >= 0.02
    assert sut.infer_entries[-1] >= run.start_ns + 20_000_000


def test_max_duration_stops_at_the_first_progress_report_after_it(clock):
    reports = []
    sut = FakeSUT(clock=clock, infer_ns=100_000)
    run = run_queries(sut, make_samples(2), 0, min_duration_s=60.0, min_query_count=1,
                      max_duration_s=0.1, progress=lambda n, t: reports.append((n, t)))
    assert [t >= 0.1 for _, t in reports] == [False] * (len(reports) - 1) + [True]
    assert run.count == reports[-1][0] < 600_000  # far from the 60 s the minimum asked for
    assert [n for n, _ in reports] == sorted(n for n, _ in reports)


def test_latency_brackets_infer_on_the_real_clock():
    sut = FakeSUT(infer_ns=200_000)  # 200 us
    run = run_queries(sut, make_samples(2), 7, min_duration_s=0.0, min_query_count=300)
    assert np.asarray(run.latencies_ns).min() >= 200_000


def test_prepare_time_is_not_in_the_latency_but_in_the_issue_period(clock):
    sut = FakeSUT(clock=clock, infer_ns=50_000, prepare_ns=1_000_000)
    run = run_queries(sut, make_samples(2), 7, min_duration_s=0.0, min_query_count=100)
    assert np.all(np.asarray(run.latencies_ns) == 50_000)
    assert run.end_ns - run.start_ns == 100 * 1_050_000


def test_qps_with_and_without_overhead(clock):
    # each query: prepare 0.5 ms (untimed), infer 0.5 ms: issued at 0.5, 1.5, 2.5, ... ms
    sut = FakeSUT(clock=clock, infer_ns=500_000, prepare_ns=500_000)
    run = run_queries(sut, make_samples(2), 1, min_duration_s=0.05, min_query_count=1)
    assert run.count == 51  # the first issued at or after 50 ms: 50.5 ms
    assert run.qps_with_overhead() == pytest.approx(50 / 0.0505)  # (count - 1) / last issue
    assert run.qps_without_overhead() == pytest.approx(2000.0)  # 1 / mean latency


# -- the samples chosen ---------------------------------------------------------------------------

def _chosen(seed: int, count: int, k: int = 10) -> list[int]:
    samples = make_samples(k)
    sut = FakeSUT(samples=samples)
    run = run_queries(sut, samples, seed, min_duration_s=0.0, min_query_count=count)
    assert sut.violations == [] and run.count == count
    return sut.received


def test_samples_are_reproducible_for_the_same_seed_and_differ_for_another():
    first = _chosen(11, 2000)
    assert first == _chosen(11, 2000)
    assert first != _chosen(12, 2000)


def test_samples_chosen_uniformly_with_replacement():
    k, count = 5, 10_000
    chosen = np.array(_chosen(2024, count, k))
    counts = np.bincount(chosen, minlength=k)
    assert len(counts) == k
    assert np.all(np.abs(counts - count / k) < 200)  # Binomial(10000, 0.2): sd 40; 5 sd
    # with replacement: most blocks of k draws are not permutations (k!/k^k = 3.84 % are)
    blocks = chosen[: (count // k) * k].reshape(-1, k)
    assert sum(len(set(b)) == k for b in blocks.tolist()) < len(blocks) // 2
    assert np.any(chosen[1:] == chosen[:-1])  # repeats occur back to back


def test_every_sample_of_a_single_element_list():
    assert set(_chosen(5, 300, k=1)) == {0}


# -- sections and reasons -------------------------------------------------------------------------

def test_measure_reports_each_minimum_missed(clock):
    sut = FakeSUT(clock=clock, infer_ns=1_000_000)
    run = run_queries(sut, make_samples(2), 0, min_duration_s=0.01, min_query_count=20)
    m = measure(run, min_duration_s=0.5, min_query_count=100)  # asks more than was run
    assert {r.code for r in m.reasons} == {ReasonCode.MIN_DURATION, ReasonCode.MIN_QUERIES,
                                           ReasonCode.EARLY_STOPPING}  # 20 < 64 for a p90 estimate
    assert m.performance.queries == 20
    assert not m.performance.min_duration_met and not m.performance.min_queries_met
    assert m.latency_us.p50 == 1000.0 and m.latency_us.p90_early_stopping is None
    assert m.latencies_ns is run.latencies_ns


def test_measure_of_a_run_that_meets_everything(clock):
    sut = FakeSUT(clock=clock, infer_ns=1_000)
    run = run_queries(sut, make_samples(2), 0, min_duration_s=0.001, min_query_count=100)
    m = measure(run, min_duration_s=0.001, min_query_count=100)
    assert run.count == 1001 and m.reasons == []
    assert m.early_stopping.met and m.latency_us.p90_early_stopping == 1.0


class Reporting(FakeSUT):
    """A runtime that measures itself: its figure for query k is k (so order is checkable)."""

    reports_runtime_latency = True

    def runtime_latency_ns(self) -> int:
        return self.infer_calls


def test_a_runtimes_own_latency_is_read_after_each_query_in_order():
    run = run_queries(Reporting(), make_samples(2), 0, min_duration_s=0.0, min_query_count=300)
    assert np.asarray(run.runtime_ns).tolist() == list(range(1, 301))  # one read per query, after its infer
    m = measure(run, 0.0, 300)
    assert (m.runtime_latency_us.count, m.runtime_latency_us.max) == (300, 0.3)  # ns -> us


def test_without_one_there_is_none():
    run = run_queries(FakeSUT(), make_samples(2), 0, min_duration_s=0.0, min_query_count=10)
    assert run.runtime_ns is None and measure(run, 0.0, 10).runtime_latency_us is None
