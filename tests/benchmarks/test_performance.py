"""Performance mode for every MLPerf Tiny benchmark on every CPU SUT, shortened with
--min-duration 0.2: the run is INVALID because of the override (and only that), but complete and
schema-valid, with the 5 MLPerf Tiny windows on the first 5 files (ad01: each file's first window)
and their median throughput. Each SUT uses its default reference model from the mirror."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

import _helpers as h

pytestmark = pytest.mark.slow

BENCHMARKS = ("kws01", "vww01", "ic01", "ic02", "ad01")
MIN_DURATION = 0.2
WINDOWS = 5


@pytest.fixture
def dataset_root(request, bench):
    """The dataset root for ``bench``: the real kws01 set, synthetic images, synthetic ad01."""
    if bench == "kws01":
        root = request.getfixturevalue("kws_root")
        files = [line.split(",")[0] for line in (root / "kws01" / "y_labels.csv").read_text().splitlines()]
    elif bench == "ad01":
        root, rows = request.getfixturevalue("ad_dataset")
        files = [name for name, _ in rows]
    else:
        root = request.getfixturevalue("image_root")
        folder = "vww01" if bench == "vww01" else "ic01"
        files = [line.split(",")[0] for line in (root / folder / "y_labels.csv").read_text().splitlines()]
    assert len(files) >= WINDOWS
    return root, files


@pytest.mark.parametrize("sut", h.CPU_SUTS)
@pytest.mark.parametrize("bench", BENCHMARKS)
def test_shortened_performance_run_is_complete_and_invalid_only_by_the_override(
        cli_run, dataset_root, bench, sut):
    root, files = dataset_root
    summary, run_dir = cli_run("--benchmark", bench, "--sut", sut, "--mode", "performance",
                               "--min-duration", MIN_DURATION, "--dataset", root, expect_rc=1)
    # INVALID because of the override, for no other reason
    reasons = [r["message"] for r in summary["invalid_reasons"]]
    assert summary["valid"] is False and summary["errors"] == []
    assert any(f"min_duration overridden to {MIN_DURATION:g} s" in r for r in reasons), reasons
    assert reasons == summary["settings"]["overrides"], reasons
    assert {r["code"] for r in summary["invalid_reasons"]} == {"override"}, reasons
    assert summary["settings"]["min_duration_s"] == MIN_DURATION
    # the default reference model of this SUT, found in the mirror
    assert summary["model"]["found_in"] == "mirror" and summary["model"]["reference"]
    assert summary["mode"] == "performance" and summary["accuracy"] is None
    # single-stream part: complete, and latencies.npy holds every query
    lat = summary["latency_us"]
    assert summary["performance"]["duration_s"] >= MIN_DURATION
    assert lat["count"] == summary["performance"]["queries"] >= summary["settings"]["min_query_count"]
    latencies = np.load(run_dir / "latencies.npy")
    assert latencies.dtype == np.uint32 and len(latencies) == lat["count"] and (latencies > 0).all()
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["max"]
    # the MLPerf Tiny view: 5 windows on the first 5 files, median throughput
    win = summary["windows"]
    assert win["window_min_s"] == pytest.approx(MIN_DURATION / WINDOWS)
    assert len(win["throughput_ips"]) == len(win["details"]) == WINDOWS
    assert [d["file"] for d in win["details"]] == files[:WINDOWS]
    per_file = 196 if bench == "ad01" else 1  # ad01: the first window of each file
    assert [d["sample_index"] for d in win["details"]] == [per_file * k for k in range(WINDOWS)]
    for d, t in zip(win["details"], win["throughput_ips"]):
        assert d["runtime_s"] >= win["window_min_s"] and d["inferences"] >= 1 and d["attempts"] >= 1
        assert t == d["throughput_ips"] == pytest.approx(d["inferences"] / d["runtime_s"], rel=1e-3)
    assert win["median_throughput_ips"] == pytest.approx(statistics.median(win["throughput_ips"]), abs=1e-3)
    assert win["median_throughput_ips"] > 0
    # latency = 1 / median throughput, in us rounded to 6 decimals (schema 3: every latency in us)
    assert win["latency_us"] == pytest.approx(1e6 / win["median_throughput_ips"], rel=1e-5, abs=1e-6)
    text = (run_dir / "summary.txt").read_text()
    assert "Result is : INVALID" in text and "MLPerf Tiny median throughput" in text
