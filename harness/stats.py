"""Latency statistics with MLPerf LoadGen's definitions, in one place.

Percentile rule (LoadGen): sort ascending and take the element at index ``floor(n * p)``, zero-based,
with no interpolation (``numpy.percentile`` does not do this by default). Early stopping: the
conservative p90 estimate of LoadGen's ``early_stopping.cc`` (99 % confidence, zero tolerance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PERCENTILES = (0.50, 0.90, 0.95, 0.97, 0.99, 0.999)
_TERM_EPS = 2.0 ** -33


def percentile(sorted_values: np.ndarray, p: float) -> int:
    """LoadGen's percentile of an ascending array: ``sorted[floor(n * p)]``."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of an empty set")
    return int(sorted_values[min(int(n * p), n - 1)])


def exceed_cdf(h: int, t: int, p: float) -> float:
    """P[at most t of h + t independent queries exceed the p-quantile] = I_p(h, t + 1).

    Evaluated as LoadGen does: a prefactor times a hypergeometric series that is a finite
    polynomial because 1 - b is a non-positive integer.
    """
    a, b, x = h, t + 1, p
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    prefactor = math.exp(a * math.log(x) + (b - 1) * math.log(1 - x) - log_beta) / a
    z = x / (x - 1.0)
    total = term = 1.0
    k = 0
    while abs(term) > _TERM_EPS:
        term *= (1 - b + k) * z / (a + 1 + k)
        total += term
        k += 1
    return prefactor * total


@lru_cache(maxsize=4096)
def min_good_queries(t: int, p: float, confidence: float = 0.99) -> int:
    """h(t): the smallest h with exceed_cdf(h, t, p) < 1 - confidence."""
    alpha = 1.0 - confidence
    lo = max(1, int(t * p / (1.0 - p)))  # below the expected count nothing passes
    step = 1
    hi = lo + step
    while exceed_cdf(hi, t, p) >= alpha:  # grow the bracket geometrically
        lo, step = hi, step * 2
        hi = lo + step
    while lo < hi:  # first passing h in (lo, hi]
        mid = (lo + hi) // 2
        if exceed_cdf(mid, t, p) < alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class EarlyStopping:
    """The early-stopping percentile estimate of a run, or why there is none."""

    percentile: float
    estimate_ns: int | None
    min_queries: int
    discarded: int

    @property
    def met(self) -> bool:
        return self.estimate_ns is not None


def early_stopping_rank(n: int, p: float = 0.90, confidence: float = 0.99) -> tuple[int | None, int, int]:
    """LoadGen's early stopping over ``n`` latencies: (the 0-based rank of the estimate in
    ascending order, or None when there are too few; the queries needed; the ones discarded).
    With t the largest count such that n >= h(t) + t, the estimate is sorted[n - t]."""
    needed = min_good_queries(1, p, confidence) + 1
    if n < needed:
        return None, needed, 0
    lo, hi = 1, n  # h(t) + t grows with t, so the largest passing t is a threshold
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if min_good_queries(mid, p, confidence) + mid <= n:
            lo = mid
        else:
            hi = mid - 1
    return n - lo, needed, lo - 1


def early_stopping(sorted_ns: np.ndarray, p: float = 0.90, confidence: float = 0.99) -> EarlyStopping:
    """LoadGen's estimate over an ascending array."""
    rank, needed, discarded = early_stopping_rank(len(sorted_ns), p, confidence)
    return EarlyStopping(p, None if rank is None else int(sorted_ns[rank]), needed, discarded)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-query latencies in nanoseconds; rendered in microseconds."""

    count: int
    min_ns: int
    mean_ns: int
    max_ns: int
    percentiles_ns: dict[float, int]
    early: EarlyStopping
    exact: bool = True  # False: percentiles from latencies.py's histogram (at most 0.1 % high)

    @classmethod
    def from_ns(cls, latencies_ns) -> "LatencyStats":
        """From a :class:`~tinyharness.latencies.Latencies` record or an array of ns."""
        from .latencies import Latencies

        record = latencies_ns if isinstance(latencies_ns, Latencies) else Latencies.from_array(
            np.asarray(latencies_ns, dtype=np.int64))
        n = len(record)
        if n == 0:
            raise ValueError("no latencies recorded")
        rank, needed, discarded = early_stopping_rank(n, 0.90)
        ranks = [min(int(n * p), n - 1) for p in PERCENTILES] + ([] if rank is None else [rank])
        values = record.kth(ranks)
        low, high, total, _ = record.moments()
        return cls(
            count=n, min_ns=low,
            mean_ns=total // n,  # integer mean, as LoadGen
            max_ns=high,
            percentiles_ns=dict(zip(PERCENTILES, values)),
            early=EarlyStopping(0.90, None if rank is None else values[-1], needed, discarded),
            exact=record.exact,
        )

    def to_us_dict(self) -> dict[str, float | int | None]:
        us = lambda ns: round(ns / 1000.0, 3)  # noqa: E731
        pct = self.percentiles_ns
        return {
            "count": self.count, "min": us(self.min_ns), "mean": us(self.mean_ns),
            "p50": us(pct[0.50]), "p90": us(pct[0.90]), "p95": us(pct[0.95]),
            "p97": us(pct[0.97]), "p99": us(pct[0.99]), "p999": us(pct[0.999]),
            "max": us(self.max_ns),
            "p90_early_stopping": None if self.early.estimate_ns is None else us(self.early.estimate_ns),
        }
