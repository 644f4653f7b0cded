"""``tinyharness compare``: pairing by configuration, replicates, the hierarchical bootstrap, the
noise floor for single runs, --fail-above, packages and schema-1 runs.

Inputs are the schema-1 fixture runs (as the previous version wrote them) and copies of them whose
summary.json this file writes through the run model, so every input is a run the reader accepts.
Every random draw is seeded; no test depends on the wall clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tinyharness.cli import cli
from tinyharness.compare import HIERARCHICAL, NO_DIFFERENCE, SLOWER, WITHIN_NOISE, WITHIN_RUN, compare
from tinyharness.compare.bootstrap import (Percentile, block_percentile_draws, hierarchical_draws,
                                           interval, percentile_draws, t_quantile)
from tinyharness.errors import UsageError
from tinyharness.results.read import read_run, read_summary
from tinyharness.results.sections import EarlyStoppingResult, Latency, Window, Windows
from tinyharness.results.stability import Stability
from tinyharness.stats import percentile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
OFFLINE = FIXTURES / "20261201-224014_digits01_tflite-cpu_offline"
SERIAL = FIXTURES / "20261201-224022_kws01_serial_single-stream"
TFLITE_MODEL = read_summary(OFFLINE).model  # digits01_int8.tflite, with its sha256


def lognormal_ns(seed: int, n: int = 20_000, scale: float = 1.0) -> np.ndarray:
    """Latencies around 100 µs with a right tail, as a real SUT's."""
    return (scale * 100_000 * np.random.default_rng(seed).lognormal(0.0, 0.25, n)).astype(np.int64)


def window_rate(latencies: np.ndarray) -> float:
    return 1e9 / float(latencies.mean())


def synthetic(dest: Path, latencies: np.ndarray, benchmark: str | None = None, *,
              repetitions: list[np.ndarray] | None = None, **changes) -> Path:
    """A copy of the single-stream fixture whose latencies, statistics and windows agree with
    ``latencies``, its summary.json written (schema 2) from the run model; ``changes`` replace
    summary fields (sut, model, started). With ``repetitions`` (one latency array each, the first
    is the run's own), latencies.npy holds them back to back and summary.json gets the
    ``repetitions`` section as the issue-9 design note spells it (written into the JSON document,
    so the reader's parsing of it is tested too)."""
    reps = repetitions or [latencies]
    latencies = reps[0]
    shutil.copytree(SINGLE_STREAM, dest)
    np.save(dest / "latencies.npy", np.concatenate(reps).astype(np.int64))
    summary = read_summary(dest)
    # Five windows at the run's mean rate, each 0.5 % noisy (seeded by the data itself).
    noise = np.random.default_rng(int(latencies[:10].sum())).normal(1.0, 0.005, 5)
    rates = [round(window_rate(latencies) * f, 3) for f in noise]
    windows = [Window(i, f"w{i}.bin", 1000, round(1000 / ips, 6), ips, 1) for i, ips in enumerate(rates)]
    summary = dataclasses.replace(
        summary, benchmark=benchmark or summary.benchmark, latency_us=Latency.from_ns(latencies),
        early_stopping=EarlyStoppingResult.from_ns(latencies),
        performance=dataclasses.replace(summary.performance, queries=len(latencies)),
        windows=Windows.from_windows(windows, summary.windows.window_min_s), **changes)
    document = summary.to_dict()
    if repetitions:
        document["repetitions"] = repetition_section(reps)
    (dest / "summary.json").write_text(json.dumps(document, indent=1))
    if not repetitions:
        assert read_run(dest).summary == summary  # valid against the run model, read back unchanged
    return dest


def repetition_section(reps: list[np.ndarray]) -> dict:
    us = lambda ns: round(ns / 1e3, 3)  # noqa: E731
    runs = [{"index": i, "queries": len(r), "p50_us": us(percentile(np.sort(r), 0.5)),
             "p90_us": us(percentile(np.sort(r), 0.9)), "p90_early_stopping_us": None,
             "throughput_ips": round(window_rate(r), 3), "duration_s": float(r.sum() / 1e9),
             "reasons": []} for i, r in enumerate(reps, start=1)]
    p50 = [r["p50_us"] for r in runs]
    return {"count": len(reps), "runs": runs,
            "spread": {"p50_max_over_min": max(p50) / min(p50), "p90_max_over_min": None,
                       "throughput_max_over_min": None, "p50_cv": float(np.std(p50) / np.mean(p50)),
                       "throughput_cv": None}}


def replicate_set(dest: Path, runs: int, between_sd: float, seed: int, scale: float = 1.0,
                  n: int = 5_000) -> Path:
    """``runs`` run directories of one configuration under ``dest``, each run's latencies scaled by
    its own factor ~ N(1, between_sd) (run-to-run variation) on top of the query-to-query spread."""
    rng = np.random.default_rng([seed, 99])
    for i in range(runs):
        factor = scale * rng.normal(1.0, between_sd)
        synthetic(dest / f"run{i}", lognormal_ns(seed * 1000 + i, n, factor),
                  started=f"2026-12-01T22:{i:02d}:00+00:00")
    return dest


def metrics(result: dict, pair: int = 0) -> dict[str, dict]:
    return {m["metric"]: m for m in result["pairs"][pair]["metrics"]}


def width(row: dict) -> float:
    return row["ci"][1] - row["ci"][0]


# -- the bootstrap ---------------------------------------------------------------------------------
def test_beta_order_statistic_is_the_resampling_bootstrap():
    """sorted[floor(n*U)], U ~ Beta(k, n+1-k), has the distribution of the LoadGen percentile of a
    literal resample with replacement."""
    values = np.sort(lognormal_ns(3, n=40))
    n, p, reps = len(values), 0.9, 40_000
    literal = np.sort(values[np.random.default_rng(1).integers(0, n, (reps, n))], axis=1)[:, int(n * p)]
    exact = percentile_draws(values, p, reps, np.random.default_rng(2))
    freq = lambda draws: np.searchsorted(values, draws, side="left")  # noqa: E731
    a, b = (np.bincount(freq(d), minlength=n) / reps for d in (literal, exact))
    assert np.abs(a - b).max() < 0.015


def test_block_bootstrap_is_exact():
    """Time blocks drawn with replacement, LoadGen's percentile of their union: the bisection gives
    the distribution of the literal computation."""
    values = lognormal_ns(4, n=2_000)
    blocks = np.array_split(values, 20)
    rng, reps = np.random.default_rng(1), 20_000
    literal = []
    for _ in range(reps):
        union = np.sort(np.concatenate([blocks[i] for i in rng.integers(0, 20, 20)]))
        literal.append(union[int(len(union) * 0.9)])
    exact = block_percentile_draws(np.sort(values), [np.sort(b) for b in blocks], 0.9, reps,
                                   np.random.default_rng(2))
    assert np.isin(exact, values).all()
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(exact, q) == pytest.approx(np.quantile(literal, q), rel=0.004)


