"""The statistics of a comparison: each side's value and its hierarchical bootstrap draws, and the
interval of (B - A) / A (see the package docstring for the method and why)."""

from __future__ import annotations

import math
from statistics import NormalDist

BLOCKS = 20  # time blocks a repetition is resampled in
MIN_BLOCK = 50  # queries a block needs; shorter repetitions are resampled query by query
# The most values one bootstrap array holds (32 MiB of float64): the draws are made in chunks of
# resamples that fit, so memory stays bounded for any --resamples and any number of runs,
# repetitions or windows. Below it (every real comparison) one chunk: the draws are those of a
# single pass.
ELEMENTS = 1 << 22


class Percentile:
    """A repetition's LoadGen percentile (us), resampled exactly: in time blocks when it has
    ``BLOCKS`` x ``MIN_BLOCK`` queries or more, else query by query (see the module docstring)."""

    def __init__(self, latencies_ns, p: float) -> None:
        import numpy as np

        from ..stats import percentile

        in_order = np.asarray(latencies_ns, np.int64)
        self.sorted, self.p = np.sort(in_order), p
        self.value = percentile(self.sorted, p) / 1e3
        self.blocks = ([np.sort(b) for b in np.array_split(in_order, BLOCKS)]
                       if len(in_order) >= BLOCKS * MIN_BLOCK else None)

    @property
    def drift(self) -> float | None:
        """How much the percentile moves over the repetition's time: the standard deviation of
        its 20 time blocks' percentiles over the whole value (None: too few queries)."""
        import numpy as np

        from ..stats import percentile

        if self.blocks is None or not self.value:
            return None
        return float(np.std([percentile(b, self.p) for b in self.blocks], ddof=1) / 1e3 / self.value)

    def draw(self, size: int, rng):
        if self.blocks is None:
            return percentile_draws(self.sorted, self.p, size, rng) / 1e3
        return block_percentile_draws(self.sorted, self.blocks, self.p, size, rng) / 1e3


class Median:
    """A repetition's median window throughput, its windows resampled with replacement."""

    def __init__(self, values) -> None:
        import numpy as np

        self.values = np.asarray(values, float)
        self.value = float(np.median(self.values))

    @property
    def drift(self) -> float | None:
        """The windows' standard deviation over their median (None: fewer than two)."""
        import numpy as np

        if len(self.values) < 2 or not self.value:
            return None
        return float(np.std(self.values, ddof=1) / self.value)

    def draw(self, size: int, rng):
        import numpy as np

        n = len(self.values)
        step = max(1, ELEMENTS // n)
        return np.concatenate([np.median(self.values[rng.integers(0, n, (min(step, size - start), n))],
                                         axis=1) for start in range(0, size, step)] or [np.empty(0)])


class Value:
    """A repetition known by one number: nothing inside it to resample."""

    drift = None

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def draw(self, size: int, rng):
        import numpy as np

        return np.full(size, self.value)


Side = list  # of runs, each a list of repetitions (Percentile | Median | Value): one metric's data


def side_value(side: Side) -> float:
    """The side's statistic: mean over runs of the mean over their repetitions."""
    return sum(sum(rep.value for rep in run) / len(run) for run in side) / len(side)


def replicates(side: Side) -> int:
    """Replicates of the configuration: the runs, or the repetitions of a single run."""
    return len(side) if len(side) > 1 else len(side[0])


def hierarchical_draws(side: Side, resamples: int, rng):
    """Bootstrap draws of :func:`side_value`: runs with replacement, then each drawn run's
    repetitions with replacement, then each drawn repetition's own resample (``draw``); in
    chunks of resamples of at most :data:`ELEMENTS` values each."""
    import numpy as np

    width = len(side) * max(len(reps) for reps in side)
    step = max(1, ELEMENTS // width)
    return np.concatenate([_hierarchical(side, min(step, resamples - start), rng)
                           for start in range(0, resamples, step)] or [np.empty(0)])


def _grouped(labels, count: int):
    """The flat positions holding each label 0 .. count - 1, each group in row-major order (the
    order a boolean mask assigns in), in one sort instead of a mask per label."""
    import numpy as np

    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(flat, minlength=count))))
    return [order[bounds[k]:bounds[k + 1]] for k in range(count)]


