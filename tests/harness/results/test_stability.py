"""Stability diagnostics: the figures on known arrays (LoadGen's percentiles), each threshold just
under and just over, what applies where, the host sampler on missing and fake /sys files and on real
CPU use (a child process burning CPU counts as another process, this one does not), and the
summary.json round trip against the schema fragment."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tinyharness import host as host_module
from tinyharness.results import stability as st
from tinyharness.host import HostSample, HostSampler, read_cpu_mhz, read_governor
from tinyharness.resources import data_dir
from tinyharness.results.stability import WARNING_PREFIX, Stability
from tinyharness.results.summary import RunSummary

# summary.json's "stability" object, from the schema itself
JSON_SCHEMA = json.loads((data_dir("rules") / "summary.schema.json").read_text())["properties"]["stability"]
FIXTURE = next((Path(__file__).resolve().parents[2] / "fixtures" / "schema1").glob("*_onnxruntime-cpu_*"))


def read_back(document: dict) -> Stability:
    """The object as every reader gets it: inside a summary.json, through RunSummary.from_dict."""
    summary = json.loads((FIXTURE / "summary.json").read_text()) | {"stability": document}
    return RunSummary.from_dict(summary).stability

US = 1000  # ns

# the warning each figure raises starts with this
WARNS = {"latency_cv": "latency CV is", "p99_over_p50": "p99 is", "max_over_p50": "max",
         "window_spread": "window throughputs", "other_cpu_fraction": "other processes used",
         "load1_before": "load average", "load1_after": "load average"}


def host(**overrides) -> HostSample:
    """A quiet host: 5 s sampled on 4 cores, nothing else running, performance governor."""
    values = dict(sampled_s=5.0, cpu_count=4, load1_before=0.5, load1_after=1.0,
                  governor="performance", cpu_mhz_before=3000.0, cpu_mhz_after=3100.0,
                  own_cpu_s=5.0, other_cpu_s=0.1)
    return HostSample(**(values | overrides))


def warned(s: Stability, figure: str) -> bool:
    return any(w.startswith(WARNS[figure]) for w in s.warnings)


# -- figures on known arrays ------------------------------------------------------------------------
def test_cv_iqr_and_ratios_with_loadgen_percentiles():
    us = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    rng = np.random.default_rng(0)
    s = Stability.from_run(rng.permutation(np.array(us) * US), None, None)
    assert s.latency_cv == round(statistics.stdev(us) / statistics.mean(us), 4) == 0.5505
    # LoadGen: sorted[floor(n p)] -> p25 = 30, p75 = 80 (numpy's interpolation would give 45)
    assert s.latency_iqr_us == 50.0
    assert s.p99_over_p50 == s.max_over_p50 == round(100 / 60, 3)  # p50 = sorted[5] = 60
    assert s.window_spread is None and s.other_cpu_fraction is None and s.cpu_count is None


def test_one_latency_has_no_cv():
    s = Stability.from_run(np.array([57 * US]), None, None)
    assert s.latency_cv is None and s.latency_iqr_us == 0.0 and s.max_over_p50 == 1.0


def test_the_busy_kws01_run_of_the_issue():
    """p50 57 us, p99 20.9 ms, max 404 ms: VALID, and now plainly unstable."""
    lat = np.full(10_000, 57 * US, dtype=np.int64)
    lat[9_900:] = 20_900 * US  # sorted[floor(10000 * 0.99)] = sorted[9900]
    lat[-1] = 404_000 * US
    s = Stability.from_run(lat, None, host())
    assert s.p99_over_p50 == 366.667 and s.max_over_p50 == 7087.719
    assert "p99 is 367x p50 (threshold 10x): the machine was busy or the SUT stalls" in s.warnings
    assert any(w.startswith("max (about 404 ms) is 7088x p50 (threshold 100x)") for w in s.warnings)
    assert s.unstable and warned(s, "latency_cv")


@pytest.mark.parametrize("tail_us, over", [(1000, False), (1001, True)])
def test_p99_threshold_from_latencies(tail_us, over):
    lat = np.full(1000, 100 * US)
    lat[990:] = tail_us * US  # p99 = sorted[990]: 10x p50 exactly, or just over
    s = Stability.from_run(lat, None, None)
    assert warned(s, "p99_over_p50") is over


def test_windows_spread_and_what_offline_gets():
    s = Stability.from_run(None, [100.0, 104.0, 98.0, 101.0, 99.0], host())
    assert s.window_spread == round(104 / 98, 4) and not s.unstable
    assert s.latency_cv is s.latency_iqr_us is s.p99_over_p50 is s.max_over_p50 is None
    offline = Stability.from_run(None, None, host())
    assert offline.window_spread is None and offline.latency_cv is None
    assert offline.load1_before == 0.5 and offline.other_cpu_fraction == round(0.1 / 20, 4)
    assert Stability.from_run(None, [100.0], None).window_spread is None  # one window: no spread


# -- each threshold, just under and just over ----------------------------------------------------------
@pytest.mark.parametrize("figure, under, over", [
    ("latency_cv", st.CV_MAX, st.CV_MAX + 1e-4),
    ("p99_over_p50", st.P99_OVER_P50_MAX, st.P99_OVER_P50_MAX + 1e-3),
    ("max_over_p50", st.MAX_OVER_P50_MAX, st.MAX_OVER_P50_MAX + 1e-3),
    ("window_spread", st.WINDOW_SPREAD_MAX, st.WINDOW_SPREAD_MAX + 1e-4),
    ("other_cpu_fraction", st.OTHER_CPU_MAX, st.OTHER_CPU_MAX + 1e-4),
    ("load1_before", 4.0, 4.01),  # 4 cores
    ("load1_after", 4.0, 4.01),
])
def test_threshold(figure, under, over):
    context = dict(p50_us=57.0, sampled_s=5.0, cpu_count=4)
    quiet = Stability.assess(**context, **{figure: under})
    busy = Stability.assess(**context, **{figure: over})
    assert not quiet.unstable and quiet.warnings == []
    assert busy.unstable and len(busy.warnings) == 1 and warned(busy, figure)


def test_warnings_name_the_figure_and_the_threshold():
    s = Stability.assess(p50_us=57.0, latency_cv=0.25, window_spread=1.25, other_cpu_fraction=0.456,
                         sampled_s=3.0, cpu_count=2, load1_before=3.5, load1_after=None)
    assert s.warnings == [
        "latency CV is 25.0 % (threshold 10 %): query latencies vary widely; the machine was busy or "
        "the SUT is unsteady",
        "window throughputs differ by 1.25x max/min (threshold 1.1x): the machine's speed changed "
        "between windows",
        "other processes used 45.6 % of the CPU during the run (threshold 10 %): the machine was busy",
        "load average 3.5 is above the 2 cores (before 3.5): more tasks were runnable than there are "
        "cores",
    ]


@pytest.mark.parametrize("p50_us, judged", [(9.99, False), (10.0, True)])
def test_latency_shape_is_not_judged_under_the_p50_floor(p50_us, judged):
    s = Stability.assess(p50_us=p50_us, latency_cv=5.0, p99_over_p50=50.0, max_over_p50=1000.0)
    assert s.unstable is judged and len(s.warnings) == (3 if judged else 0)
    assert any(n.startswith("latency shape not judged") for n in s.notes) is not judged


def test_the_null_sut_is_not_called_unstable():
    lat = np.full(5000, 300)  # 0.3 us
    lat[-1] = 2_000 * US
    s = Stability.from_run(lat, None, None)
    assert s.max_over_p50 > st.MAX_OVER_P50_MAX and not s.unstable and s.notes


@pytest.mark.parametrize("sampled_s, judged", [(0.99, False), (1.0, True)])
def test_other_cpu_is_not_judged_over_a_short_interval(sampled_s, judged):
    s = Stability.assess(other_cpu_fraction=0.5, sampled_s=sampled_s, cpu_count=2)
    assert s.unstable is judged
    assert any(n.startswith("other processes' CPU not judged") for n in s.notes) is not judged


@pytest.mark.parametrize("governor, noted", [("performance", False), ("powersave", True),
                                             ("performance,schedutil", True), (None, False)])
def test_a_governor_other_than_performance_is_a_note_not_a_warning(governor, noted):
    s = Stability.from_run(None, None, host(governor=governor))
    assert not s.unstable and s.warnings == []
    assert any("governor" in n for n in s.notes) is noted


def test_unknown_figures_are_refused():
    with pytest.raises(TypeError, match="latency_p50"):
        Stability.assess(latency_p50=1.0)


# -- the host: /sys ------------------------------------------------------------------------------------
def cpufreq(root: Path, cpu: int, governor: str | None, khz: str | None) -> None:
    folder = root / f"cpu{cpu}" / "cpufreq"
    folder.mkdir(parents=True)
    if governor is not None:
        (folder / "scaling_governor").write_text(governor + "\n")
    if khz is not None:
        (folder / "scaling_cur_freq").write_text(khz + "\n")


def test_missing_sys_files_read_as_none(tmp_path):
    assert read_governor(tmp_path / "absent") is None and read_cpu_mhz(tmp_path / "absent") is None
    (tmp_path / "cpu0").mkdir()  # a CPU without cpufreq, as on many VMs
    (tmp_path / "cpu1" / "cpufreq").mkdir(parents=True)  # cpufreq without the files
    assert read_governor(tmp_path) is None and read_cpu_mhz(tmp_path) is None
    sampler = HostSampler(cpu_dir=tmp_path, system_busy_s=lambda: 0.0, own_cpu_s=lambda: 0.0)
    sampler.start()
    sample = sampler.stop()
    assert sample.governor is sample.cpu_mhz_before is sample.cpu_mhz_after is None
    s = Stability.from_run(None, None, sample)
    assert s.governor is None and not any("governor" in n for n in s.notes)


def test_sys_files_are_read(tmp_path):
    cpufreq(tmp_path, 0, "performance", "2400000")
    cpufreq(tmp_path, 1, "performance", "3000000")
    cpufreq(tmp_path, 2, None, "garbage")  # unreadable figures are left out, not guessed
    (tmp_path / "cpufreq").mkdir()  # the policy folder beside cpu*: not a CPU
    assert read_governor(tmp_path) == "performance"
    assert read_cpu_mhz(tmp_path) == 2700.0
    cpufreq(tmp_path, 3, "powersave", None)
    assert read_governor(tmp_path) == "performance,powersave"


# -- the host: CPU accounting --------------------------------------------------------------------------
class Counters:
    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


def test_other_cpu_is_system_busy_time_less_our_own():
    sampler = HostSampler(cpu_dir=Path("/nonexistent"), cpu_count=2,
                          system_busy_s=Counters(10.0, 13.5), own_cpu_s=Counters(1.0, 2.0),
                          load1=Counters(0.25, 1.5), clock=Counters(100.0, 102.0))
    sampler.start()
    sample = sampler.stop()
    assert sample.sampled_s == 2.0 and sample.own_cpu_s == 1.0 and sample.other_cpu_s == 2.5
    assert sample.other_cpu_fraction == 2.5 / 4
    assert (sample.load1_before, sample.load1_after) == (0.25, 1.5)


def test_counters_that_cross_never_give_negative_cpu():
    sampler = HostSampler(cpu_count=2, system_busy_s=Counters(10.0, 10.5),
                          own_cpu_s=Counters(1.0, 1.52), clock=Counters(0.0, 1.0))
    sampler.start()
    assert sampler.stop().other_cpu_s == 0.0


def test_stop_needs_start():
    with pytest.raises(RuntimeError):
        HostSampler(system_busy_s=lambda: 0.0, own_cpu_s=lambda: 0.0).stop()


def test_without_psutil_other_cpu_is_none_and_said(monkeypatch):
    monkeypatch.setattr(host_module, "_psutil_readers", lambda: None)
    sampler = HostSampler()
    sampler.start()
    sample = sampler.stop()
    assert sample.other_cpu_s is None and sample.other_cpu_fraction is None
    s = Stability.from_run(None, None, sample)
    assert s.other_cpu_fraction is None and any("psutil" in n for n in s.notes)


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}:\n    pass\n"


def burn_here(seconds: float) -> None:
    """Use ``seconds`` of this process's CPU time (however long that takes on a busy machine)."""
    exec(BURN.format(s=seconds))