def test_a_drifting_run_is_not_precise(tmp_path):
    """A run whose host slowed 40 % for its last 30 % (queries alike in time, not independent)
    against a steady one: the query-by-query bootstrap would call the 10 % difference of their p50
    certain; the time blocks see parts of the run that disagree, the CI reaches into the floor, and
    the verdict is run-to-run noise."""
    steady = lognormal_ns(31, 20_000)
    drifting = np.concatenate([lognormal_ns(32, 14_000), lognormal_ns(33, 6_000, 1.4)])
    row = metrics(compare([synthetic(tmp_path / "a", steady)], [synthetic(tmp_path / "b", drifting)]))[
        "p50 latency"]
    assert row["relative_difference"] > 0.09 and row["ci"][0] < 0.05 < row["ci"][1], row
    assert row["verdict"] == WITHIN_NOISE
    # the same latencies shuffled (independent queries) pin the percentile as before
    shuffled = np.random.default_rng(0).permutation(drifting)
    row = metrics(compare([synthetic(tmp_path / "c", steady)], [synthetic(tmp_path / "d", shuffled)]))[
        "p50 latency"]
    assert row["ci"][0] > 0.07 and row["verdict"] == SLOWER


def test_small_sample_correction_keeps_false_alarms_near_the_nominal_rate():
    """Identical configurations, 2 or 3 runs a side, each run's location ~ N(1, 0.05): the plain
    hierarchical bootstrap calls them different far more often than 5 % of the time; the widened
    interval does not."""
    def side(rng, runs):
        return [[Percentile(lognormal_ns(int(rng.integers(1 << 30)), 800, rng.normal(1, 0.05)), 0.5)]
                for _ in range(runs)]

    for runs in (2, 3):
        alarms = {False: 0, True: 0}
        trials = 80
        for t in range(trials):
            rng = np.random.default_rng([runs, t])
            a, b = side(rng, runs), side(rng, runs)
            draws = [hierarchical_draws(s, 1000, rng) for s in (a, b)]
            for corrected in alarms:
                lo, hi = interval(*draws, runs, runs, 0.95, corrected)
                alarms[corrected] += not lo < 0 < hi
        assert alarms[False] / trials > 0.15, (runs, alarms)
        assert alarms[True] / trials <= 0.08, (runs, alarms)


# -- the t quantile of the small-sample correction (no scipy at run time) ---------------------------
T_DFS = (1, 1.0001, 1.3, 1.5, 2, 2.0001, 2.5, 3, 3.7, 4, 5, 7.25, 10, 15.5, 30, 39.9, 40.1, 100, 1000,
         1e4, 99_999, 1e5, 100_001, 1e6, 1e12)
T_PS = (1e-12, 1e-6, 1e-4, 0.001, 0.005, 0.025, 0.05, 0.1, 0.3, 0.49, 0.4999, 0.5001, 0.51, 0.7, 0.9,
        0.95, 0.975, 0.99, 0.995, 0.9995, 1 - 1e-6, 1 - 1e-9)


def test_t_quantile_equals_scipys():
    """scipy (a dev dependency) is the oracle: about 1e-12 relative over every df the Welch formula
    can give (real, >= 1) and every confidence compare accepts, and far into the tails. Next to the
    median scipy itself is off by up to 1.6e-9 relative (see the df 4 test), hence the absolute term."""
    t = pytest.importorskip("scipy.stats", reason="scipy (dev extra) is the oracle").t
    for df in T_DFS:
        for p in T_PS:
            assert t_quantile(p, df) == pytest.approx(float(t.ppf(p, df)), rel=1e-10, abs=1e-12), (df, p)
    rng = np.random.default_rng(5)
    for df, p in zip(np.exp(rng.uniform(0, np.log(2e5), 500)), rng.uniform(0.5, 1 - 1e-5, 500)):
        assert t_quantile(p, df) == pytest.approx(float(t.ppf(p, df)), rel=1e-10, abs=1e-12), (df, p)


@pytest.mark.parametrize("df, cdf", [
    # closed forms (Student's t CDF for small integer df), independent of the code under test
    (1, lambda x: 0.5 + np.arctan(x) / np.pi),
    (2, lambda x: 0.5 + x / (2 * np.sqrt(2 + x * x))),
    (3, lambda x: 0.5 + (x / (np.sqrt(3) * (1 + x * x / 3)) + np.arctan(x / np.sqrt(3))) / np.pi),
    (4, lambda x: 0.5 + 3 / 8 * x / np.sqrt(1 + x * x / 4) * (1 - x * x / (12 * (1 + x * x / 4)))),
])
def test_t_quantile_inverts_the_closed_form_cdf(df, cdf):
    for p in (0.001, 0.025, 0.05, 0.3, 0.4999, 0.5001, 0.6, 0.9, 0.95, 0.975, 0.99, 0.999):
        assert cdf(t_quantile(p, df)) == pytest.approx(p, abs=3e-16), p
    # df 4, next to the median: 0.5001 is reached at t = 2.666666706173e-4; scipy's ppf says
    # 2.666666710374e-4, whose CDF is 0.5001 + 1.6e-13 (by this closed form, and in 50-digit decimals)
    if df == 4:
        assert t_quantile(0.5001, 4) == pytest.approx(2.666666706173e-4, rel=1e-12)


def test_t_quantile_table_values_and_limits():
    # two-sided 95 % and 90 % critical values from any printed t table (3 decimals)
    for df, t975, t95 in ((1, 12.706, 6.314), (2, 4.303, 2.920), (3, 3.182, 2.353), (5, 2.571, 2.015),
                          (10, 2.228, 1.812), (30, 2.042, 1.697), (120, 1.980, 1.658)):
        assert t_quantile(0.975, df) == pytest.approx(t975, abs=5e-4)
        assert t_quantile(0.95, df) == pytest.approx(t95, abs=5e-4)
    from statistics import NormalDist
    assert t_quantile(0.975, float("inf")) == NormalDist().inv_cdf(0.975)
    assert 0 < t_quantile(0.975, 1e12) - NormalDist().inv_cdf(0.975) < 3e-12  # z (z^2 + 1) / (4 df)
    assert t_quantile(0.5, 3) == 0.0 and t_quantile(0.25, 7.5) == -t_quantile(0.75, 7.5)  # 1 - 0.75 is exact
    assert t_quantile(1.0, 3) == float("inf") and t_quantile(0.0, 3) == float("-inf")
    # continuous across the switch to the Cornish-Fisher expansion at df 1e5
    assert t_quantile(0.975, 1e5) == pytest.approx(t_quantile(0.975, 1e5 * (1 + 1e-9)), rel=1e-12)
    for bad in ((0.5, 0), (0.5, -1), (0.5, float("nan")), (float("nan"), 3), (1.5, 3)):
        with pytest.raises(ValueError):
            t_quantile(*bad)