def _hierarchical(side: Side, resamples: int, rng):
    import numpy as np

    n_runs = len(side)
    chosen = rng.integers(0, n_runs, (resamples, n_runs))
    out = np.zeros(chosen.size)
    for slots, reps in zip(_grouped(chosen, n_runs), side):
        m = len(slots)
        if not m:
            continue
        picks = rng.integers(0, len(reps), (m, len(reps)))
        values = np.empty(picks.size)
        for where, rep in zip(_grouped(picks, len(reps)), reps):
            if len(where):
                values[where] = rep.draw(len(where), rng)
        out[slots] = values.reshape(picks.shape).mean(axis=1)
    return out.reshape(chosen.shape).mean(axis=1)


def percentile_draws(sorted_ns, p: float, resamples: int, rng):
    """Bootstrap draws of LoadGen's percentile ``sorted[floor(n * p)]`` (see the module docstring)."""
    import numpy as np

    n = len(sorted_ns)
    k = min(int(n * p), n - 1) + 1
    u = rng.beta(k, n + 1 - k, size=resamples)
    return sorted_ns[np.minimum((u * n).astype(np.int64), n - 1)]


def block_percentile_draws(sorted_ns, blocks, p: float, resamples: int, rng):
    """Block-bootstrap draws of LoadGen's percentile: each draw takes ``len(blocks)`` of the
    (sorted) time blocks with replacement and returns ``sorted(union)[floor(N * p)]`` exactly, by
    bisection over ``sorted_ns`` (every block's values) with each block's count at or below."""
    import numpy as np

    j = len(blocks)
    counts = rng.multinomial(j, np.full(j, 1.0 / j), size=resamples)
    total = counts @ np.array([len(b) for b in blocks])
    need = np.minimum((total * p).astype(np.int64), total - 1) + 1  # values at or below the answer
    lo, hi = np.zeros(resamples, np.int64), np.full(resamples, len(sorted_ns) - 1)
    while (lo < hi).any():
        mid = (lo + hi) // 2
        value = sorted_ns[mid]
        below = sum(counts[:, k] * np.searchsorted(b, value, side="right") for k, b in enumerate(blocks))
        enough = below >= need
        hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid + 1)
    return sorted_ns[lo]


def _widen(x, factor: float):
    import numpy as np

    centre = float(np.median(x))
    return centre + factor * (x - centre)


def interval(draws_a, draws_b, reps_a: int, reps_b: int, confidence: float,
             small_sample: bool) -> tuple[float, float] | None:
    """The percentile CI of B/A - 1 from independent draws; with ``small_sample`` corrected for
    few replicates as the module docstring says. None when no draw gives a ratio."""
    import numpy as np

    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        la, lb = np.log(np.asarray(draws_a, float)), np.log(np.asarray(draws_b, float))
    finite = np.isfinite(la) & np.isfinite(lb)  # a draw of 0 (a coarse clock) has no ratio
    la, lb = la[finite], lb[finite]
    if len(la) < 2:
        return None
    if small_sample:
        la = _widen(la, math.sqrt(reps_a / (reps_a - 1)))
        lb = _widen(lb, math.sqrt(reps_b / (reps_b - 1)))
        va, vb = float(np.var(la)), float(np.var(lb))
        dof = ((va + vb) ** 2 / (va ** 2 / (reps_a - 1) + vb ** 2 / (reps_b - 1)) if va + vb > 0
               else reps_a + reps_b - 2)
        diff = _widen(lb - la, t_quantile(1 - tail, dof) / NormalDist().inv_cdf(1 - tail))
    else:
        diff = lb - la
    lo, hi = np.quantile(diff, [tail, 1.0 - tail])
    return math.expm1(float(lo)), math.expm1(float(hi))


