"""Single-stream scenario: run_queries (LoadGen single stream) and run_window (MLPerf Tiny window).

The SUTs below are small real implementations of the SUT contract that check how they are driven.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tinyharness.scenarios.single_stream import run_queries, run_window
from tinyharness.sut import SUT, SUTDescription, TensorSpec


def spin(ns: int) -> None:
    """Busy-wait ``ns`` nanoseconds (sleep() is too coarse for microseconds)."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


class ContractSUT(SUT):
    """Checks the single-stream contract: one query at a time, prepare() right before infer()."""

    name = "test-contract"
    options = ()

    def __init__(self, samples=None, infer_ns: int = 0, prepare_ns: int = 0) -> None:
        super().__init__("single-stream")
        self.samples = samples
        self.infer_ns = infer_ns
        self.prepare_ns = prepare_ns
        self.prepared = None
        self.active = False
        self.violations: list[str] = []
        self.received: list[int] = []  # index into ``samples`` of each inferred sample
        self.infer_entries: list[int] = []
        self.infer_calls = 0

    def load(self, model: Path) -> None:
        pass

    def input_spec(self) -> TensorSpec:
        return TensorSpec("x", (1,), "float32")

    def output_spec(self) -> TensorSpec:
        return TensorSpec("y", (1,), "float32")

    def prepare(self, sample: np.ndarray) -> None:
        if self.active:
            self.violations.append("prepare() during infer()")
        if self.prepared is not None:
            self.violations.append("prepare() twice without infer()")
        self.prepared = sample
        if self.prepare_ns:
            spin(self.prepare_ns)

    def infer(self) -> None:
        self.infer_entries.append(time.perf_counter_ns())
        self.infer_calls += 1
        if self.active:
            self.violations.append("two infer() in flight")
        self.active = True
        if self.samples is not None:
            if self.prepared is None:
                self.violations.append("infer() without a prepare() right before")
            else:
                matches = [i for i, s in enumerate(self.samples) if s is self.prepared]
                if len(matches) != 1:
                    self.violations.append("prepared sample is not an object of the sample list")
                else:
                    self.received.append(matches[0])
            self.prepared = None
        if self.infer_ns:
            spin(self.infer_ns)
        self.active = False

    def output(self) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "none", "0", "cpu", "none", "none", None)


def make_samples(k: int) -> list[np.ndarray]:
    return [np.full(1, i, dtype=np.float32) for i in range(k)]


# -- run_queries -------------------------------------------------------------------------------

def test_one_query_in_flight_and_prepare_right_before_infer():
    samples = make_samples(8)
    sut = ContractSUT(samples)
    run = run_queries(sut, samples, 1, min_duration_s=0.0, min_query_count=700)
    assert sut.violations == []
    assert run.count == 700
    assert len(sut.received) == 700
    assert len(run.latencies_ns) == 700
    assert np.all(run.latencies_ns > 0)


def test_count_binds_when_duration_is_tiny():
    samples = make_samples(4)
    sut = ContractSUT(samples)
    run = run_queries(sut, samples, 3, min_duration_s=1e-6, min_query_count=5000)
    assert run.count == 5000  # stops exactly at the count once the duration is met
    assert sut.infer_calls == 5000
    assert run.duration_s >= 1e-6
    assert run.start_ns <= run.last_issue_ns <= run.end_ns


def test_duration_binds_when_count_is_small():
    samples = make_samples(4)
    sut = ContractSUT(samples, infer_ns=2_000_000)  # 2 ms per query
    min_duration = 0.2
    run = run_queries(sut, samples, 3, min_duration_s=min_duration, min_query_count=10)
    deadline = run.start_ns + int(min_duration * 1e9)
    assert run.count > 10  # ~100 queries of 2 ms
    assert run.count == sut.infer_calls
    # measured at issue time: the last query was issued at or after the minimum duration...
    assert run.duration_s >= min_duration
    assert run.last_issue_ns >= deadline
    assert sut.infer_entries[-1] >= run.last_issue_ns
    # ...and it is the first such query: the one before was issued (entered infer) before the deadline
    assert sut.infer_entries[-2] < deadline
    # the run ends at the completion of that last query, not long after
    assert run.end_ns - run.last_issue_ns < 0.1e9
    assert run.end_ns >= run.last_issue_ns + 2_000_000


def test_both_bind_when_count_outlasts_duration():
    samples = make_samples(4)
    sut = ContractSUT(samples, infer_ns=1_000_000)
    run = run_queries(sut, samples, 3, min_duration_s=0.02, min_query_count=60)
    # 60 queries of 1 ms take ~60 ms > 20 ms: the count binds
    assert run.count == 60
    assert run.duration_s >= 0.02


def test_max_duration_stops_a_run_that_would_last_too_long():
    samples = make_samples(2)
    sut = ContractSUT(samples, infer_ns=100_000)
    begin = time.perf_counter()
    run = run_queries(sut, samples, 0, min_duration_s=60.0, min_query_count=1, max_duration_s=0.1)
    assert time.perf_counter() - begin < 2.0
    assert run.count >= 100
    assert run.duration_s < 60.0


