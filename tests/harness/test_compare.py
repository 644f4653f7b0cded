"""``tinyharness compare``: verdicts from bootstrap CIs on stored latencies, pairing, packages.

Inputs are the schema-1 fixture runs (as the previous version wrote them) and copies of them whose
summary.json this file writes through the run model, so every input is a run the reader accepts.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tinyharness.compare import compare, percentile_draws
from tinyharness.results.read import read_run, read_summary
from tinyharness.results.sections import EarlyStoppingResult, Latency, Window, Windows
from tinyharness.stats import percentile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
OFFLINE = FIXTURES / "20261201-224014_digits01_tflite-cpu_offline"
SERIAL = FIXTURES / "20261201-224022_kws01_serial_single-stream"


def lognormal_ns(seed: int, n: int = 20_000, scale: float = 1.0) -> np.ndarray:
    """Latencies around 100 µs with a right tail, as a real SUT's."""
    return (scale * 100_000 * np.random.default_rng(seed).lognormal(0.0, 0.25, n)).astype(np.int64)


def synthetic(dest: Path, latencies: np.ndarray, benchmark: str | None = None) -> Path:
    """A copy of the single-stream fixture whose latencies, statistics and windows agree with
    ``latencies``, its summary.json written (schema 2) from the run model."""
    shutil.copytree(SINGLE_STREAM, dest)
    np.save(dest / "latencies.npy", latencies.astype(np.int64))
    summary = read_summary(dest)
    # Five windows at the run's mean rate, each 0.5 % noisy (seeded by the data itself).
    noise = np.random.default_rng(int(latencies[:10].sum())).normal(1.0, 0.005, 5)
    rates = [round(1e9 / float(latencies.mean()) * f, 3) for f in noise]
    windows = [Window(i, f"w{i}.bin", 1000, round(1000 / ips, 6), ips, 1) for i, ips in enumerate(rates)]
    summary = dataclasses.replace(
        summary, benchmark=benchmark or summary.benchmark, latency_us=Latency.from_ns(latencies),
        early_stopping=EarlyStoppingResult.from_ns(latencies),
        performance=dataclasses.replace(summary.performance, queries=len(latencies)),
        windows=Windows.from_windows(windows, summary.windows.window_min_s))
    (dest / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1))
    assert read_run(dest).summary == summary  # valid against the run model, read back unchanged
    return dest


def metrics(result: dict, pair: int = 0) -> dict[str, dict]:
    return {m["metric"]: m for m in result["pairs"][pair]["metrics"]}


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


def test_same_distribution_no_difference(tmp_path):
    a = synthetic(tmp_path / "a", lognormal_ns(11))
    b = synthetic(tmp_path / "b", lognormal_ns(12))
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency"):
        lo, hi = m[name]["ci"]
        assert lo < 0 < hi, m[name]
        assert m[name]["verdict"] == "no significant difference"


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


def test_unpaired_packages_and_determinism(tmp_path):
    """Packages (folder or .tar.gz, runs nested anywhere) pair by (benchmark, scenario); the rest is
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


def test_offline_plain_ratio(tmp_path):
    """Offline against offline (the schema-1 tflite-cpu run): samples/s from the completion times,
    no CI, and the note says where the query's size came from."""
    twin = shutil.copytree(OFFLINE, tmp_path / "twin")
    result = compare([OFFLINE], [twin])
    m = metrics(result)["offline throughput"]
    completions = np.load(OFFLINE / "latencies.npy")
    assert m["a"] == pytest.approx(len(completions) / (completions.max() / 1e9))
    assert m["ci"] is None and m["relative_difference"] == 0.0
    assert m["verdict"] == "no difference (no CI)" and "one query" in m["note"]
    assert "--expected-qps" in m["note"]  # expected_qps_source "given"
    assert result["pairs"][0]["a"] == {"path": str(OFFLINE), "sut": "tflite-cpu", "valid": False}


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
        width = lambda row: row["ci"][1] - row["ci"][0]  # noqa: E731
        assert width(m[name]) < width(small[name]) and m[name]["verdict"] == "no significant difference"


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
        assert row["verdict"] == "no significant difference"
    assert result["unpaired"] == []


def test_schema1_device_timed_run_and_missing_latencies(tmp_path):
    """The serial run has windows but no latency_us nor latencies.npy: only the window row. A run
    whose latencies.npy is gone falls back to the summary's percentiles, without a CI."""
    assert list(metrics(compare([SERIAL], [SERIAL]))) == ["median window throughput"]
    bare = shutil.copytree(SINGLE_STREAM, tmp_path / "bare")
    (bare / "latencies.npy").unlink()
    m = metrics(compare([SINGLE_STREAM], [bare]))
    assert m["p50 latency"]["a"] == 5.525 and m["p50 latency"]["ci"] is None
    assert m["p50 latency"]["verdict"] == "no difference (no CI)"
    assert m["p50 latency"]["note"] == "latencies.npy missing: summary values, no CI"


def test_schema1_folder_pairs_every_run():
    result = compare([FIXTURES], [FIXTURES])
    assert [(p["benchmark"], p["scenario"], p["a"]["sut"]) for p in result["pairs"]] == [
        ("digits01", "single-stream", "onnxruntime-cpu"), ("digits01", "offline", "tflite-cpu"),
        ("kws01", "single-stream", "serial")]
    assert [p["a"]["valid"] for p in result["pairs"]] == [False, False, True]
    assert result["unpaired"] == []
    json.dumps(result)  # JSON-ready, as --json prints it


def test_cli(tmp_path):
    """Through the CLI: a copy of the fixture run three times as slow is slower on every metric;
    the table form prints."""
    slow = synthetic(tmp_path / "slow", np.load(SINGLE_STREAM / "latencies.npy") * 3)
    proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(SINGLE_STREAM),
                           str(slow), "--json", "--resamples", "500"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pairs"][0]["a"]["sut"] == "onnxruntime-cpu" and result["resamples"] == 500
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == "B slower", m[name]
    assert m["p50 latency"]["ci"][0] > 1.0  # more than twice as slow
    table = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(FIXTURES),
                            str(FIXTURES)], check=False, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    for text in ("p50 latency", "offline throughput", "median window throughput", "kws01"):
        assert text in table.stdout