def test_small_sample_widening_is_the_t_over_z_ratio():
    """The corrected interval is the plain one widened (in logs) by sqrt(R / (R - 1)) x t(nu) / z,
    nu from Welch-Satterthwaite: with equal spreads on both sides nu = 2 (R - 1)."""
    from statistics import NormalDist
    rng = np.random.default_rng(9)
    la = rng.normal(0, 0.01, 4000)
    lb = (lambda x: (x - x.mean()) / x.std() * la.std())(rng.normal(0, 0.01, 4000))  # same variance
    for reps in (2, 3, 5):
        plain = np.log1p(interval(np.exp(la), np.exp(lb), reps, reps, 0.95, False))
        wide = np.log1p(interval(np.exp(la), np.exp(lb), reps, reps, 0.95, True))
        factor = np.sqrt(reps / (reps - 1)) * t_quantile(0.975, 2 * reps - 2) / NormalDist().inv_cdf(0.975)
        assert (wide[1] - wide[0]) / (plain[1] - plain[0]) == pytest.approx(factor, rel=1e-6), reps


# -- single runs: the noise floor ------------------------------------------------------------------
def test_same_distribution_single_runs_are_within_noise(tmp_path):
    a = synthetic(tmp_path / "a", lognormal_ns(11))
    b = synthetic(tmp_path / "b", lognormal_ns(12))
    result = compare([a], [b])
    assert result["noise_floor"] == 0.05 and "hierarchical" in result["method"]
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == WITHIN_NOISE, m[name]
        assert m[name]["method"] == WITHIN_RUN
        assert m[name]["replicates"] == {"a": {"runs": 1, "repetitions": 1},
                                         "b": {"runs": 1, "repetitions": 1}}
    assert result["pairs"][0]["verdict"] == WITHIN_NOISE


@pytest.mark.parametrize("scale, verdict", [(1.02, WITHIN_NOISE), (1.3, SLOWER)])
def test_single_run_a_side_against_the_noise_floor(tmp_path, scale, verdict):
    """One run a side: a 2 % difference is within run-to-run noise even where the within-run CI
    excludes 0 (what the previous version called significant); 30 % is slower."""
    a = synthetic(tmp_path / "a", lognormal_ns(11))
    b = synthetic(tmp_path / "b", lognormal_ns(12, scale=scale))
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == verdict, m[name]
        assert m[name]["slowdown"] == pytest.approx(scale - 1, abs=0.02)
    if scale == 1.02:
        assert m["p50 latency"]["ci"][0] > 0  # the within-run CI alone would have called it
        # a floor of 0.1 % would: the runs' own block-to-block spread (about 1 % for blocks of
        # 1000 lognormal queries) raises it to about 1.96 x sqrt(2) x 1 %, which does not
        tight = metrics(compare([a], [b], noise_floor=0.001))["p50 latency"]
        assert tight["verdict"] == WITHIN_NOISE and "the runs' own drift" in tight["note"]