def test_latencies_reflect_a_spinning_sut():
    samples = make_samples(2)
    sut = ContractSUT(samples, infer_ns=200_000)  # 200 us
    run = run_queries(sut, samples, 7, min_duration_s=0.0, min_query_count=300)
    lat = np.sort(run.latencies_ns)
    assert lat[0] >= 200_000  # the clock pair brackets the whole infer()
    p50 = lat[len(lat) // 2]
    assert 200_000 <= p50 <= 400_000


def test_prepare_time_is_not_in_the_latency():
    samples = make_samples(2)
    sut = ContractSUT(samples, infer_ns=50_000, prepare_ns=1_000_000)  # prepare 1 ms, infer 50 us
    run = run_queries(sut, samples, 7, min_duration_s=0.0, min_query_count=100)
    lat = np.sort(run.latencies_ns)
    assert lat[0] >= 50_000
    assert lat[len(lat) // 2] < 500_000  # the 1 ms prepare() would push every latency above 1 ms
    # but the issue-to-issue time includes it: 100 queries take >= 100 x 1.05 ms
    assert run.end_ns - run.start_ns >= 100 * 1_050_000


def _chosen(seed: int, count: int, k: int = 10) -> list[int]:
    samples = make_samples(k)
    sut = ContractSUT(samples)
    run = run_queries(sut, samples, seed, min_duration_s=0.0, min_query_count=count)
    assert sut.violations == []
    assert run.count == count
    return sut.received


def test_samples_are_reproducible_for_the_same_seed_and_differ_for_another():
    first = _chosen(11, 2000)
    again = _chosen(11, 2000)
    other = _chosen(12, 2000)
    assert first == again
    assert first != other


def test_samples_chosen_uniformly_with_replacement():
    k, count = 5, 10_000
    chosen = np.array(_chosen(2024, count, k))
    counts = np.bincount(chosen, minlength=k)
    assert len(counts) == k
    # Binomial(10000, 0.2): sd = 40; allow 5 sd
    assert np.all(np.abs(counts - count / k) < 200)
    # with replacement: not every block of k consecutive draws is a permutation of the k samples
    blocks = chosen[: (count // k) * k].reshape(-1, k)
    permutations = sum(len(set(b)) == k for b in blocks.tolist())
    assert permutations < len(blocks) // 2  # k!/k^k = 3.84 % of blocks for uniform draws
    # and repeats occur back to back
    assert np.any(chosen[1:] == chosen[:-1])


def test_every_sample_of_a_single_element_list():
    samples = make_samples(1)
    sut = ContractSUT(samples)
    run = run_queries(sut, samples, 5, min_duration_s=0.0, min_query_count=300)
    assert run.count == 300
    assert set(sut.received) == {0}


def test_qps_definitions():
    samples = make_samples(2)
    sut = ContractSUT(samples, infer_ns=500_000)
    run = run_queries(sut, samples, 1, min_duration_s=0.05, min_query_count=1)
    span = (run.last_issue_ns - run.start_ns) / 1e9
    assert run.qps_with_overhead() == pytest.approx((run.count - 1) / span)
    assert run.qps_without_overhead() == pytest.approx(1e9 / run.latencies_ns.mean())
    assert run.qps_without_overhead() <= 1e9 / 500_000  # each query takes >= 0.5 ms
    assert run.qps_with_overhead() <= run.qps_without_overhead() * 1.0001


# -- run_window ------------------------------------------------------------------------------------

class CountingSUT(ContractSUT):
    name = "test-counting"


@pytest.mark.parametrize("estimate_ns", [50_000, 1e12, 5_000], ids=["right", "too-large", "too-small"])
def test_window_lasts_at_least_min_window(estimate_ns):
    sut = CountingSUT(infer_ns=50_000)  # 50 us
    sample = np.zeros(1, dtype=np.float32)
    min_window = 0.04
    begin = time.perf_counter()
    window = run_window(sut, sample, 3, "f.bin", min_window, estimate_ns, warmup=10)
    wall = time.perf_counter() - begin
    assert window.runtime_s >= min_window
    assert window.runtime_s <= wall
    assert (window.sample_index, window.file) == (3, "f.bin")
    assert window.inferences >= 1
    assert sut.infer_calls >= 10 + window.inferences  # warm-up + at least the final attempt
    assert window.throughput_ips == pytest.approx(window.inferences / window.runtime_s)
    assert window.throughput_ips <= 1 / 50e-6  # each inference takes >= 50 us
    assert window.throughput_ips >= 1 / 50e-6 / 10
    if estimate_ns == 1e12:
        assert window.attempts >= 2  # the first guess of 1 inference is far too short
    if estimate_ns == 5_000:
        assert window.attempts == 1  # too many inferences is long enough at once
        # but the warm-up's pace (halved) bounds the estimate: not the 8400 that 5 us would ask for
        assert window.inferences <= 2 * 1.05 * 0.04e9 / 50_000 + 1


def test_window_prepares_once_and_warms_up():
    sut = CountingSUT(infer_ns=0)
    sample = np.zeros(1, dtype=np.float32)
    sut.samples = [sample]
    window = run_window(sut, sample, 0, "a.bin", 0.01, 1e9, warmup=7)
    # the first infer() consumes the prepared sample; later ones run on the same prepared input
    assert sut.received == [0]
    assert sut.infer_calls >= 7 + window.inferences
    assert window.runtime_s >= 0.01
