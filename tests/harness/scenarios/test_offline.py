"""Offline scenario: query size (LoadGen's formula), the samples issued, completion stamps, the probe,
parallel lanes, and the measured sections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakes import FakeClock, OfflineFake, make_samples
from tinyharness import sut as sut_module
from tinyharness.results import ReasonCode
from tinyharness.scenarios import offline
from tinyharness.scenarios.offline import measure, probe_rate, query_size, run_offline
from tinyharness.sut import SUTError


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """One fake clock for the offline scenario, the probe and the default issue_offline."""
    clock = FakeClock()
    monkeypatch.setattr(offline, "time", clock)
    monkeypatch.setattr(sut_module, "time", clock)
    return clock


@pytest.mark.parametrize(
    ("min_count", "duration", "qps", "expected"),
    [
        (100, 2.0, 123.4, 271),  # 1.1 * 2 * 123.4 = 271.48
        (1024, 3.0, 200.0, 1024),  # 660 < 1024: the count wins
        (1, 0.5, 1000.7, 550),  # 550.385
        (24_576, 600.0, 1000.0, 660_000),  # 1.1 * 600 * 1000
        (7, 0.0, 1e6, 7),  # no duration: just the count
        (1, 1.0, 0.5, 1),  # floor(0.55) = 0 -> the minimum count
    ],
)
def test_query_size(min_count, duration, qps, expected):
    assert query_size(min_count, duration, qps) == expected


def test_run_offline_issues_loaded_samples_in_order_repeated():
    loaded = make_samples(7)
    sut = OfflineFake("offline")
    run = run_offline(sut, loaded, min_duration_s=0.1, min_query_count=10, expected_qps=1234.0)
    assert len(sut.queries) == 1  # no probe when the rate is given
    assert run.count == len(sut.queries[0]) == 135  # floor(1.1 * 0.1 * 1234) = floor(135.74)
    assert all(sample is loaded[i % 7] for i, sample in enumerate(sut.queries[0]))
    assert (run.expected_qps, run.expected_qps_source) == (1234.0, "given")


def test_run_offline_count_binds_with_low_expected_qps():
    loaded = make_samples(3)
    sut = OfflineFake("offline")
    run = run_offline(sut, loaded, min_duration_s=0.1, min_query_count=50, expected_qps=10.0)
    assert run.count == 50  # floor(1.1) = 1 < 50
    assert [id(s) for s in sut.queries[0]] == [id(loaded[i % 3]) for i in range(50)]


def test_throughput_is_count_over_last_completion(clock):
    # sample i completes (i + 1) ms after the issue
    sut = OfflineFake("offline", stamp_ns=1_000_000, clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=200, expected_qps=1.0)
    assert run.count == 200
    assert np.array_equal(run.completions_ns + run.start_ns, sut.stamps[0])  # kept relative to the issue
    assert run.duration_s == 0.2 and run.throughput_ips == 1000.0


def test_duration_is_the_latest_completion_not_the_last_sample(clock):
    # the first sample completes last
    sut = OfflineFake("offline", stamp_ns=1_000_000, reverse=True, clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=100, expected_qps=1.0)
    assert run.completions_ns[0] > run.completions_ns[-1]
    assert run.duration_s == 0.1 and run.throughput_ips == 1000.0


def test_a_sample_left_without_completion_raises():
    sut = OfflineFake("offline", leave_zero=True)
    with pytest.raises(RuntimeError, match="fake-offline"):
        run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=20, expected_qps=1.0)


def test_completions_stamped_before_the_issue_raise(clock):
    sut = OfflineFake("offline")
    sut.issue_offline = lambda samples, completions: completions.fill(1)  # a clock of its own
    with pytest.raises(RuntimeError, match="before the issue"):
        run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=5, expected_qps=1.0)


# -- the probe ------------------------------------------------------------------------------------

def test_probe_grows_queries_until_one_lasts_long_enough(clock):
    sut = OfflineFake("offline", infer_ns=100_000, clock=clock)  # 100 us per sample: 10 000 samples/s
    rate = probe_rate(sut, make_samples(1), min_probe_s=0.3)
    # 64 samples last 6.4 ms: x min(16, ceil(0.3 / 0.0064)) -> 1024 last 102.4 ms: x3 -> 3072 last 0.3072 s
    assert [len(q) for q in sut.queries] == [64, 1024, 3072]
    assert rate == pytest.approx(10_000.0)


def test_probe_path_sizes_the_query_from_the_probed_rate(clock):
    loaded = make_samples(5)
    sut = OfflineFake("offline", infer_ns=100_000, clock=clock)
    run = run_offline(sut, loaded, min_duration_s=0.1, min_query_count=1)
    assert run.expected_qps_source == "probe"
    assert run.expected_qps == pytest.approx(11_500.0)  # 1.15 x the probed 10 000 samples/s
    assert run.count == len(sut.queries[-1]) == math.floor(1.1 * 0.1 * run.expected_qps)
    assert run.duration_s == pytest.approx(run.count * 100e-6) and run.duration_s >= 0.1
    assert all(s is loaded[i % 5] for i, s in enumerate(sut.queries[-1]))


def test_probe_on_the_real_clock_cannot_beat_the_busy_time():
    sut = OfflineFake("offline", infer_ns=200_000)  # at most 5000 samples/s
    rate = probe_rate(sut, make_samples(1), min_probe_s=0.05)
    sizes = [len(q) for q in sut.queries]
    assert sizes[0] == 64
    assert all(2 * a <= b <= 16 * a for a, b in zip(sizes, sizes[1:]))  # x2 to x16 per step
    spans = [(int(s.max()) - entry) / 1e9 for s, entry in zip(sut.stamps, sut.entries)]
    assert all(span < 0.05 for span in spans[:-1])  # each earlier query was too short...
    assert rate <= sizes[-1] / 0.05  # ...and the last lasted min_probe_s
    # the harness's span starts before the SUT's: no faster than the SUT saw, nor than 200 us each
    assert rate <= sizes[-1] / spans[-1] <= 5000 * 1.000001


# -- lanes ----------------------------------------------------------------------------------------

def test_lanes_run_strided_samples_in_order_each_completion_after_the_issue():
    loaded = make_samples(10)
    sut = OfflineFake("offline", lanes=3, infer_ns=20_000)
    run = run_offline(sut, loaded, min_duration_s=0.0, min_query_count=100, expected_qps=1.0)
    for k in range(3):  # lane k runs samples k, k + 3, k + 6, ... in that order
        assert sut.lane_log[k] == [float(i % 10) for i in range(k, 100, 3)]
        lane = run.completions_ns[k::3]
        assert np.all(np.diff(lane) >= 20_000)  # monotonic: each after the lane's previous busy time
    assert np.all(run.completions_ns >= 20_000)


def test_a_lane_that_raises_is_a_sut_error():
    sut = OfflineFake("offline", lanes=2, fail_after=0)
    sut._lane = lambda k: (np.zeros(1, np.float32), sut.infer)  # each lane calls the failing infer()
    with pytest.raises(SUTError, match="device fell over"):
        run_offline(sut, make_samples(2), min_duration_s=0.0, min_query_count=8, expected_qps=1.0)


# -- sections and reasons -------------------------------------------------------------------------

def test_measure_reports_a_short_query(clock):
    sut = OfflineFake("offline", stamp_ns=1_000_000, clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=50, expected_qps=1.0)
    m = measure(run, min_duration_s=0.2, min_query_count=100)  # 50 samples in 50 ms
    assert [r.code for r in m.reasons] == [ReasonCode.MIN_DURATION, ReasonCode.MIN_QUERIES]
    assert "--expected-qps" in m.reasons[0].message
    assert (m.offline.samples, m.offline.duration_s, m.throughput_ips) == (50, 0.05, 1000.0)
    assert not m.offline.min_duration_met and not m.offline.min_queries_met
    assert measure(run, min_duration_s=0.05, min_query_count=50).reasons == []


# -- a short query is re-sized, not left INVALID -----------------------------------------------------

class SpeedsUp(OfflineFake):
    """Runs ``infer_ns`` per sample for the probe's queries, 4x faster once a query is large: the
    probe underestimates the rate, as a cold cache or a busy neighbour makes it do."""

    def busy(self, ns: int) -> None:
        super().busy(ns // 4 if len(self.queries[-1]) > 5000 else ns)


def test_a_probed_query_that_came_out_short_is_resized_from_its_own_rate(clock):
    sut = SpeedsUp("offline", infer_ns=100_000, clock=clock)  # probe: 10 000/s, real: 40 000/s
    run = run_offline(sut, make_samples(3), min_duration_s=1.0, min_query_count=1)
    first = run.short_runs[0]
    assert first.samples == math.floor(1.1 * 1.0 * 11_500) and first.duration_s < 1.0  # 12 650 in 0.32 s
    assert run.expected_qps_source == "recalibrated" and run.duration_s >= 1.0
    assert run.expected_qps == pytest.approx(1.1 * first.samples / first.duration_s)
    m = measure(run, 1.0, 1)
    assert m.reasons == [] and m.offline.attempts == 2 and m.offline.short_runs == [first]


def test_a_given_rate_is_never_overridden_and_the_reason_names_one_that_passes(clock):
    sut = OfflineFake("offline", infer_ns=100_000, clock=clock)  # 10 000 samples/s
    run = run_offline(sut, make_samples(1), min_duration_s=1.0, min_query_count=1, expected_qps=5000.0)
    assert len(sut.queries) == 1 and run.short_runs == ()  # 5 500 samples in 0.55 s, as asked
    [reason] = measure(run, 1.0, 1).reasons
    assert reason.code is ReasonCode.MIN_DURATION
    assert "--expected-qps 11000 would pass (this query did 10000 samples/s)" in reason.message
    again = run_offline(OfflineFake("offline", infer_ns=100_000, clock=clock), make_samples(1),
                        min_duration_s=1.0, min_query_count=1, expected_qps=11000.0)
    assert again.duration_s >= 1.0  # the named setting does pass


def test_recalibration_is_bounded(clock, monkeypatch):
    class NeverLongEnough(OfflineFake):  # every query completes in 1 ms, whatever its size
        def issue_offline(self, samples, completions) -> None:
            self.queries.append(list(samples))
            completions[:] = self.now() + 1_000_000
    monkeypatch.setattr(offline, "probe_rate", lambda sut, loaded: 1000.0)
    sut = NeverLongEnough("offline", clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.002, min_query_count=1)
    assert len(sut.queries) == offline.ATTEMPTS and len(run.short_runs) == offline.ATTEMPTS - 1
    assert run.duration_s < 0.002 and [len(q) for q in sut.queries] == sorted(len(q) for q in sut.queries)


def test_the_query_size_is_bounded():
    assert query_size(1, 3.0, 1e12) == offline.MAX_QUERY  # a wild probe cannot ask for terabytes