def drifting_ns(seed: int, levels, n: int = 20_000) -> np.ndarray:
    """Lognormal latencies whose level moves over the run: 20 stretches at the given factors."""
    base = lognormal_ns(seed, n)
    return (base * np.repeat(np.asarray(levels, float), n // len(levels))).astype(np.int64)


def test_a_single_runs_drift_over_time_raises_the_noise_floor(tmp_path):
    """A run whose machine moved by +-15 % while it ran cannot tell a 10 % difference from noise
    with one run a side; a steady pair can."""
    levels = [0.85, 1.15] * 10  # a standard deviation of 15.4 % between its time blocks
    a = synthetic(tmp_path / "a", drifting_ns(21, levels))
    b = synthetic(tmp_path / "b", lognormal_ns(22, scale=1.10))
    row = metrics(compare([a], [b]))["p50 latency"]
    assert row["slowdown"] == pytest.approx(0.10, abs=0.03)
    assert row["verdict"] == WITHIN_NOISE
    floor = float(row["note"].split("noise floor ")[1].split("%")[0]) / 100
    assert 1.96 * 0.15 <= floor <= 1.96 * 0.17  # z x sqrt(0.154^2 + ~0.01^2)
    steady = synthetic(tmp_path / "steady", lognormal_ns(23))
    assert metrics(compare([steady], [b]))["p50 latency"]["verdict"] == SLOWER


def test_single_run_ci_reaching_into_the_floor_is_noise(tmp_path):
    """7 % apart on 400 queries a side: the difference is beyond the floor, but the within-run CI
    reaches into it, so no claim."""
    a = synthetic(tmp_path / "a", lognormal_ns(21, n=400))
    b = synthetic(tmp_path / "b", lognormal_ns(22, n=400, scale=1.07))
    row = metrics(compare([a], [b]))["p50 latency"]
    assert row["relative_difference"] > 0.05 and row["ci"][0] < 0.05, row
    assert row["verdict"] == WITHIN_NOISE


@pytest.mark.parametrize("scale, verdict, throughput_verdict", [(1.2, "B slower", "B slower"),
                                                                 (0.8, "B faster", "B faster")])
def test_shifted_distribution(tmp_path, scale, verdict, throughput_verdict):
    a = synthetic(tmp_path / "a", lognormal_ns(11))
    b = synthetic(tmp_path / "b", lognormal_ns(12, scale=scale))
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency"):
        lo, hi = m[name]["ci"]
        assert m[name]["verdict"] == verdict
        assert lo < scale - 1 < hi and not lo < 0 < hi, m[name]
        assert m[name]["relative_difference"] == pytest.approx(scale - 1, abs=0.03)
    assert m["median window throughput"]["verdict"] == throughput_verdict


def test_every_query_counts_at_100k(tmp_path):
    """No subsampling: the point values are LoadGen's percentiles of all 100k latencies, and the
    intervals are narrower than those of 10k queries from the same distribution."""
    big = [lognormal_ns(seed, n=100_000) for seed in (1, 2)]
    a, b = (synthetic(tmp_path / name, ns) for name, ns in zip("ab", big))
    m = metrics(compare([a], [b], resamples=2000))
    small = metrics(compare([synthetic(tmp_path / "c", big[0][:10_000])],
                            [synthetic(tmp_path / "d", big[1][:10_000])], resamples=2000))
    for p, name in ((0.50, "p50 latency"), (0.90, "p90 latency")):
        assert m[name]["a"] == percentile(np.sort(big[0]), p) / 1e3
        assert m[name]["b"] == percentile(np.sort(big[1]), p) / 1e3
        assert width(m[name]) < width(small[name]) and m[name]["verdict"] == WITHIN_NOISE


# -- replicates: the hierarchical bootstrap --------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identical_configurations_replicated_are_not_different(tmp_path, seed):
    """Five runs a side of one configuration whose runs vary in location (sd 5 %): no metric is
    called different, and the point difference may well exceed what one run's CI would allow."""
    a = replicate_set(tmp_path / "a", 5, 0.05, seed)
    b = replicate_set(tmp_path / "b", 5, 0.05, seed + 100)
    result = compare([a], [b])
    assert len(result["pairs"]) == 1 and result["unpaired"] == []
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["method"] == HIERARCHICAL
        assert m[name]["replicates"] == {"a": {"runs": 5, "repetitions": 5},
                                         "b": {"runs": 5, "repetitions": 5}}
        assert m[name]["verdict"] == NO_DIFFERENCE, m[name]
    assert result["pairs"][0]["verdict"] == NO_DIFFERENCE
    assert len(result["pairs"][0]["a"]["runs"]) == 5


def test_replicated_slowdown_is_slower_with_the_truth_in_the_ci(tmp_path):
    a = replicate_set(tmp_path / "a", 5, 0.05, 1)
    b = replicate_set(tmp_path / "b", 5, 0.05, 2, scale=1.2)
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == SLOWER, m[name]
        lo, hi = m[name]["slowdown_ci"]
        assert lo < 0.20 < hi and lo > 0, m[name]
    lo, hi = m["p50 latency"]["ci"]  # for latency the slowdown is the relative difference
    assert lo < 0.20 < hi


def test_ci_width_grows_with_between_run_variance(tmp_path):
    widths = []
    for sd in (0.0, 0.03, 0.10):
        a = replicate_set(tmp_path / f"a{sd}", 4, sd, 5)
        b = replicate_set(tmp_path / f"b{sd}", 4, sd, 6)
        m = metrics(compare([a], [b]))
        widths.append([width(m[name]) for name in ("p50 latency", "p90 latency")])
    for metric in zip(*widths):
        assert metric[0] < metric[1] < metric[2], widths
    assert widths[2][0] > 3 * widths[0][0]


def test_repetitions_inside_one_run_are_replicates(tmp_path):
    """One run a side holding five repetitions (latencies.npy back to back, split by
    ``repetitions.runs[i].queries``): the hierarchical bootstrap over the repetitions; the
    windows metric uses each repetition's median window throughput. Read from a .tar.gz too."""
    def repeated(dest, seed, scale):
        rng = np.random.default_rng(seed)
        reps = [lognormal_ns(seed * 10 + k, 4_000, scale * rng.normal(1, 0.05)) for k in range(5)]
        return synthetic(dest, reps[0], repetitions=reps)

    a = repeated(tmp_path / "pa" / "a", 1, 1.0)
    same, slow = repeated(tmp_path / "same", 2, 1.0), repeated(tmp_path / "slow", 3, 1.2)
    m = metrics(compare([a], [same]))
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["method"] == HIERARCHICAL
        assert m[name]["replicates"]["a"] == {"runs": 1, "repetitions": 5}
        assert m[name]["verdict"] == NO_DIFFERENCE, m[name]
    result = compare([a], [slow])
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == SLOWER, m[name]
        assert m[name]["slowdown_ci"][0] < 0.2 < m[name]["slowdown_ci"][1], m[name]
    # the point value is the mean of the repetitions' percentiles, not repetition 1's
    reps = np.split(np.load(a / "latencies.npy"), np.cumsum([4_000] * 4))
    assert m["p50 latency"]["a"] == pytest.approx(np.mean([percentile(np.sort(r), 0.5) / 1e3 for r in reps]))
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(tmp_path / "pa", arcname="pa")
    assert compare([tmp_path / "a.tar.gz"], [slow])["pairs"][0]["metrics"] == result["pairs"][0]["metrics"]


def test_unstable_runs_are_named(tmp_path):
    """A run whose own stability diagnostics warn is named in the pair's notes (and the table)."""
    blank = {f.name: None for f in dataclasses.fields(Stability)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    shaky = Stability(**blank, unstable=True, warnings=["load average 3.2 above 2 cores"])
    a = synthetic(tmp_path / "a", lognormal_ns(1))
    b = synthetic(tmp_path / "b", lognormal_ns(2), stability=shaky)
    result = compare([a], [b])
    assert result["pairs"][0]["notes"] == ["B run b was unstable: load average 3.2 above 2 cores"]
    shown = CliRunner().invoke(cli, ["compare", str(a), str(b)], env={"COLUMNS": "200"})
    assert "B run b was unstable" in shown.output


def test_int8_runs_on_cpus_with_and_without_an_int8_dot_product_are_noted(tmp_path):
    """OpenVINO's int8 kernels saturate on x86 without VNNI: a pair of int8 runs across such CPUs
    says so; the same CPUs, float runs, or a side that does not record its CPU say nothing."""
    base = read_summary(SINGLE_STREAM).system
    vnni = dataclasses.replace(base, precision="int8", cpu_features=["avx2", "avx512f", "avx512_vnni"])
    plain = dataclasses.replace(vnni, cpu_features=["avx2", "avx512f"])
    a = synthetic(tmp_path / "a", lognormal_ns(1), system=vnni)
    b = synthetic(tmp_path / "b", lognormal_ns(2), system=plain)
    (note,) = compare([a], [b])["pairs"][0]["notes"]
    assert note.startswith("int8 on CPUs with an int8 dot product (A a) and without one (B b): ")
    shown = CliRunner().invoke(cli, ["compare", str(a), str(b)], env={"COLUMNS": "200"})
    assert "without one (B b)" in shown.output
    same = synthetic(tmp_path / "same", lognormal_ns(3), system=vnni)
    unknown = synthetic(tmp_path / "unknown", lognormal_ns(4), system=dataclasses.replace(plain, cpu_features=None))
    floats = [synthetic(tmp_path / n, lognormal_ns(5), system=dataclasses.replace(s, precision="float32"))
              for n, s in (("fa", vnni), ("fb", plain))]
    for x, y in ((a, same), (a, unknown), tuple(floats)):
        assert compare([x], [y])["pairs"][0]["notes"] == [], (x.name, y.name)


# -- pairing ---------------------------------------------------------------------------------------
def test_pairing_by_configuration_and_explicit_pairs(tmp_path):
    """A tflite-cpu run in A pairs with B's tflite-cpu run of the same model, never with B's serial
    run (same benchmark), an onnxruntime-cpu run or a tflite-cpu run of another model; --pair
    overrides; the rest is listed unpaired."""
    other_model = dataclasses.replace(TFLITE_MODEL, sha256="0" * 64, path="/m/digits01_float.tflite")
    synthetic(tmp_path / "A" / "a_tfl", lognormal_ns(1), sut="tflite-cpu", model=TFLITE_MODEL)
    synthetic(tmp_path / "B" / "b_tfl", lognormal_ns(2, scale=1.3), sut="tflite-cpu", model=TFLITE_MODEL)
    synthetic(tmp_path / "B" / "b_float", lognormal_ns(3), sut="tflite-cpu", model=other_model)
    synthetic(tmp_path / "B" / "b_ort", lognormal_ns(4))
    serial = shutil.copytree(SERIAL, tmp_path / "B" / "b_serial")
    summary = dataclasses.replace(read_summary(serial), benchmark="digits01")
    (serial / "summary.json").write_text(json.dumps(summary.to_dict()))

    result = compare([tmp_path / "A"], [tmp_path / "B"])
    (pair,) = result["pairs"]
    assert (pair["a"]["path"], pair["b"]["path"]) == (str(tmp_path / "A" / "a_tfl"),
                                                      str(tmp_path / "B" / "b_tfl"))
    assert pair["paired_by"] == "configuration" and pair["b"]["model"] == "digits01_int8.tflite"
    assert metrics(result)["p50 latency"]["verdict"] == SLOWER
    assert sorted((u["side"], u["sut"], u["model"]) for u in result["unpaired"]) == [
        ("B", "onnxruntime-cpu", "digits01_float.onnx"), ("B", "serial", "device"),
        ("B", "tflite-cpu", "digits01_float.tflite")]

    # --pair by run directory name or path: the tflite-cpu run against the serial one (device-timed:
    # only the window throughput) and against the onnxruntime run; the other B runs pair as before
    explicit = compare([tmp_path / "A"], [tmp_path / "B"],
                       pairs=["a_tfl=b_serial", f"{tmp_path / 'A' / 'a_tfl'}=b_ort"])
    assert [(p["b"]["sut"], p["paired_by"]) for p in explicit["pairs"]] == [("serial", "--pair"),
                                                                           ("onnxruntime-cpu", "--pair")]
    assert list(metrics(explicit, 0)) == ["median window throughput"]
    assert list(metrics(explicit, 1)) == ["p50 latency", "p90 latency", "median window throughput"]
    assert sorted(u["path"] for u in explicit["unpaired"]) == [str(tmp_path / "B" / n)
                                                               for n in ("b_float", "b_tfl")]

    # several runs of one configuration on a side are replicates of one pair, in no order of time
    synthetic(tmp_path / "A" / "a_tfl2", lognormal_ns(5), sut="tflite-cpu", model=TFLITE_MODEL,
              started="2020-01-01T00:00:00+00:00")
    (pair,) = compare([tmp_path / "A"], [tmp_path / "B"])["pairs"]
    assert [Path(p).name for p in pair["a"]["runs"]] == ["a_tfl2", "a_tfl"]
    assert pair["metrics"][0]["replicates"]["a"] == {"runs": 2, "repetitions": 2}
    assert pair["metrics"][0]["method"] == WITHIN_RUN  # B has one run: the noise floor rules
    # a comma-separated side of --pair is a set of replicates
    (pair,) = compare([tmp_path / "A"], [tmp_path / "B"], pairs=["a_tfl,a_tfl2=b_ort"])["pairs"][:1]
    assert pair["metrics"][0]["replicates"]["a"]["runs"] == 2 and pair["b"]["sut"] == "onnxruntime-cpu"


@pytest.mark.parametrize("spec, message", [
    ("a_tfl", "is not A_RUN=B_RUN"), ("nothing=b_tfl", "no run in A named 'nothing'"),
    ("a_tfl=b_tfl,nothing", "no run in B"), ("a_tfl=offline_run", "needs one benchmark and scenario"),
])
def test_bad_pairs_are_usage_errors(tmp_path, spec, message):
    synthetic(tmp_path / "A" / "a_tfl", lognormal_ns(1))
    synthetic(tmp_path / "B" / "b_tfl", lognormal_ns(2))
    shutil.copytree(OFFLINE, tmp_path / "B" / "offline_run")
    with pytest.raises(UsageError, match=message):
        compare([tmp_path / "A"], [tmp_path / "B"], pairs=[spec])


def test_unpaired_packages_and_determinism(tmp_path):
    """Packages (folder or .tar.gz, runs nested anywhere) pair by configuration; the rest is
    reported as unpaired. A fixed seed gives the same answer."""
    pkg_a, pkg_b = tmp_path / "pkg_a", tmp_path / "pkg_b"
    synthetic(pkg_a / "tinyharness" / "sys-a" / "digits" / "r1", lognormal_ns(1))
    synthetic(pkg_a / "tinyharness" / "sys-a" / "other" / "r2", lognormal_ns(2), "other01")
    synthetic(pkg_b / "tinyharness" / "sys-b" / "digits" / "r3", lognormal_ns(3, scale=1.5))
    shutil.copytree(OFFLINE, pkg_b / "tinyharness" / "sys-b" / "offline" / "r4")
    with tarfile.open(tmp_path / "pkg_b.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(pkg_b, arcname="pkg_b")
    first = compare([pkg_a], [tmp_path / "pkg_b.tar.gz"], seed=7)
    assert [(p["benchmark"], p["scenario"]) for p in first["pairs"]] == [("digits01", "single-stream")]
    assert metrics(first)["p50 latency"]["verdict"] == "B slower"
    assert sorted((u["side"], u["benchmark"], u["scenario"]) for u in first["unpaired"]) == [
        ("A", "other01", "single-stream"), ("B", "digits01", "offline")]
    assert compare([pkg_a], [pkg_b], seed=7)["pairs"][0]["metrics"] == first["pairs"][0]["metrics"]
    assert compare([pkg_a], [tmp_path / "pkg_b.tar.gz"], seed=7) == first
    assert compare([pkg_a], [pkg_b], seed=8)["pairs"][0]["metrics"] != first["pairs"][0]["metrics"]
    # an archive member names a run for --pair as printed
    member = next(p["b"]["path"] for p in first["pairs"])
    assert compare([pkg_a], [tmp_path / "pkg_b.tar.gz"], seed=7, pairs=[f"r1={member}"])["pairs"][0][
        "metrics"] == first["pairs"][0]["metrics"]


# -- offline and the schema-1 runs -----------------------------------------------------------------
def test_offline_one_value_per_run(tmp_path):
    """Offline against offline (the schema-1 tflite-cpu run): samples/s from the completion times,
    no CI with one run a side, and the note says where the query's size came from; replicated
    offline runs get a CI from the runs alone."""
    twin = shutil.copytree(OFFLINE, tmp_path / "twin")
    result = compare([OFFLINE], [twin])
    m = metrics(result)["offline throughput"]
    completions = np.load(OFFLINE / "latencies.npy")
    assert m["a"] == pytest.approx(len(completions) / (completions.max() / 1e9))
    assert m["ci"] is None and m["relative_difference"] == 0.0 and m["method"] == "noise floor, no CI"
    assert m["verdict"] == WITHIN_NOISE and "one query" in m["note"]
    assert "--expected-qps" in m["note"]  # expected_qps_source "given"
    assert {k: result["pairs"][0]["a"][k] for k in ("path", "sut", "valid")} == {
        "path": str(OFFLINE), "sut": "tflite-cpu", "valid": False}
    # a run 30 % slower: beyond the floor, so slower even without a CI
    for name, factor in (("a1", 1.0), ("a2", 1.01), ("a3", 0.99)):
        run = shutil.copytree(OFFLINE, tmp_path / "A" / name)
        np.save(run / "latencies.npy", (completions * factor).astype(np.int64))
    for name, factor in (("b1", 1.30), ("b2", 1.31), ("b3", 1.29)):
        run = shutil.copytree(OFFLINE, tmp_path / "B" / name)
        np.save(run / "latencies.npy", (completions * factor).astype(np.int64))
    single = metrics(compare([tmp_path / "A" / "a1"], [tmp_path / "B" / "b1"]))["offline throughput"]
    assert single["verdict"] == SLOWER and single["slowdown"] == pytest.approx(0.30, abs=1e-3)
    replicated = metrics(compare([tmp_path / "A"], [tmp_path / "B"]))["offline throughput"]
    assert replicated["method"] == HIERARCHICAL and replicated["verdict"] == SLOWER
    assert replicated["slowdown_ci"][0] < 0.30 < replicated["slowdown_ci"][1]


def test_schema1_single_stream_against_itself():
    """The schema-1 single-stream run read unchanged: its stored latencies give p50/p90 with CIs,
    its windows the window throughput, and nothing differs from itself."""
    result = compare([SINGLE_STREAM], [SINGLE_STREAM])
    m = metrics(result)
    assert list(m) == ["p50 latency", "p90 latency", "median window throughput"]
    assert (m["p50 latency"]["a"], m["p90 latency"]["a"]) == (5.525, 8.998)  # as summary.json says
    assert m["median window throughput"]["a"] == 142974.848
    for row in m.values():
        assert row["relative_difference"] == 0.0 and row["ci"][0] <= 0 <= row["ci"][1]
        assert row["verdict"] == WITHIN_NOISE
    assert result["unpaired"] == []


def test_schema1_device_timed_run_and_missing_latencies(tmp_path):
    """The serial run has windows but no latency_us nor latencies.npy: only the window row. A run
    whose latencies.npy is gone falls back to the summary's percentiles, without a CI."""
    assert list(metrics(compare([SERIAL], [SERIAL]))) == ["median window throughput"]
    bare = shutil.copytree(SINGLE_STREAM, tmp_path / "bare")
    (bare / "latencies.npy").unlink()
    m = metrics(compare([SINGLE_STREAM], [bare]))
    assert m["p50 latency"]["a"] == 5.525 and m["p50 latency"]["ci"] is None
    assert m["p50 latency"]["verdict"] == WITHIN_NOISE
    assert m["p50 latency"]["note"] == "latencies.npy missing: summary values, no CI"


def test_schema1_folder_pairs_every_run():
    result = compare([FIXTURES], [FIXTURES])
    assert [(p["benchmark"], p["scenario"], p["a"]["sut"]) for p in result["pairs"]] == [
        ("digits01", "single-stream", "onnxruntime-cpu"), ("digits01", "offline", "tflite-cpu"),
        ("kws01", "single-stream", "serial")]
    assert [p["a"]["valid"] for p in result["pairs"]] == [False, False, True]
    assert result["unpaired"] == []
    json.dumps(result)  # JSON-ready, as --json prints it


# -- the command line ------------------------------------------------------------------------------
def test_fail_above_exit_codes(tmp_path):
    """--fail-above: 1 when a metric is slower by more than PCT with confidence (and says which), 0
    when not, 2 for a bad value."""
    a = synthetic(tmp_path / "a", lognormal_ns(11))
    near = synthetic(tmp_path / "near", lognormal_ns(12, scale=1.02))
    slow = synthetic(tmp_path / "slow", lognormal_ns(13, scale=1.3))
    runner = CliRunner()
    invoke = lambda *args: runner.invoke(cli, ["compare", *map(str, args)])  # noqa: E731

    assert invoke(a, near, "--fail-above", "1").exit_code == 0  # within the noise floor
    assert invoke(a, slow, "--fail-above", "40").exit_code == 0  # slower, but not by 40 %
    tripped = invoke(a, slow, "--fail-above", "10")
    assert tripped.exit_code == 1, tripped.output
    assert "regression" in tripped.output and "p50 latency" in tripped.output
    as_json = invoke(a, slow, "--fail-above", "10", "--json")
    assert as_json.exit_code == 1
    result = json.loads(as_json.stdout)
    assert result["fail_above"] == 0.10
    assert {r["metric"] for r in result["regressions"]} == {"p50 latency", "p90 latency",
                                                            "median window throughput"}
    assert all(r["slowdown_low"] > 0.10 for r in result["regressions"])
    assert invoke(slow, a, "--fail-above", "10").exit_code == 0  # B faster is no regression
    for bad in (["--fail-above", "-5"], ["--fail-above", "ten"], ["--noise-floor", "-1"],
                ["--pair", "no-equals-sign"]):
        assert invoke(a, slow, *bad).exit_code == 2, bad


def test_cli(tmp_path):
    """Through the CLI: a copy of the fixture run three times as slow is slower on every metric;
    the table form prints."""
    slow = synthetic(tmp_path / "slow", np.load(SINGLE_STREAM / "latencies.npy") * 3)
    proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(SINGLE_STREAM),
                           str(slow), "--json", "--resamples", "500", "--pair",
                           f"{SINGLE_STREAM.name}={slow.name}"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pairs"][0]["a"]["sut"] == "onnxruntime-cpu" and result["resamples"] == 500
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == "B slower", m[name]
    assert m["p50 latency"]["ci"][0] > 1.0  # more than twice as slow
    table = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(FIXTURES),
                            str(FIXTURES)], check=False, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    for text in ("p50 latency, us", "offline, samples/s", "window median, inf/s", "kws01",
                 "within noise", "noise floor of 5.0%", "A = serial (1 run)"):
        assert text in table.stdout
    bad = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(FIXTURES),
                          str(FIXTURES), "--pair", "nothing=here"], check=False, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "no run in A named 'nothing'" in bad.stderr


# -- bounded options and memory (hardening) --------------------------------------------------------
@pytest.mark.parametrize("option, value, words", [
    ("--confidence", "nan", "'nan' is not a finite number"),
    ("--confidence", "1", "0<x<1"),
    ("--resamples", "1000000000", "100<=x<=100000"),
    ("--resamples", "99", "100<=x<=100000"),
    ("--seed", "-1", "-1 is not in the range x>=0"),
    ("--noise-floor", "nan", "'nan' is not a finite number"),
    ("--fail-above", "inf", "'inf' is not a finite number"),
])
def test_out_of_range_options_are_one_line_usage_errors(option, value, words):
    """Issue defect 12: --confidence nan gave a traceback; --resamples 1000000000 took 7.45 GiB."""
    done = CliRunner().invoke(cli, ["compare", str(SINGLE_STREAM), str(SINGLE_STREAM), option, value])
    assert done.exit_code == 2, done.output
    assert words in done.output and option in done.output and "Traceback" not in done.output


def test_the_library_refuses_what_the_options_refuse():
    for bad in ({"confidence": float("nan")}, {"confidence": 1.0}, {"resamples": 0},
                {"resamples": 10**9}):
        with pytest.raises(UsageError):
            compare([SINGLE_STREAM], [SINGLE_STREAM], **bad)


def test_the_cli_range_is_the_library_maximum():
    from tinyharness.cli.compare import RESAMPLES
    from tinyharness.compare.metrics import MAX_RESAMPLES

    assert RESAMPLES[1] == MAX_RESAMPLES


class SizeCheckedRng:
    """A numpy Generator that refuses (before allocating) any draw of more than ``limit`` values."""

    def __init__(self, seed: int, limit: int) -> None:
        self.rng, self.limit, self.largest = np.random.default_rng(seed), limit, 0

    def __getattr__(self, name):
        method = getattr(self.rng, name)

        def checked(*args, size=None, **kwargs):
            shape = size if size is not None else (args[2] if name == "integers" and len(args) > 2 else
                                                   args[-1] if name in ("beta", "multinomial") else 1)
            values = int(np.prod(shape)) * (len(args[1]) if name == "multinomial" else 1)
            assert values <= self.limit, f"{name} of {values:,} values"
            self.largest = max(self.largest, values)
            return method(*args, size=size, **kwargs) if size is not None else method(*args, **kwargs)
        return checked


def test_bootstrap_draws_in_chunks_of_bounded_size(monkeypatch):
    """Issue defect 12: the draws were one array of resamples x runs (x windows): 7.45 GiB at
    --resamples 1e9. Now no draw holds more than ELEMENTS values (4 Mi, 32 MiB, in the code; 10 000
    here so that the test is quick), for any resamples, runs or windows."""
    from tinyharness.compare import bootstrap

    monkeypatch.setattr(bootstrap, "ELEMENTS", 10_000)
    rng = SizeCheckedRng(1, 10_000)
    many_runs = [[bootstrap.Value(100.0 + i % 7), bootstrap.Value(100.0)] for i in range(100)]
    draws = bootstrap.hierarchical_draws(many_runs, 2000, rng)  # 2000 x 100 runs x 2 repetitions
    assert draws.shape == (2000,) and rng.largest > 1000
    assert 100.0 < draws.min() and draws.max() < 106.0  # means of values from 100 to 106
    windows = bootstrap.Median(np.arange(1000, dtype=float))  # 2000 x 1000 windows
    medians = windows.draw(2000, rng)
    assert medians.shape == (2000,) and 400 < medians.mean() < 600


def test_more_repetitions_or_windows_than_compare_reads_is_an_error(tmp_path):
    from tinyharness.compare.pairing import MAX_VALUES

    run = synthetic(tmp_path / "many", lognormal_ns(5, n=200))
    document = json.loads((run / "summary.json").read_text())
    document["windows"]["throughput_ips"] = [1000.0] * (MAX_VALUES + 1)
    (run / "summary.json").write_text(json.dumps(document))
    with pytest.raises(UsageError, match=f"{MAX_VALUES + 1:,} windows in summary.json; compare reads "
                                         f"at most {MAX_VALUES:,} a run"):
        compare([run], [SINGLE_STREAM], resamples=100)
    document = json.loads((SINGLE_STREAM / "summary.json").read_text())
    document["repetitions"] = repetition_section([lognormal_ns(6, n=10)] * (MAX_VALUES + 1))
    (run / "summary.json").write_text(json.dumps(document))
    with pytest.raises(UsageError, match=f"{MAX_VALUES + 1:,} repetitions in summary.json; compare "
                                         f"reads at most {MAX_VALUES:,} a run"):
        compare([run], [SINGLE_STREAM], resamples=100)


# -- runs that did not finish are skipped ----------------------------------------------------------
def unfinished_run(root: Path, state: str = "failed", error: str = "RuntimeError: device fell over") -> Path:
    """A run directory as a failed (or interrupted) run leaves it: status.json, a partial summary
    (the fixture's own, so that reading it as a result would pair it) and no summary.json."""
    run = root / "20261202-041625-a25538_digits01_onnxruntime-cpu_single-stream"
    run.mkdir(parents=True)
    shutil.copy(SINGLE_STREAM / "summary.json", run / "partial_summary.json")
    shutil.copy(SINGLE_STREAM / "latencies.npy", run / "latencies.npy")
    (run / "status.json").write_text(json.dumps({"state": state, "error": error,
                                                 "time": "2026-12-02T04:16:27+00:00", "files": []}))
    return run


def test_compare_skips_failed_and_interrupted_runs_with_a_warning(tmp_path, capsys):
    failed = unfinished_run(tmp_path / "a")
    interrupted = unfinished_run(tmp_path / "b", "interrupted", "terminated (SIGTERM)")
    with_them = compare([FIXTURES, failed], [interrupted, FIXTURES], seed=3)
    assert with_them["pairs"] == compare([FIXTURES], [FIXTURES], seed=3)["pairs"]
    assert with_them["unpaired"] == []  # neither counted as a run
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipped {failed} (status: failed): RuntimeError: device fell over",
        f"warning: skipped {interrupted} (status: interrupted): terminated (SIGTERM)"]


def test_compare_with_only_failed_runs_on_a_side_exits_2_with_one_line(tmp_path):
    failed = unfinished_run(tmp_path / "a")
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(failed),
                           str(SINGLE_STREAM)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"warning: skipped {failed} (status: failed): RuntimeError: device fell over",
        "tinyharness: error: no finished runs to read: the 1 run directory given did not finish "
        "(see the warnings above)"]