# -- Student's t quantile (no scipy) -----------------------------------------------------------------
# Welch-Satterthwaite gives a real number of degrees of freedom, at least 1 (two replicates), so the
# quantile is found for any real df > 0: the upper tail Q(t) = I_x(df/2, 1/2) / 2, x = df / (df + t^2)
# (Abramowitz & Stegun 26.7.1 with 26.5.27), the regularized incomplete beta function by its
# continued fraction (modified Lentz, A&S 26.5.8), solved for Q(t) = 1 - p by Newton's method kept
# inside a bracket. df 1 and 2 have closed forms; past df 1e5 the Cornish-Fisher expansion (A&S
# 26.7.5, four terms) is exact in double precision. Against scipy.stats.t.ppf over df 1 .. 1e12 and
# p 1e-12 .. 1 - 1e-12 the largest relative difference is about 1e-12 (tests/harness/test_compare.py),
# except next to the median, where scipy's own ppf is off (df 4, p 0.5001: 1.6e-9 relative, shown by
# df 4's closed-form CDF; the test allows 1e-12 absolute there).
_CF_LIMIT = 10_000  # continued-fraction terms; about sqrt(df) are needed, and df <= 1e5 here


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    tiny, eps = 1e-300, 1e-16
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, _CF_LIMIT):
        for aa in (m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _log_gamma_ratio_half(a: float) -> float:
    """ln(Gamma(a + 1/2) / Gamma(a)), without the cancellation of two large lgammas: past a = 20 by
    Stirling's series, whose first omitted term (691 / (360360 x^11)) is below 1e-17 there."""
    if a < 20.0:
        return math.lgamma(a + 0.5) - math.lgamma(a)

    def correction(x: float) -> float:  # lgamma(x) - ((x - 1/2) ln x - x + ln(2 pi) / 2)
        x2 = x * x
        return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / (1188.0 * x2)) / x2) / x2)
                / x2) / x

    return a * math.log1p(0.5 / a) - 0.5 + 0.5 * math.log(a) + correction(a + 0.5) - correction(a)


def _t_upper(t: float, df: float) -> float:
    """P(T > t) for t >= 0: I_x(df/2, 1/2) / 2, x = df / (df + t^2) = 1 / (1 + r), r = t^2 / df.
    ln x and ln(1 - x) come from log1p(r), not from x itself: near x = 1 a rounding of x would be
    multiplied by df / 2."""
    a, b = df / 2.0, 0.5
    r = t * t / df
    if r == 0.0:
        return 0.5
    x, y = 1.0 / (1.0 + r), r / (1.0 + r)
    log_front = (-a * math.log1p(r) + b * (math.log(r) - math.log1p(r))  # x^a y^b / B(a, b)
                 + _log_gamma_ratio_half(a) - 0.5 * math.log(math.pi))
    if x < (a + 1.0) / (a + b + 2.0):
        return 0.5 * math.exp(log_front) * _betacf(a, b, x) / a
    return 0.5 * (1.0 - math.exp(log_front) * _betacf(b, a, y) / b)


def _t_pdf(t: float, df: float) -> float:
    return math.exp(_log_gamma_ratio_half(df / 2.0) - 0.5 * math.log(df * math.pi)
                    - (df + 1.0) / 2.0 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with ``df`` (real, > 0) degrees of freedom:
    ``scipy.stats.t.ppf(p, df)`` without scipy."""
    if not df > 0 or math.isnan(p):
        raise ValueError(f"t quantile needs df > 0 and a probability, not df={df!r}, p={p!r}")
    if p <= 0.0 or p >= 1.0:
        if p in (0.0, 1.0):
            return math.copysign(math.inf, p - 0.5)
        raise ValueError(f"t quantile of p={p!r}: p must be in [0, 1]")
    if p == 0.5:
        return 0.0
    q = min(p, 1.0 - p)  # the tail, solved for t > 0; the sign comes back at the end
    sign = 1.0 if p > 0.5 else -1.0
    if df == 1.0:  # Cauchy
        return sign / math.tan(math.pi * q)
    if df == 2.0:
        return sign * (1.0 - 2.0 * q) / math.sqrt(2.0 * q * (1.0 - q))
    z = -NormalDist().inv_cdf(q)
    if df > 1e5 or math.isinf(df):
        if math.isinf(df):
            return sign * z
        z2 = z * z
        g1 = (z2 + 1.0) * z / 4.0
        g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
        g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
        g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
        return sign * (z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4)
    # Bracket the root of Q(t) = q (Q falls from 1/2 at 0), starting from the normal quantile
    lo, hi = 0.0, max(z, 1.0)
    while _t_upper(hi, df) > q:
        lo, hi = hi, hi * 2.0
        if math.isinf(hi):
            return sign * math.inf
    t = hi if lo == 0.0 else (lo + hi) / 2.0
    for _ in range(200):
        excess = _t_upper(t, df) - q  # > 0: t is below the root
        if excess == 0.0:
            break
        if excess > 0.0:
            lo = t
        else:
            hi = t
        step = t + excess / _t_pdf(t, df)  # Newton: Q'(t) = -pdf(t)
        new = step if lo < step < hi else (lo + hi) / 2.0
        if abs(new - t) <= 4e-16 * abs(new) or hi - lo <= 4e-16 * hi:
            t = new
            break
        t = new
    return sign * t
