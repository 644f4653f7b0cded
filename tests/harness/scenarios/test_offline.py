"""Offline scenario: query size (LoadGen's formula), the samples issued, completion stamps, the probe,
parallel lanes, and the measured sections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakes import FakeClock, OfflineFake, make_samples
from tinyharness import sut as sut_module
from tinyharness.errors import RunFailed, UsageError
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


class Stamping(OfflineFake):
    """``stamp_ns`` stamps, and the query lasts until its latest stamp: the fake clock moves there
    before issue_offline() returns, as a SUT that really completed those samples would."""

    def issue_offline(self, samples, completions) -> None:
        super().issue_offline(samples, completions)
        self.fake_clock.now = max(self.fake_clock.now, int(completions.max()))


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
    sut = Stamping("offline", stamp_ns=1_000_000, clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=200, expected_qps=1.0)
    assert run.count == 200
    assert np.array_equal(run.completions_ns + run.start_ns, sut.stamps[0])  # kept relative to the issue
    assert run.duration_s == 0.2 and run.throughput_ips == 1000.0


def test_duration_is_the_latest_completion_not_the_last_sample(clock):
    # the first sample completes last
    sut = Stamping("offline", stamp_ns=1_000_000, reverse=True, clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=100, expected_qps=1.0)
    assert run.completions_ns[0] > run.completions_ns[-1]
    assert run.duration_s == 0.1 and run.throughput_ips == 1000.0


def test_a_sample_left_without_completion_fails_the_run_naming_it():
    sut = OfflineFake("offline", leave_zero=True)
    with pytest.raises(RunFailed, match="'fake-offline' did not complete every offline sample: "
                                        "sample 10 of 20 has no completion stamp"):
        run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=20, expected_qps=1.0)


def test_completions_stamped_before_the_issue_fail_the_run(clock):
    sut = OfflineFake("offline")
    sut.issue_offline = lambda samples, completions: completions.fill(1)  # a clock of its own
    with pytest.raises(RunFailed, match="stamped offline sample 0 of 5 before the issue"):
        run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=5, expected_qps=1.0)


def test_completions_stamped_after_the_call_returned_fail_the_run():
    # the issue's case: real clock, a query of a few ms, one stamp 10^6 s in the future; it was
    # VALID at 0.022 samples/s over a "duration" of 10^6 s
    class Future(OfflineFake):
        def issue_offline(self, samples, completions) -> None:
            super().issue_offline(samples, completions)
            completions[7] += 10**15

    with pytest.raises(RunFailed) as info:
        run_offline(Future("offline"), make_samples(3), min_duration_s=0.0, min_query_count=20,
                    expected_qps=1.0)
    message = str(info.value)
    assert "stamped offline sample 7 of 20 after issue_offline() returned" in message
    assert "+1000000.0" in message and "\n" not in message


def test_a_stamp_in_the_future_on_the_fake_clock_is_caught_exactly_at_the_return(clock):
    # stamps (i + 1) ms after the issue while the call takes no time at all on this clock
    sut = OfflineFake("offline", stamp_ns=1_000_000, clock=clock)
    with pytest.raises(RunFailed, match="sample 0 of 4 after issue_offline"):
        run_offline(sut, make_samples(1), min_duration_s=0.0, min_query_count=4, expected_qps=1.0)
    # the same stamps with the clock at the last one when the call returns: accepted
    run = run_offline(Stamping("offline", stamp_ns=1_000_000, clock=clock), make_samples(1),
                      min_duration_s=0.0, min_query_count=4, expected_qps=1.0)
    assert run.completions_ns.tolist() == [1_000_000, 2_000_000, 3_000_000, 4_000_000]


def test_the_probe_checks_stamps_too(clock):
    sut = OfflineFake("offline", stamp_ns=1_000, clock=clock)  # in the future, never advancing
    with pytest.raises(RunFailed, match="after issue_offline"):
        probe_rate(sut, make_samples(1))


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
    sut = Stamping("offline", stamp_ns=1_000_000, clock=clock)
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
            self.busy(1_000_000)
            completions[:] = self.now()
    monkeypatch.setattr(offline, "probe_rate", lambda sut, loaded: 1000.0)
    sut = NeverLongEnough("offline", clock=clock)
    run = run_offline(sut, make_samples(1), min_duration_s=0.002, min_query_count=1)
    assert len(sut.queries) == offline.ATTEMPTS and len(run.short_runs) == offline.ATTEMPTS - 1
    assert run.duration_s < 0.002 and [len(q) for q in sut.queries] == sorted(len(q) for q in sut.queries)


def test_the_query_size_is_bounded():
    assert query_size(1, 3.0, 1e12) == offline.MAX_QUERY  # a wild probe cannot ask for terabytes


# -- the query's bound (#18) ----------------------------------------------------------------------

class Refuses(OfflineFake):
    """Fails the test if a query reaches it: a refused setting must be refused before the issue."""

    def issue_offline(self, samples, completions) -> None:
        raise AssertionError(f"a query of {len(samples)} samples was issued")


def test_a_given_rate_beyond_the_bound_is_a_usage_error_before_any_query(monkeypatch):
    monkeypatch.setattr(offline, "MAX_QUERY", 1000)
    # 1.1 x 1 s x 1000 samples/s = 1100 samples > 1000: LoadGen would honour it, so it is refused
    with pytest.raises(UsageError) as info:
        run_offline(Refuses("offline"), make_samples(2), min_duration_s=1.0, min_query_count=1,
                    expected_qps=1000.0)
    message = str(info.value)
    assert message.startswith("--expected-qps 1000 with a 1 s minimum duration sizes an offline "
                              "query of 1100 samples, more than the 1000 one run holds")
    assert "--expected-qps 909 or less" in message and "\n" not in message  # floor(1000 / 1.1)
    # at the bound exactly, the query runs
    run = run_offline(OfflineFake("offline"), make_samples(2), min_duration_s=1.0,
                      min_query_count=1, expected_qps=909.0)
    assert run.count == 999 and run.capped_from is None


@pytest.mark.parametrize("qps", [math.inf, math.nan, 0.0, -1.0, 1e12])
def test_a_given_rate_that_is_not_a_rate_is_a_usage_error(qps):
    with pytest.raises(UsageError, match="--expected-qps"):
        run_offline(Refuses("offline"), make_samples(2), min_duration_s=1.0, min_query_count=1,
                    expected_qps=qps)


def test_a_min_count_beyond_the_bound_is_a_usage_error_before_any_query(monkeypatch):
    monkeypatch.setattr(offline, "MAX_QUERY", 1000)
    with pytest.raises(UsageError, match="--min-queries 1001 is more than the 1000 samples"):
        run_offline(Refuses("offline"), make_samples(2), min_duration_s=0.0, min_query_count=1001,
                    expected_qps=1.0)
    with pytest.raises(UsageError, match="--min-queries 1001"):  # probed rate: the same
        run_offline(Refuses("offline"), make_samples(2), min_duration_s=0.0, min_query_count=1001)


def test_a_probed_query_beyond_the_bound_is_capped_and_says_so(clock, monkeypatch):
    monkeypatch.setattr(offline, "MAX_QUERY", 500)
    monkeypatch.setattr(offline, "probe_rate", lambda sut, loaded: 10_000.0)
    sut = OfflineFake("offline", infer_ns=100_000, clock=clock)  # 10 000 samples/s, as probed
    run = run_offline(sut, make_samples(3), min_duration_s=1.0, min_query_count=1)
    # LoadGen's N: floor(1.1 x 1 s x 11 500/s) = 12 650; one query of 500 samples, not re-sized
    assert [len(q) for q in sut.queries] == [500]
    assert (run.count, run.capped_from, run.short_runs) == (500, 12_650, ())
    assert run.duration_s == pytest.approx(0.05)
    [reason] = measure(run, 1.0, 1).reasons
    assert reason.code is ReasonCode.MIN_DURATION
    assert "no offline query within the 500-sample bound lasts 1 s" in reason.message
    assert "--expected-qps" not in reason.message  # no rate within the bound would pass


def test_the_offline_pass_records_a_capped_query(clock, monkeypatch, tmp_path):
    from fakes import FakeSUT
    from tinyharness.dataset import Dataset
    from tinyharness.progress import Progress
    from tinyharness.qsl import QSL, Seeds
    from tinyharness.scenarios.base import Context
    from tinyharness.settings import TestSettings

    folder = tmp_path / "q"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}.bin").write_bytes(bytes([i, 0]))
    (folder / "y_labels.csv").write_text("".join(f"s{i}.bin,3,{i}\n" for i in range(3)))
    qsl = QSL(Dataset.open(folder, "q", "y_labels.csv", (2,), "uint8"), "identity",
              FakeSUT().input_spec())
    monkeypatch.setattr(offline, "MAX_QUERY", 300)
    monkeypatch.setattr(offline, "probe_rate", lambda sut, loaded: 10_000.0)
    rules = type("Rules", (), {"performance_sample_count": None})()
    bench = type("Bench", (), {"rules_for": lambda self, scenario: rules})()
    events = []
    settings = TestSettings("offline", "performance", 1.0, 1, 5, 1.0, 0)
    ctx = Context(settings, Seeds.from_seed(0), bench, Progress(False),
                  lambda key, value: events.append((key, value)))
    measured = offline.OfflinePass(ctx).run(OfflineFake("offline", infer_ns=100_000, clock=clock), qsl)
    assert measured.offline.samples == 300
    assert ("offline_query_capped", {"samples": 300, "wanted": 12_650, "expected_qps": 11_500.0,
                                     "expected_qps_source": "probe"}) in events


def test_the_query_is_built_without_a_python_step_per_sample():
    loaded = make_samples(3)
    query = offline.query_of(loaded, 8)
    assert [id(s) for s in query] == [id(loaded[i % 3]) for i in range(8)]
    assert offline.query_of(loaded, 2) == loaded[:2] and len(offline.query_of(loaded, 3)) == 3
