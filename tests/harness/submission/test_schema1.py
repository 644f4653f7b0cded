"""Packaging and checking the run directories the previous version wrote (schema 1), and the
eligibility rules, without running a benchmark.

The serial kws01 run is VALID and device-timed (windows and accuracy, no latencies.npy, the model
on the device): it must package unchanged into a closed-division package that passes the check.
The fixtures are never modified: every test works on copies.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from test_package import FIXTURES, SERIAL_RUN, SUBMITTER, cli
from fakes import filled_system
from tinyharness.errors import UsageError
from tinyharness.fileio import sha256_of
from tinyharness.results.read import read_summary
from tinyharness.results.reasons import Reason, ReasonCode
from tinyharness.results.summary import RunSummary
from tinyharness.submission import archive, eligibility, system_json
from tinyharness.submission import result_lines as rl
from tinyharness.submission.check import Checker, check_package
from tinyharness.submission.package import build

DIGITS = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
OFFLINE = FIXTURES / "20261201-224014_digits01_tflite-cpu_offline"
SYSTEM = "dut-board"
STAMP = "1201.224152 ulp-mlperf: "  # the serial run finished 2026-12-01T22:41:52+00:00
MODEL = f"closed/{SUBMITTER}/results/{SYSTEM}/kws"
EMBEDDED = f"closed/{SUBMITTER}/tinyharness/{SYSTEM}/kws/{SERIAL_RUN.name}"


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir())}


def system_file(folder: Path) -> Path:
    path = folder / f"{SYSTEM}.json"
    path.write_bytes(system_json.render(filled_system(system_json.describe(sut="serial", submitter=SUBMITTER))))
    return path


@pytest.fixture
def packaged(tmp_path) -> Path:
    """The serial run packaged (closed division) as a folder."""
    before = fingerprint(SERIAL_RUN)
    out = build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "package")
    assert fingerprint(SERIAL_RUN) == before  # the fixture itself is left as it is
    return out


# -- the VALID serial run ----------------------------------------------------------------------------
def test_the_serial_run_packages_and_passes_check(packaged):
    assert check_package(packaged) == []
    status = json.loads((SERIAL_RUN / "status.json").read_text())
    embedded = packaged / EMBEDDED
    assert sorted(p.name for p in embedded.iterdir()) == sorted(["status.json", *status["files"]])
    assert fingerprint(embedded) == fingerprint(SERIAL_RUN)  # copied unchanged
    assert not (embedded / "latencies.npy").exists()  # device-timed: there never was one


def test_the_serial_run_packages_through_the_cli_as_an_archive(tmp_path):
    archive_path = tmp_path / "package.tar.gz"
    rc, out, err = cli("package", str(SERIAL_RUN), "--submitter", SUBMITTER, "--division", "closed",
                       "--system", str(system_file(tmp_path)), "--output", str(archive_path))
    assert rc == 0, err
    rc, out, err = cli("check", str(archive_path))
    assert rc == 0, out + err


def test_the_result_lines_match_the_mlcommons_patterns(packaged):
    acc = (packaged / MODEL / "accuracy" / "results.txt").read_text()
    assert acc == f"{STAMP}Top 1% = 90.1\n{STAMP}AUC = 0.995\n"  # the runner's one-vs-rest AUC too
    assert rl.TOP1.match(acc) and rl.last_value(rl.TOP1, acc) == "90.1"
    perf = (packaged / MODEL / "performance" / "results.txt").read_text()
    summary = read_summary(SERIAL_RUN)
    assert perf == rl.render(summary, "performance")
    assert rl.last_value(rl.MEDIAN, perf) == "167.855"
    median = [ln for ln in perf.splitlines() if rl.MEDIAN.match(ln)]
    assert median == [f"{STAMP}Median throughput is    167.855 inf./sec."]
    windows, problems = rl.parse_windows(perf)
    assert problems == [] and [w["number"] for w in windows] == [1, 2, 3, 4, 5]
    assert [(w["inferences"], w["runtime_s"], w["throughput_ips"]) for w in windows] == \
        [(d.inferences, d.runtime_s, d.throughput_ips) for d in summary.windows.details]
    assert perf.count("Runtime requirements have been met.") == 5
    lines = perf.splitlines()
    assert lines[-1] == lines[-3] == STAMP + rl.DASHES


def test_results_json_of_the_serial_run(packaged):
    acc = json.loads((packaged / MODEL / "accuracy" / "results.json").read_text())
    perf = json.loads((packaged / MODEL / "performance" / "results.json").read_text())
    assert len(acc) == 1000 and all(len(s["infer"]["results"]) == 12 for s in acc)
    assert acc[0]["file"] == "tst_000000_Stop_7.bin" and acc[0]["classes"] == "12"
    assert [(s["file"], s["infer"]["iterations"], s["infer"]["elapsed_time"]) for s in perf] == [
        ("tst_000000_Stop_7.bin", 2910, 17336406), ("tst_000001_Left_2.bin", 2385, 10373360),
        ("tst_000002_Right_6.bin", 2647, 13885682), ("tst_000003_Up_8.bin", 1644, 10831787),
        ("tst_000004_On_5.bin", 1754, 12282125)]  # microseconds; attempts stay in the run folder
    assert all(s["bytes_to_send"] is None and s["class"] is not None for s in perf)


# -- refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("run, says", [(DIGITS, "not an MLPerf Tiny benchmark"),
                                       (OFFLINE, "not an MLPerf Tiny benchmark")])
@pytest.mark.parametrize("division", ["closed", "open"])
def test_the_digits_runs_are_refused(tmp_path, run, says, division):
    with pytest.raises(UsageError) as exc:
        build([run], SUBMITTER, division, [(None, system_file(tmp_path))], tmp_path / "out")
    assert str(exc.value).startswith(f"run {run.name}: ") and says in str(exc.value)
    assert "\n" not in str(exc.value) and not (tmp_path / "out").exists()


# -- the eligibility rules on typed summaries ------------------------------------------------------
def serial(**changes) -> RunSummary:
    return dataclasses.replace(read_summary(SERIAL_RUN), **changes)


def rules(summary: RunSummary, division: str) -> list[str]:
    return [rule for rule, _ in eligibility.problems(summary, division)]


def test_a_valid_run_is_eligible_in_both_divisions():
    assert eligibility.problems(serial(), "closed") == eligibility.problems(serial(), "open") == []


def test_the_open_division_accepts_accuracy_reasons_by_code_not_wording():
    below = serial(valid=False, invalid_reasons=[Reason(ReasonCode.ACCURACY_TARGET, "top-1 too low")])
    assert eligibility.problems(below, "closed") == [("run-invalid", "the run is INVALID: top-1 too low")]
    assert eligibility.problems(below, "open") == []
    worded = serial(valid=False, invalid_reasons=[Reason(ReasonCode.OTHER, "accuracy pass aborted")])
    assert rules(worded, "open") == ["run-invalid"]  # says 'accuracy ', is not about the target
    errored = serial(valid=False, errors=["AUC computation failed"])
    assert rules(errored, "open") == ["run-invalid"]
    assert rules(serial(valid=False), "open") == ["run-invalid"]  # INVALID without any reason


def test_schema1_reason_strings_are_read_as_codes():
    document = json.loads((SERIAL_RUN / "summary.json").read_text())
    document.update(valid=False, invalid_reasons=["accuracy 85.00 % top-1 is below the target 90"])
    summary = RunSummary.from_dict(document)
    assert rules(summary, "open") == []
    assert eligibility.problems(summary, "closed") == [
        ("run-invalid", "the run is INVALID: accuracy 85.00 % top-1 is below the target 90")]
    document["invalid_reasons"].append("window 3 ran 9.000 s, needs at least 10 s")
    assert rules(RunSummary.from_dict(document), "open") == ["run-invalid"]


def test_the_scenario_benchmark_and_model_rules():
    offline = eligibility.problems(read_summary(OFFLINE), "open")  # no windows either: offline
    assert [rule for rule, _ in offline] == ["benchmark", "run-invalid", "run-invalid", "result-missing"]
    assert offline[1][1] == "a run of the offline scenario; MLPerf Tiny results come from single-stream runs"
    host = dataclasses.replace(read_summary(SERIAL_RUN).model, path="/tmp/my_kws.tflite", found_in="--model",
                               reference=None)
    assert eligibility.problems(serial(model=host), "closed") == [
        ("closed-model", "my_kws.tflite is not one of the rule set's reference models; the closed "
                         "division requires one")]
    assert rules(serial(model=host), "open") == []
    assert rules(serial(model=dataclasses.replace(host, reference="kws_ref_model.tflite")), "closed") == []


def test_a_run_without_the_values_of_its_tests_is_not_eligible():
    undefined = serial(accuracy=dataclasses.replace(serial().accuracy, value=None), valid=False,
                       invalid_reasons=[Reason(ReasonCode.ACCURACY_UNDEFINED, "AUC is undefined")])
    assert rules(undefined, "open") == ["result-missing"]  # accepted verdict, no number to report
    assert rules(serial(windows=None), "closed") == ["result-missing"]
    assert rules(serial(windows=None, mode="accuracy"), "closed") == []


# -- the checker on a package of the serial run ----------------------------------------------------
def refresh(root: Path, change) -> None:
    path = root / EMBEDDED / "summary.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=1))
    archive.write_manifest(root)


def test_the_checker_judges_the_embedded_run_once(packaged):
    refresh(packaged, lambda d: d["model"].update(found_in="--model", path="/tmp/my_kws.tflite", reference=None))
    found = check_package(packaged)
    assert [(v.path, v.rule) for v in found] == [(f"{EMBEDDED}/summary.json", "closed-model")], found


def test_a_summary_the_run_model_cannot_read_is_a_violation(packaged, monkeypatch):
    refresh(packaged, lambda d: d.update(schema_version=99))
    found = check_package(packaged)
    assert found and all(v.path.startswith(EMBEDDED) and v.rule == "run-dir" for v in found), found
    # past the schema (the one in rules/ is checked elsewhere): the run model's own refusal
    import tinyharness.logs

    monkeypatch.setattr(tinyharness.logs, "check_run_directory", lambda path: [])
    found = Checker(packaged).run()
    assert [v.path for v in found if v.rule == "run-dir"] == [f"{EMBEDDED}/summary.json"]
    assert any("schema_version 99" in v.message for v in found)
    refresh(packaged, lambda d: d.update(schema_version=1, started=5, windows={"details": "x"}))
    found = Checker(packaged).run()  # must not raise
    assert any(v.path == f"{EMBEDDED}/summary.json" and v.rule == "run-dir" for v in found), found


def test_results_txt_lines_look_like_the_runners(packaged):
    """Every line of both results.txt files is either a window line or carries the runner prefix."""
    for test in ("accuracy", "performance"):
        for line in (packaged / MODEL / test / "results.txt").read_text().splitlines():
            assert line.startswith(STAMP) or re.match(r"(Performance results for window \d|    )", line), line