# -- against a published MLPerf Tiny result (issue 12 §3) -------------------------------------------
PUBLISHED = Path(__file__).resolve().parents[2].parent / "shared" / "mlperf_tiny" / "published"


def published_tree(root: Path, ips: float, windows: tuple[float, ...] = (), top1: float = 90.1) -> Path:
    """``root/tiny_results_v1.1/closed/acme``: one kws system, "board1", at ``ips`` inf/s."""
    base = root / "tiny_results_v1.1" / "closed" / "acme"
    perf = base / "results" / "board1" / "kws" / "performance"
    perf.mkdir(parents=True)
    blocks = "".join(f"1.000 ulp-mlperf: Performance results for window {i}:\n"
                     f"1.000 ulp-mlperf:   Throughput   :  {w:.3f} inf./sec.\n" for i, w in enumerate(windows))
    (perf / "results.txt").write_text(f"{blocks}1.000 ulp-mlperf: Median throughput is {ips:.3f} inf./sec.\n")
    (perf.parent / "accuracy").mkdir()
    (perf.parent / "accuracy" / "results.txt").write_text(f"1.000 ulp-mlperf: Top-1: {top1}%\n")
    (base / "systems").mkdir()
    (base / "systems" / "board1.json").write_text(json.dumps({
        "Board Name": "Board One", "Processor(s) Name": "Cortex-M7", "Processor(s) Frequencies": "480 MHz",
        "Inference Framework ": "TFLM"}))
    return root


