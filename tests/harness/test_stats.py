"""LoadGen's percentile rule and early stopping (../shared/docs/loadgen.md sections 3 and 7).

Every expected value here is worked out by hand or taken from loadgen.md's published figures
(which reproduce LoadGen's own "Would discard" counts), never computed by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinyharness import stats
from tinyharness.stats import (
    PERCENTILES,
    LatencyStats,
    early_stopping,
    exceed_cdf,
    min_good_queries,
    percentile,
)


# -- percentile rule: sorted[floor(n * p)], zero-based, no interpolation ---------------------------

@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        # n = 10, p = 0.9: index 9, the largest value (numpy would interpolate to 91)
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9, 100),
        # n = 10, p = 0.5: index 5, the 6th smallest (numpy: 55)
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.5, 60),
        # n = 4, p = 0.5: index 2 (numpy: 2.5)
        ([1, 2, 3, 4], 0.5, 3),
        # n = 5, p = 0.9: floor(4.5) = 4 (numpy: 4.6)
        ([1, 2, 3, 4, 5], 0.9, 5),
        # n = 7, p = 0.5: floor(3.5) = 3
        ([0, 1, 2, 3, 4, 5, 6], 0.5, 3),
        # n = 1: the only element, for every p
        ([42], 0.5, 42),
        ([42], 0.999, 42),
        # n = 100, p = 0.999: floor(99.9) = 99, the last element
        (list(range(100)), 0.999, 99),
        # n = 100, p = 0.97: index 97
        (list(range(100)), 0.97, 97),
    ],
)
def test_percentile_takes_floor_index_without_interpolation(values, p, expected):
    assert percentile(np.array(values, dtype=np.int64), p) == expected


def test_percentile_n1000_p90_is_the_901st_smallest():
    # 3 * i: the 901st smallest value is 3 * 900 = 2700
    values = np.arange(1000, dtype=np.int64) * 3
    assert percentile(values, 0.9) == 2700
    # p = 0.5 and n = 1000 is index 500 (loadgen.md section 3)
    assert percentile(values, 0.5) == 1500


def test_percentile_differs_from_numpy_default_interpolation():
    values = np.array([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], dtype=np.int64)
    # LoadGen: index floor(10 * 0.9) = 9 -> 1000; numpy's linear interpolation: 910.
    assert np.percentile(values, 90) == pytest.approx(910.0)
    assert percentile(values, 0.9) == 1000
    assert percentile(values, 0.9) != np.percentile(values, 90)


def test_percentile_returns_python_int():
    result = percentile(np.array([5, 7, 9], dtype=np.int64), 0.5)
    assert type(result) is int
    assert result == 7


def test_percentile_of_empty_array_raises():
    with pytest.raises(ValueError):
        percentile(np.array([], dtype=np.int64), 0.9)


# -- exceed_cdf and h(t) ---------------------------------------------------------------------------

def _binomial_cdf(h: int, t: int, p: float) -> float:
    """P[at most t of h + t trials exceed], each exceeding with probability 1 - p (by hand)."""
    n = h + t
    return sum(math.comb(n, x) * p ** (n - x) * (1 - p) ** x for x in range(t + 1))


@pytest.mark.parametrize(("h", "t", "p"), [(44, 0, 0.9), (43, 0, 0.9), (63, 1, 0.9), (10, 3, 0.9),
                                           (200, 10, 0.9), (500, 3, 0.99)])
def test_exceed_cdf_matches_binomial_cdf(h, t, p):
    assert exceed_cdf(h, t, p) == pytest.approx(_binomial_cdf(h, t, p), rel=1e-9)


def test_h0_is_44_for_p90():
    # ceil(log(0.01) / log(0.9)) = ceil(43.7) = 44: 0.9**43 = 0.0108 >= 0.01 > 0.9**44 = 0.0097
    assert 0.9 ** 43 >= 0.01 > 0.9 ** 44
    assert min_good_queries(0, 0.9) == 44


@pytest.mark.parametrize(("p", "minimum"), [(0.90, 64), (0.99, 662), (0.999, 6636)])
def test_minimum_run_length_h1_plus_1(p, minimum):
    assert min_good_queries(1, p) + 1 == minimum


@pytest.mark.parametrize(("p", "minimum"), [(0.90, 64), (0.99, 662), (0.999, 6636)])
def test_early_stopping_requires_the_published_minimum(p, minimum):
    short = early_stopping(np.arange(minimum - 1, dtype=np.int64), p)
    assert short.estimate_ns is None
    assert not short.met
    assert short.min_queries == minimum
    enough = early_stopping(np.arange(minimum, dtype=np.int64), p)
    assert enough.met
    assert enough.estimate_ns == minimum - 1  # at the minimum the estimate is the maximum
    assert enough.discarded == 0


# -- early stopping estimate -----------------------------------------------------------------------

def test_n63_gives_no_estimate_and_says_64_needed():
    result = early_stopping(np.arange(63, dtype=np.int64) * 10)
    assert result.estimate_ns is None
    assert result.met is False
    assert result.min_queries == 64
    assert result.discarded == 0
    assert result.percentile == 0.90


def test_n64_gives_the_maximum():
    values = np.arange(64, dtype=np.int64) * 10 + 5
    result = early_stopping(values)
    assert result.met
    assert result.estimate_ns == 635  # values[63], the maximum
    assert result.discarded == 0
    assert result.min_queries == 64


# loadgen.md section 7.3: counts reproduced from LoadGen's "Would discard N highest latency queries"
LOADGEN_DISCARDS = [(101_878, 9_964), (337_627, 33_356), (350_938, 34_679),
                    (1_223_976, 121_624), (1_487_583, 147_906)]


@pytest.mark.parametrize(("n", "discarded"), LOADGEN_DISCARDS)
def test_would_discard_counts_match_loadgen(n, discarded):
    values = np.arange(n, dtype=np.int64) * 2  # sorted, distinct: the estimate's index is checkable
    result = early_stopping(values)
    assert result.discarded == discarded
    assert result.estimate_ns == int(values[n - (discarded + 1)])
    assert result.estimate_ns == 2 * (n - discarded - 1)


# loadgen.md section 7.2: effective percentile (n - t) / n of the reported element, at p90
EFFECTIVE = [(64, 0.984, 3), (100, 0.970, 3), (256, 0.945, 3), (1024, 0.922, 3), (4096, 0.911, 3),
             (10_000, 0.907, 3), (100_000, 0.902, 3), (1_000_000, 0.9007, 4)]


@pytest.mark.parametrize(("n", "effective", "digits"), EFFECTIVE)
def test_effective_percentile_table(n, effective, digits):
    values = np.arange(n, dtype=np.int64)
    result = early_stopping(values)
    t = result.discarded + 1
    assert result.estimate_ns == n - t  # arange: value == index
    assert abs((n - t) / n - effective) <= 0.5 * 10 ** -digits


def test_estimate_never_below_plain_percentile():
    # The estimate is conservative: never below the plain p90 of the same run.
    for n in (64, 65, 100, 500, 2000):
        values = np.arange(n, dtype=np.int64)
        assert early_stopping(values).estimate_ns >= percentile(values, 0.9)


def test_early_stopping_for_a_million_queries_searches_logarithmically(monkeypatch):
    # Guards the bug class of a search bounded to ~2**10 or a literal O(n) port that takes minutes:
    # a binary search over t asks for h(t) about log2(n) = 20 times, whatever the machine's speed.
    n = 1_048_577  # just above 2**20
    asked = []
    original = stats.min_good_queries
    monkeypatch.setattr(stats, "min_good_queries", lambda t, *a: asked.append(t) or original(t, *a))
    values = np.arange(n, dtype=np.int64)
    result = early_stopping(values)
    assert len(asked) <= 2 + math.ceil(math.log2(n))
    t = result.discarded + 1
    # Near the 1e6 row of the table: t close to n * (1 - 0.9007)
    assert 0.9002 < (n - t) / n < 0.9012
    assert result.estimate_ns == n - t


def test_early_stopping_for_p99_is_estimated_too():
    n = 10_000
    values = np.arange(n, dtype=np.int64)
    result = early_stopping(values, 0.99)
    assert result.met
    assert result.percentile == 0.99
    t = result.discarded + 1
    assert result.estimate_ns == n - t
    assert t >= 2  # 10 000 is well above 662, so more than the maximum is discarded
    assert result.estimate_ns >= percentile(values, 0.99)


# -- LatencyStats ----------------------------------------------------------------------------------

def test_latency_stats_integer_mean_floors():
    assert LatencyStats.from_ns(np.array([1, 2], dtype=np.int64)).mean_ns == 1  # 3 // 2
    assert LatencyStats.from_ns(np.array([2, 2, 1], dtype=np.int64)).mean_ns == 1  # 5 // 3
    assert LatencyStats.from_ns(np.array([1000, 1001, 1001], dtype=np.int64)).mean_ns == 1000


def test_latency_stats_sorts_and_reports_min_max_count():
    stats = LatencyStats.from_ns(np.array([30, 10, 20, 50, 40], dtype=np.int64))
    assert (stats.count, stats.min_ns, stats.max_ns) == (5, 10, 50)
    assert stats.percentiles_ns[0.50] == 30  # sorted [10..50], index floor(2.5) = 2
    assert stats.percentiles_ns[0.90] == 50  # index floor(4.5) = 4
    assert set(stats.percentiles_ns) == set(PERCENTILES)
    assert stats.early.met is False  # 5 < 64


def test_latency_stats_rejects_empty():
    with pytest.raises(ValueError):
        LatencyStats.from_ns(np.array([], dtype=np.int64))


def test_latency_stats_mean_does_not_overflow_for_long_latencies():
    # 10 000 latencies of 10 minutes each: the sum is 6e15 ns, fine in int64
    values = np.full(10_000, 600_000_000_000, dtype=np.int64)
    assert LatencyStats.from_ns(values).mean_ns == 600_000_000_000


def test_to_us_dict_values_and_rounding():
    # 100 latencies: 1000, 2000, ..., 100000 ns, plus odd nanoseconds to check the rounding
    values = np.arange(1, 101, dtype=np.int64) * 1000
    values[0] = 1234  # min 1.234 us
    values[-1] = 100_499  # max 100.499 us
    d = LatencyStats.from_ns(values).to_us_dict()
    assert d["count"] == 100
    assert d["min"] == 1.234
    assert d["max"] == 100.499
    # sorted[floor(100 p)]: index 50 -> 51000 ns, 90 -> 91000, 95 -> 96000, 97 -> 98000, 99 and 99.9 -> max
    assert (d["p50"], d["p90"], d["p95"], d["p97"]) == (51.0, 91.0, 96.0, 98.0)
    assert d["p99"] == 100.499
    assert d["p999"] == 100.499
    # mean: (sum(1000..100000) - 1000 + 1234 - 100000 + 100499) // 100 = 5050733 // 100 = 50507 ns
    assert d["mean"] == 50.507
    # loadgen.md table: n = 100 -> effective 0.970 -> t = 3 -> sorted[97] = 98000 ns
    assert d["p90_early_stopping"] == 98.0
    assert set(d) == {"count", "min", "mean", "p50", "p90", "p95", "p97", "p99", "p999", "max",
                      "p90_early_stopping"}


def test_to_us_dict_rounds_to_three_decimals_and_none_without_estimate():
    d = LatencyStats.from_ns(np.array([1, 1500, 2_000_001], dtype=np.int64)).to_us_dict()
    assert d["min"] == 0.001
    assert d["p50"] == 1.5
    assert d["max"] == 2000.001
    assert d["mean"] == 667.167  # 2001502 // 3 = 667167 ns
    assert d["p90_early_stopping"] is None
