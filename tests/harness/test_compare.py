"""``tinyharness compare``: verdicts from bootstrap CIs on stored latencies, pairing, packages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from tinyharness.compare import compare, percentile_draws
from tinyharness.logs import check_run_directory
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.stats import LatencyStats


def real_run(root: Path, sut: str = "null", scenario: str = "single-stream", min_duration: float = 0.1) -> Path:
    request = RunRequest(sut=sut, scenario=scenario, output=root, min_duration_s=min_duration)
    return Run(request).execute(Progress(False))[1].path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {"null1": real_run(root / "a"), "null2": real_run(root / "b"),
            "onnx": real_run(root / "c", "onnxruntime-cpu"),
            "offline": real_run(root / "d", scenario="offline", min_duration=0.05)}


def lognormal_ns(seed: int, n: int = 20_000, scale: float = 1.0) -> np.ndarray:
    """Latencies around 100 µs with a right tail, as a real SUT's."""
    return (scale * 100_000 * np.random.default_rng(seed).lognormal(0.0, 0.25, n)).astype(np.int64)


def synthetic(base: Path, dest: Path, latencies: np.ndarray, benchmark: str | None = None) -> Path:
    """A copy of a real run directory whose latencies, statistics and windows agree with
    ``latencies`` (so check_run_directory passes)."""
    shutil.copytree(base, dest)
    np.save(dest / "latencies.npy", latencies.astype(np.int64))
    summary = json.loads((dest / "summary.json").read_text())
    stats = LatencyStats.from_ns(latencies)
    summary["latency_us"] = stats.to_us_dict()
    summary["early_stopping"].update(met=stats.early.met, min_queries=stats.early.min_queries,
                                     discarded=stats.early.discarded)
    summary["performance"]["queries"] = len(latencies)
    # Five windows at the run's mean rate, each 0.5 % noisy (seeded by the data itself).
    noise = np.random.default_rng(int(latencies[:10].sum())).normal(1.0, 0.005, 5)
    ips = [round(1e9 / float(latencies.mean()) * f, 3) for f in noise]
    summary["windows"]["throughput_ips"] = ips
    summary["windows"]["median_throughput_ips"] = float(np.median(ips))
    if benchmark:
        summary["benchmark"] = benchmark
    (dest / "summary.json").write_text(json.dumps(summary, indent=1))
    assert check_run_directory(dest) == []
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
    freq = lambda draws: np.searchsorted(values, draws, side="left")
    a, b = (np.bincount(freq(d), minlength=n) / reps for d in (literal, exact))
    assert np.abs(a - b).max() < 0.015


def test_same_distribution_no_difference(runs, tmp_path):
    a = synthetic(runs["null1"], tmp_path / "a", lognormal_ns(11))
    b = synthetic(runs["null1"], tmp_path / "b", lognormal_ns(12))
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency"):
        lo, hi = m[name]["ci"]
        assert lo < 0 < hi, m[name]
        assert m[name]["verdict"] == "no significant difference"


@pytest.mark.parametrize("scale, verdict, throughput_verdict", [(1.2, "B slower", "B slower"),
                                                                 (0.8, "B faster", "B faster")])
def test_shifted_distribution(runs, tmp_path, scale, verdict, throughput_verdict):
    a = synthetic(runs["null1"], tmp_path / "a", lognormal_ns(11))
    b = synthetic(runs["null1"], tmp_path / "b", lognormal_ns(12, scale=scale))
    m = metrics(compare([a], [b]))
    for name in ("p50 latency", "p90 latency"):
        lo, hi = m[name]["ci"]
        assert m[name]["verdict"] == verdict
        assert lo < scale - 1 < hi and not lo < 0 < hi, m[name]
        assert m[name]["relative_difference"] == pytest.approx(scale - 1, abs=0.03)
    assert m["median window throughput"]["verdict"] == throughput_verdict


def test_unpaired_packages_and_determinism(runs, tmp_path):
    """Packages (folder or .tar.gz, runs nested anywhere) pair by (benchmark, scenario); the rest is
    reported as unpaired. A fixed seed gives the same answer."""
    pkg_a, pkg_b = tmp_path / "pkg_a", tmp_path / "pkg_b"
    synthetic(runs["null1"], pkg_a / "tinyharness" / "sys-a" / "digits" / "r1", lognormal_ns(1))
    synthetic(runs["null1"], pkg_a / "tinyharness" / "sys-a" / "other" / "r2", lognormal_ns(2), "other01")
    synthetic(runs["null1"], pkg_b / "tinyharness" / "sys-b" / "digits" / "r3", lognormal_ns(3, scale=1.5))
    shutil.copytree(runs["offline"], pkg_b / "tinyharness" / "sys-b" / "offline" / "r4")
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


def test_offline_plain_ratio(runs, tmp_path):
    twin = shutil.copytree(runs["offline"], tmp_path / "twin")
    m = metrics(compare([runs["offline"]], [twin]))["offline throughput"]
    assert m["ci"] is None and m["relative_difference"] == 0.0
    assert m["verdict"] == "no difference (no CI)" and "one query" in m["note"]


def test_100k_queries_compare_fast(runs, tmp_path):
    a = synthetic(runs["null1"], tmp_path / "a", lognormal_ns(1, n=100_000))
    b = synthetic(runs["null1"], tmp_path / "b", lognormal_ns(2, n=100_000))
    start = time.perf_counter()
    compare([a], [b], resamples=2000)
    assert time.perf_counter() - start < 1.5


def test_real_runs_cli(runs):
    """onnxruntime against the null SUT, through the CLI: massively slower, every metric."""
    proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(runs["null1"]),
                           str(runs["onnx"]), "--json", "--resamples", "500"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["pairs"][0]["a"]["sut"] == "null" and result["pairs"][0]["b"]["sut"] == "onnxruntime-cpu"
    m = metrics(result)
    for name in ("p50 latency", "p90 latency", "median window throughput"):
        assert m[name]["verdict"] == "B slower", m[name]
    assert m["p50 latency"]["ci"][0] > 1.0  # more than twice as slow
    table = subprocess.run([sys.executable, "-m", "tinyharness.cli", "compare", str(runs["null1"]),
                            str(runs["null2"])], check=False, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "p50 latency" in table.stdout, table.stderr