@pytest.mark.parametrize("ips, verdict", [(150.0, "B faster"), (165.0, WITHIN_NOISE), (200.0, "B slower")])
def test_a_run_against_a_published_figure_and_the_noise_floor(tmp_path, ips, verdict):
    """The kws01 fixture run (median window throughput 167.855 inf/s, top-1 90.1 %) as B against
    a published single figure as A: no CI; a verdict only beyond the 5 % floor (the published
    log has no windows, so nothing raises the floor)."""
    from tinyharness.compare.published import compare_paths

    tree = published_tree(tmp_path, ips)
    result = compare_paths([], [SERIAL], [f"{tree}:acme/board1"])
    (pair,) = result["pairs"]
    rows = {m["metric"]: m for m in pair["metrics"]}
    tp = rows["median throughput"]
    assert (tp["a"], tp["b"], tp["ci"]) == (ips, 167.855, None)
    assert tp["ratio"] == pytest.approx(167.855 / ips) and tp["verdict"] == verdict
    assert rows["latency (1000 / throughput)"]["a"] == pytest.approx(1000 / ips)
    assert rows["latency (1000 / throughput)"]["verdict"] == verdict
    assert rows["top-1 accuracy"]["verdict"] == "equal at the published precision"
    assert pair["a"]["system"] == {"name": "acme/board1", "board": "Board One",
                                   "processor": "Cortex-M7 at 480 MHz", "framework": "TFLM",
                                   "accelerator": ""}
    assert pair["b"]["sut"] == "serial" and pair["a"]["published"] is True
    assert any("no run-to-run spread" in n for n in pair["notes"])