def test_a_child_burning_cpu_counts_as_another_process():
    sampler = HostSampler()
    sampler.start()
    subprocess.run([sys.executable, "-c", BURN.format(s=0.5)], check=True)  # 0.5 CPU-s, not wall
    sample = sampler.stop()
    assert sample.other_cpu_fraction > 0
    assert sample.other_cpu_s >= 0.25  # the child's 0.5 CPU-s, with room for 100 Hz sampling
    assert sample.own_cpu_s < 0.25  # we only waited: the child's CPU is not ours


def test_our_own_cpu_is_measured_and_left_out():
    sampler = HostSampler()
    assert sampler.own_cpu_s is not None
    sampler.start()
    burn_here(0.5)
    sample = sampler.stop()
    assert sample.own_cpu_s >= 0.4  # what is subtracted is this process's real CPU time
    assert sample.cpu_count == os.cpu_count()


def test_the_sampler_runs_no_thread():
    import threading

    before = threading.active_count()
    sampler = HostSampler()
    sampler.start()
    assert threading.active_count() == before
    sampler.stop()


# -- summary.json --------------------------------------------------------------------------------------
def unstable_example() -> Stability:
    lat = np.full(2000, 57 * US)
    lat[-30:] = 5_000 * US
    return Stability.from_run(lat, [100.0, 80.0, 101.0],
                              host(governor="powersave", load1_before=9.0, other_cpu_s=4.0))


