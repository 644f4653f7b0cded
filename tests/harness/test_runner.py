"""Run: inputs validated before anything is created; a run that fails or is interrupted leaves a run
directory that says so, with what it measured; a device-timed SUT gets windows from its own clock."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeSUT, registered
from tinyharness.errors import RunFailed, UsageError
from tinyharness.plugins import registry
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.settings import Scenario


def _run(tmp_path: Path, sut: str = "fake", mode: str = "all", **options: str) -> Run:
    return Run(RunRequest(sut=sut, mode=mode, output=tmp_path, min_duration_s=0.2, sut_options=options))


def test_sut_raising_mid_run_marks_the_run_failed_and_keeps_what_was_measured(fake_suts, tmp_path):
    with pytest.raises(RunFailed, match="device fell over"):
        _run(tmp_path, fail_after="500").execute(Progress(enabled=False))
    (run_dir,) = tmp_path.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "RuntimeError: device fell over" in status["error"]
    # the accuracy pass (360 samples) finished before the failure: its log and numbers survive
    assert "accuracy.json" in status["files"]
    partial = json.loads((run_dir / "partial_summary.json").read_text())
    assert partial["valid"] is False and partial["accuracy"]["count"] == 360
    assert "error_runtime" in (run_dir / "detail.txt").read_text()
    assert not (run_dir / "summary.json").exists()


def test_interrupt_marks_the_run_interrupted(fake_suts, tmp_path):
    with pytest.raises(RunFailed, match="interrupted"):
        _run(tmp_path, mode="performance", fail_after="500", interrupt="1").execute(Progress(enabled=False))
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "interrupted"


def test_sut_options_are_parsed_before_anything_is_created(fake_suts, tmp_path):
    with pytest.raises(UsageError, match="nope"):
        _run(tmp_path, nope="1")
    with pytest.raises(UsageError, match="threads=0"):
        _run(tmp_path, threads="0")
    assert list(tmp_path.iterdir()) == []


def test_the_parsed_config_reaches_the_sut_and_the_summary(fake_suts, tmp_path):
    summary, _ = _run(tmp_path, mode="accuracy", threads="3", infer_ns="10").execute(Progress(enabled=False))
    assert summary.settings.sut_options == {"threads": "3", "infer_ns": "10"}
    assert summary.settings.sut_config == {"threads": 3, "infer_ns": 10, "prepare_ns": 0,
                                           "fail_after": None, "interrupt": False}
    assert summary.system.threads == 3  # describe() reports the SUT's threads()


def test_registry_rejects_a_second_sut_with_the_same_name(fake_suts):
    with pytest.raises(UsageError, match="both plugin 'fakes:fake,fake-offline,fake-device' and plugin"):
        with registered(FakeSUT):
            pass
    assert registry().pm.get_plugin("fakes:fake") is None  # the refused plugin is not left behind
    assert registry().suts["fake"] is FakeSUT


def test_device_timed_sut_gets_windows_from_its_own_clock(fake_suts, tmp_path):
    run = Run(RunRequest(sut="fake-device", mode="performance", output=tmp_path, min_duration_s=0.5))
    summary, run_dir = run.execute(Progress(enabled=False))
    windows = summary.windows
    # 0.5 s shortens the windows to 0.1 s: N = ceil(1.03 x 0.1 s / 2 ms) = 52 inferences each
    assert [d.inferences for d in windows.details] == [52] * 5
    assert windows.throughput_ips == [500.0] * 5 and windows.latency_us == 2000.0
    assert summary.latency_us is None and summary.qps is None  # no host-timed queries
    assert summary.model.found_in == "device" and summary.model.sha256 is None
    assert json.loads((run_dir.path / "status.json").read_text())["state"] == "done"


def test_model_option_is_refused_for_a_model_on_the_device(fake_suts, tmp_path):
    with pytest.raises(UsageError, match="--model does not apply"):
        Run(RunRequest(sut="fake-device", model=Path("x.tflite"), output=tmp_path))


def test_an_unsupported_scenario_is_refused(tmp_path):
    class SingleStreamOnly(FakeSUT):
        name = "fake-single-stream-only"
        scenarios = (Scenario.SINGLE_STREAM,)

    with registered(SingleStreamOnly):
        with pytest.raises(UsageError, match="does not support the offline scenario"):
            Run(RunRequest(sut=SingleStreamOnly.name, scenario="offline", output=tmp_path))


# -- --repeat ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sut", "scenario"), [("fake", "single-stream"), ("fake-offline", "offline"),
                                                ("fake-device", "single-stream")])
def test_repeat_keeps_every_repetition(fake_suts, tmp_path, sut, scenario):
    from tinyharness.logs import check_run_directory

    run = Run(RunRequest(sut=sut, scenario=scenario, mode="performance", output=tmp_path,
                         min_duration_s=0.05, repeat=3, sut_options={"infer_ns": "2000"}))
    summary, run_dir = run.execute(Progress(enabled=False))
    reps = summary.repetitions
    assert reps.count == 3 and [r.index for r in reps.runs] == [1, 2, 3]
    assert summary.settings.repeat == 3 and all(r.duration_s > 0 for r in reps.runs)
    assert check_run_directory(run_dir.path) == []  # the schema, and latencies.npy's length
    if sut == "fake-device":  # windows only: no per-query values to store
        assert all(r.queries == 0 and r.p50_us is None for r in reps.runs)
        assert not (run_dir.path / "latencies.npy").exists()
    else:
        latencies = np.load(run_dir.path / "latencies.npy")
        assert len(latencies) == sum(r.queries for r in reps.runs) > reps.runs[0].queries
        # each repetition waited on disk (one in memory at a time); the parts are gone
        assert not list(run_dir.path.glob(".repetition-*"))
        if scenario == "single-stream":  # repetition 1's values come first: its p50 is theirs
            first = np.sort(latencies[:reps.runs[0].queries])
            assert first[len(first) // 2] / 1000 == pytest.approx(reps.runs[0].p50_us, abs=1e-3)
    # repetition 1 gives the headline sections
    if summary.latency_us is not None:
        assert summary.latency_us.p50 == reps.runs[0].p50_us
    assert reps.runs[0].throughput_ips == (summary.throughput_ips if scenario == "offline"
                                          else summary.windows.median_throughput_ips)
    spread = reps.spread
    assert spread.throughput_max_over_min >= 1.0 and spread.throughput_cv >= 0.0


def test_each_repetitions_broken_rules_count_and_say_which(fake_suts, tmp_path):
    run = Run(RunRequest(sut="fake", mode="performance", output=tmp_path, min_duration_s=0.0,
                         min_query_count=1, repeat=2))
    summary, _ = run.execute(Progress(enabled=False))
    overrides = [r for r in summary.invalid_reasons if r.code.value == "override"]
    early = [r.message for r in summary.invalid_reasons if r.code.value == "early-stopping"]
    assert overrides and early and any(m.startswith("repetition 2: early stopping not met") for m in early)
    assert summary.repetitions.runs[1].reasons  # and in the repetition's own entry


def test_repeat_must_be_positive(tmp_path):
    with pytest.raises(UsageError, match="--repeat must be a whole number from 1"):
        Run(RunRequest(repeat=0, output=tmp_path))
    assert not any(tmp_path.iterdir())
