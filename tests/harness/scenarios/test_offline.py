"""Offline scenario: query size, the samples issued, completion stamps and the probe."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tinyharness.scenarios.offline import probe_rate, query_size, run_offline
from tinyharness.sut import SUT, SUTDescription, TensorSpec


def spin(ns: int) -> None:
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


class OfflineSUT(SUT):
    """Records the samples of each offline query; per-sample busy time; optional misbehaviour."""

    name = "test-offline"
    options = ()

    def __init__(self, sample_ns: int = 0, stamp_ns: int | None = None, reverse: bool = False,
                 leave_zero: bool = False) -> None:
        super().__init__("offline")
        self.sample_ns = sample_ns
        self.stamp_ns = stamp_ns  # synthetic completion spacing instead of the real clock
        self.reverse = reverse
        self.leave_zero = leave_zero
        self.queries: list[list[np.ndarray]] = []
        self.stamps: list[np.ndarray] = []
        self.entries: list[int] = []  # perf_counter_ns() when each offline query reached the SUT

    def load(self, model: Path) -> None:
        pass

    def input_spec(self) -> TensorSpec:
        return TensorSpec("x", (1,), "float32")

    def output_spec(self) -> TensorSpec:
        return TensorSpec("y", (1,), "float32")

    def prepare(self, sample: np.ndarray) -> None:
        pass

    def infer(self) -> None:
        if self.sample_ns:
            spin(self.sample_ns)

    def output(self) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "none", "0", "cpu", "none", "none", None)

    def issue_offline(self, samples, completions) -> None:
        self.entries.append(time.perf_counter_ns())
        self.queries.append(list(samples))
        if self.stamp_ns is None:
            super().issue_offline(samples, completions)
        else:
            base = time.perf_counter_ns()
            offsets = np.arange(1, len(samples) + 1, dtype=np.int64) * self.stamp_ns
            completions[:] = base + (offsets[::-1] if self.reverse else offsets)
        if self.leave_zero:
            completions[len(completions) // 2] = 0
        self.stamps.append(completions.copy())


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
    loaded = [np.full(1, i, dtype=np.float32) for i in range(7)]
    sut = OfflineSUT()
    run = run_offline(sut, loaded, min_duration_s=0.1, min_query_count=10, expected_qps=1234.0)
    n = 135  # floor(1.1 * 0.1 * 1234) = floor(135.74)
    assert len(sut.queries) == 1  # no probe when the rate is given
    issued = sut.queries[0]
    assert len(issued) == n
    assert run.count == n
    for i, sample in enumerate(issued):
        assert sample is loaded[i % 7]
    assert run.expected_qps == 1234.0
    assert run.expected_qps_source == "given"


def test_run_offline_count_binds_with_low_expected_qps():
    loaded = [np.zeros(1, dtype=np.float32) for _ in range(3)]
    sut = OfflineSUT()
    run = run_offline(sut, loaded, min_duration_s=0.1, min_query_count=50, expected_qps=10.0)
    assert run.count == 50  # floor(1.1) = 1 < 50
    assert [id(s) for s in sut.queries[0]] == [id(loaded[i % 3]) for i in range(50)]


def test_throughput_is_count_over_last_completion():
    loaded = [np.zeros(1, dtype=np.float32)]
    sut = OfflineSUT(stamp_ns=1_000_000)  # sample i completes (i + 1) ms after the SUT starts
    run = run_offline(sut, loaded, min_duration_s=0.0, min_query_count=200, expected_qps=1.0)
    stamps = sut.stamps[0]
    assert run.count == 200
    # completions are kept relative to the issue
    assert np.array_equal(run.completions_ns + run.start_ns, stamps)
    last = int(stamps.max()) - run.start_ns
    assert 200_000_000 <= last < 250_000_000
    assert run.duration_s == pytest.approx(last / 1e9)
    assert run.throughput_ips == pytest.approx(200 / (last / 1e9))


def test_duration_is_the_latest_completion_not_the_last_sample():
    loaded = [np.zeros(1, dtype=np.float32)]
    sut = OfflineSUT(stamp_ns=1_000_000, reverse=True)  # the first sample completes last
    run = run_offline(sut, loaded, min_duration_s=0.0, min_query_count=100, expected_qps=1.0)
    assert run.completions_ns[0] > run.completions_ns[-1]
    assert run.duration_s >= 0.1
    assert run.throughput_ips == pytest.approx(100 / run.duration_s)
    assert run.throughput_ips <= 1000.0


def test_a_sample_left_without_completion_raises():
    loaded = [np.zeros(1, dtype=np.float32)]
    sut = OfflineSUT(leave_zero=True)
    with pytest.raises(RuntimeError, match="test-offline"):
        run_offline(sut, loaded, min_duration_s=0.0, min_query_count=20, expected_qps=1.0)


def _span_s(sut: OfflineSUT, query: int) -> float:
    """Seconds from the SUT receiving offline query ``query`` to its last completion (a lower bound
    of the harness's span, which starts just before the call)."""
    return (int(sut.stamps[query].max()) - sut.entries[query]) / 1e9


def test_probe_path_meets_the_minimum_duration():
    loaded = [np.full(1, i, dtype=np.float32) for i in range(5)]
    sut = OfflineSUT(sample_ns=100_000)  # 100 us per sample: at most 10 000 samples/s
    min_duration = 0.1
    run = run_offline(sut, loaded, min_duration_s=min_duration, min_query_count=1)
    assert run.expected_qps_source == "probe"
    assert len(sut.queries) >= 2  # at least one probe query, then the run
    # expected_qps = 1.15 x the rate of the last probe query (n / its span)
    n_probe = len(sut.queries[-2])
    span = _span_s(sut, -2)
    assert span >= 0.3 - 1e-3  # the probe stops at a query of >= 0.3 s (default min_probe_s)
    assert 1.15 * n_probe / (span + 2e-3) <= run.expected_qps <= 1.15 * n_probe / span
    assert run.expected_qps <= 11_500 * 1.001  # the rate can't beat 100 us per sample
    # N = floor(1.1 x min duration x expected_qps)
    assert run.count == int(1.1 * min_duration * run.expected_qps)
    # at the probed speed that lasts 1.1 x 1.15 x min duration; allow for a machine under load
    assert run.duration_s >= 0.5 * min_duration
    assert run.duration_s < 1.0
    # the run query also holds the loaded samples in order
    issued = sut.queries[-1]
    assert all(s is loaded[i % 5] for i, s in enumerate(issued))


def test_probe_rate_grows_until_long_enough():
    loaded = [np.zeros(1, dtype=np.float32)]
    sut = OfflineSUT(sample_ns=200_000)  # 5000 samples/s at most
    rate = probe_rate(sut, loaded, min_probe_s=0.05)
    sizes = [len(q) for q in sut.queries]
    assert sizes[0] == 64
    assert all(b >= 2 * a for a, b in zip(sizes, sizes[1:]))  # at least doubling
    assert all(b <= 16 * a for a, b in zip(sizes, sizes[1:]))  # at most x16 per step
    for q in range(len(sizes) - 1):  # every earlier probe query was too short
        assert _span_s(sut, q) < 0.05
    last = _span_s(sut, -1)
    assert last >= 0.05 - 1e-3  # the last one lasted min_probe_s
    assert sizes[-1] / (last + 2e-3) <= rate <= sizes[-1] / last
    assert rate <= 5000 * 1.001