@pytest.mark.parametrize("make", [unstable_example, lambda: Stability.from_run(None, None, None),
                                  lambda: Stability.from_run(None, None, host())],
                         ids=["unstable", "nothing", "offline"])
def test_the_dict_round_trips_and_matches_the_schema(make):
    s = make()
    document = json.loads(json.dumps(dataclasses.asdict(s)))
    jsonschema.validate(document, JSON_SCHEMA)
    assert read_back(document) == s
    assert set(document) == set(JSON_SCHEMA["properties"]) == set(JSON_SCHEMA["required"])


def test_the_schema_is_strict():
    document = dataclasses.asdict(unstable_example())
    assert document["unstable"] and document["warnings"] and document["notes"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document | {"extra": 1}, JSON_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document | {"latency_cv": "high"}, JSON_SCHEMA)
    jsonschema.validate(None, JSON_SCHEMA)  # "stability": null where there is no performance pass


def test_json_integers_read_as_floats():
    document = dataclasses.asdict(Stability.from_run(None, None, host(load1_before=2.0))) | {"load1_before": 2}
    s = read_back(document)
    assert s.load1_before == 2.0 and isinstance(s.load1_before, float)


def test_lines_digest_then_warnings_then_notes():
    s = unstable_example()
    lines = s.lines()
    assert lines[0].startswith("Stability : UNSTABLE; latency CV ")
    assert "windows max/min 1.26" in lines[0] and "load 9 -> 1" in lines[0]
    assert "governor powersave, 3000 -> 3100 MHz" in lines[0]
    assert lines[1:1 + len(s.warnings)] == [WARNING_PREFIX + w for w in s.warnings]
    assert lines[1 + len(s.warnings):] == ["note: stability: " + n for n in s.notes]
    assert all(line.startswith("WARNING: unstable: ") for line in lines[1:1 + len(s.warnings)])


def test_a_steady_run_has_one_line():
    s = Stability.from_run(np.full(1000, 57 * US), [100.0, 101.0], host())
    assert not s.unstable and s.lines() == [
        "Stability : steady; latency CV 0.0 %, IQR 0 us, p99/p50 1.00, max/p50 1.00; windows max/min "
        "1.01; host other processes 0.5 % of 4 cores, load 0.5 -> 1, governor performance, "
        "3000 -> 3100 MHz"]


def test_sampling_is_cheap():
    """start() and stop() read counters and files only: a loose bound against an accidental
    sleep or busy wait (they take a few milliseconds)."""
    sampler = HostSampler()
    t = time.process_time()
    for _ in range(5):
        sampler.start()
        sampler.stop()
    assert time.process_time() - t < 1.0