def test_published_windows_raise_the_noise_floor(tmp_path):
    from tinyharness.compare.published import compare_paths

    tree = published_tree(tmp_path, 150.0, windows=(120.0, 150.0, 190.0, 140.0, 160.0))
    tp = compare_paths([], [SERIAL], [str(tree)])["pairs"][0]["metrics"][0]
    assert tp["verdict"] == WITHIN_NOISE and "raised by the windows' drift" in tp["note"]


def test_compare_cli_with_a_published_tree_prints_both_systems(tmp_path):
    tree = published_tree(tmp_path, 16.785)
    for args in (["--published", f"{tree}:v1.1/ACME/board1", str(SERIAL)], [str(tree), str(SERIAL)]):
        proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", *args], check=False,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "A = published acme/board1 (v1.1, closed), B = serial (run " in out
        assert "A\tacme/board1\tBoard One\tCortex-M7 at 480 MHz\tTFLM" in out
        assert "B\tserial\tunspecified on /dev/pts/0\t-\tserial DUT protocol ULPMark" in out
        assert "median throughput, inf/s\t16.785\t167.855\t10\t+900.0%\tB faster" in out
        assert "top-1 accuracy, %\t90.1\t90.1\t-\t+0.00 pp\tequal at the published precision" in out
        assert "no run-to-run spread" in out


def test_compare_published_fail_above_and_bad_input(tmp_path):
    tree = published_tree(tmp_path, 1000.0)
    cli_compare = [sys.executable, "-m", "tinyharness.cli", "compare"]
    slow = subprocess.run([*cli_compare, "--published", str(tree), str(SERIAL), "--fail-above", "10"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert slow.returncode == 1 and "regression: kws01 single-stream median throughput" in slow.stderr
    for args, message in ((["--published", f"{tree}:acme/bord1", str(SERIAL)], "did you mean 'board1'"),
                          ([str(tree), str(tree)], "published results on one side only"),
                          (["--published", str(tree)], "with --published give one path"),
                          ([str(tree), str(SERIAL), "--pair", "a=b"], "--pair names runs")):
        bad = subprocess.run([*cli_compare, *args], check=False, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="MLPerf Tiny results tree"):  # the runs-only library call
        compare([tree], [SERIAL])


def test_compare_with_a_real_published_kws_result():
    """The kws01 fixture run against ST's NUCLEO-L4R5ZI kws result of v1.2 (23.155 inf/s, top-1
    90.2 %, 1820.454 uJ/inf; X-CUBE-AI v9.0 on a Cortex-M4 at 120 MHz)."""
    from tinyharness.compare.published import compare_paths

    if not (PUBLISHED / "v1.2").is_dir():
        pytest.skip(f"published MLPerf Tiny results (excerpt) not found at {PUBLISHED}")
    result = compare_paths([], [SERIAL], [f"{PUBLISHED}:v1.2/STMicroelectronics/NUCLEO_L4R5ZI"])
    (pair,) = result["pairs"]
    assert pair["a"]["system"]["board"] == "NUCLEO-L4R5ZI"
    assert pair["a"]["system"]["processor"] == "32-bit Arm Cortex-M4 (DSP + FPU) at 120 MHz"
    assert pair["a"]["system"]["framework"] == "X-CUBE-AI v9.0"
    rows = {m["metric"]: m for m in pair["metrics"]}
    assert (rows["median throughput"]["a"], rows["top-1 accuracy"]["a"], rows["median energy"]["a"]) == (
        23.155, 90.2, 1820.454)
    assert rows["median throughput"]["verdict"] == "B faster" and rows["top-1 accuracy"]["verdict"] == "B lower"
