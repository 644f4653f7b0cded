"""``tinyharness check``: the result-line patterns, and every rule on a real package.

The package comes from test_package.py's session build (four real runs, built once and shared
through pytest's base temp folder). Each test works on its own copy; a test that edits a file on
purpose refreshes the manifest afterwards (``package.write_manifest``), so that the rule under test
is what catches the edit, not the checksum.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_package import SERIAL_RUN, SUBMITTER, build_package, cli  # the shared session build
from test_recompute import inflate, load, rewrite_events, rewrite_windows, save
from tinyharness.benchmark import load_benchmarks
from tinyharness.results import render
from tinyharness.results.read import read_summary
from tinyharness.results.sections import Window, Windows
from tinyharness.results.summary import RunSummary
from tinyharness.submission import archive
from tinyharness.submission import package as pkg
from tinyharness.submission import result_lines as rl
from tinyharness.submission.check import Checker, check_package, check_tree
from tinyharness.submission.layout import TEST_FILES

# -- the MLCommons checker's patterns on the new (MLCommons) and old (EEMBC) runner forms ----------
NEW_ACCURACY = "0412.093015 ulp-mlperf: Top 1% = 91.4\n0412.093015 ulp-mlperf: AUC = 0.981\n"
OLD_ACCURACY = "00301.117 ulp-mlperf: Top-1: 88.6%\n00301.152 ulp-mlperf: AUC: 0.97\n"
NEW_PERFORMANCE = "".join(
    f"Performance results for window {n}\n    # Inferences : 300\n    Runtime: {10 + n / 10:.6f} sec.\n"
    f"    Throughput: {300 / (10 + n / 10):.3f} inf./sec.\n    Runtime requirements have been met.\n"
    for n in range(1, 6)) + ("0412.093100 ulp-mlperf: " + "-" * 57 + "\n"
                             "0412.093100 ulp-mlperf: Median throughput is     29.126 inf./sec.\n"
                             "0412.093100 ulp-mlperf: " + "-" * 57 + "\n")
OLD_PERFORMANCE = "".join(
    f"00088.{n:03d} ulp-mlperf: Performance results for window {2 * n}:\n"
    f"00088.{n:03d} ulp-mlperf:   # Inferences :          640\n"
    f"00088.{n:03d} ulp-mlperf:   Runtime      :       12.800 sec.\n"
    f"00088.{n:03d} ulp-mlperf:   Throughput   :       50.000 inf./sec.\n"
    f"00088.{n:03d} ulp-mlperf: Runtime requirements have been met.\n" for n in range(1, 6)) + \
    "00088.100 ulp-mlperf: Median throughput is 50.000 inf./sec.\n"


def test_accuracy_patterns_read_both_runner_forms():
    assert rl.last_value(rl.TOP1, NEW_ACCURACY) == "91.4"
    assert rl.last_value(rl.AUC, NEW_ACCURACY) == "0.981"
    assert rl.last_value(rl.TOP1, OLD_ACCURACY) == "88.6"
    assert rl.last_value(rl.AUC, OLD_ACCURACY) == "0.97"


def test_the_patterns_need_a_prefix_and_the_last_line_wins():
    assert rl.last_value(rl.TOP1, "Top 1% = 90.2\n") is None  # nothing before the keyword
    assert rl.last_value(rl.AUC, "x AUC = 0.5\nx AUC = 0.9\n") == "0.9"
    assert rl.last_value(rl.TOP1, "x Top1 = 90.2\nx Top 1 % = 90\n") is None
    assert rl.last_value(rl.TOP1, "x Top 1 = 90.2\nx Top 1%: 91.0\n") == "91.0"
    assert rl.last_value(rl.MEDIAN, "x Median throughput is 1.2.3 inf./sec.\n") == "1.2.3"
    assert rl.number("1.2.3") is None  # matched, but not a number: reported as unparseable


def test_performance_patterns_read_both_runner_forms():
    for text, runtime, median in ((NEW_PERFORMANCE, 10.1, "29.126"), (OLD_PERFORMANCE, 12.8, "50.000")):
        windows, problems = rl.parse_windows(text)
        assert problems == [] and len(windows) == 5
        assert windows[0]["runtime_s"] == runtime
        assert rl.last_value(rl.MEDIAN, text) == median
    windows, _ = rl.parse_windows(OLD_PERFORMANCE)
    assert [w["number"] for w in windows] == [2, 4, 6, 8, 10] and windows[0]["inferences"] == 640
    broken = NEW_PERFORMANCE.replace("    Runtime: 10.300000 sec.\n", "    Runtime: soon\n")
    windows, problems = rl.parse_windows(broken)
    assert problems == ["window 3: no parseable runtime_s line"]


def rendered_summary(**changes) -> RunSummary:
    """The schema-1 serial run's summary (typed), with 5 windows of 300 inferences in 10.1 s to
    10.5 s (median 29.126 inf./sec.), top-1 90.24 % and the given changes."""
    base = read_summary(SERIAL_RUN)
    windows = Windows.from_windows([Window.measured(n - 1, f"f{n}.bin", 300, int((10 + n / 10) * 1e9))
                                    for n in range(1, 6)], 10.0)
    fields = dict(finished="2026-04-12T09:31:00+00:00", started="2026-04-12T09:30:00+00:00",
                  accuracy=dataclasses.replace(base.accuracy, value=90.24), windows=windows)
    return dataclasses.replace(base, **{**fields, **changes})


def test_the_checker_renders_what_it_parses():
    summary = rendered_summary()
    assert rl.render(summary, "accuracy") == "0412.093100 ulp-mlperf: Top 1% = 90.2\n"
    text = rl.render(summary, "performance")
    assert rl.parse_windows(text)[0] == rl.parse_windows(NEW_PERFORMANCE)[0]
    assert text.endswith(NEW_PERFORMANCE.split("Runtime requirements have been met.\n")[-1])
    auc = rendered_summary(accuracy=dataclasses.replace(summary.accuracy, metric="auc", value=0.86249))
    assert rl.render(auc, "accuracy") == "0412.093100 ulp-mlperf: AUC = 0.862\n"
    with pytest.raises(ValueError):
        rl.render(summary, "energy")


def test_the_runtime_line_follows_the_runs_window_length():
    summary = rendered_summary()
    assert rl.render(summary, "performance").count("Runtime requirements have been met.") == 5
    longer = dataclasses.replace(summary.windows, window_min_s=10.25)  # windows 1 and 2 fall short
    assert rl.render(dataclasses.replace(summary, windows=longer), "performance").count(
        "Runtime requirements have been met.") == 3


def test_the_stamp_is_when_the_run_finished_or_else_started():
    assert rl.stamp(rendered_summary()) == "0412.093100"
    assert rl.stamp(rendered_summary(finished=None)) == "0412.093000"


# -- rules on the real package ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def package_folder(tmp_path_factory) -> Path:
    return build_package(tmp_path_factory.getbasetemp() / "submission")["folder"]


@pytest.fixture
def pkgcopy(package_folder, tmp_path) -> Path:
    target = tmp_path / "package"
    shutil.copytree(package_folder, target)
    return target


TOP = f"closed/{SUBMITTER}"
KWS = f"{TOP}/results/host-tflite/kws"
AD = f"{TOP}/results/host-openvino/ad"


def embedded(root: Path, system: str, model: str) -> Path:
    (run,) = (root / TOP / "tinyharness" / system / model).iterdir()
    return run


def rules(found) -> set[str]:
    return {v.rule for v in found}


def edit_summary(run: Path, change) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    change(summary)
    (run / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


@pytest.mark.slow
def test_the_package_has_no_violation(pkgcopy):
    assert Checker(pkgcopy).run() == []


def manifest_rules(root: Path) -> list:
    """Only the file walk and the manifest rule (the full check runs in the tests around it)."""
    checker = Checker(root)
    checker.walk()
    checker.manifest()
    return checker.found


@pytest.mark.slow
def test_any_single_altered_byte_is_caught(pkgcopy):
    files = sorted(p for p in pkgcopy.rglob("*") if p.is_file())
    assert len(files) > 40
    for path in files:
        rel = path.relative_to(pkgcopy).as_posix()
        original = path.read_bytes()
        for at in (0, len(original) // 2, len(original) - 1):
            changed = bytearray(original)
            changed[at] ^= 0x01
            path.write_bytes(bytes(changed))
            found = manifest_rules(pkgcopy)
            path.write_bytes(original)
            assert found, (rel, at)
            if rel == archive.MANIFEST:  # a changed manifest: a bad entry or malformed JSON
                assert rules(found) & {"manifest", "json"}, found
            else:
                assert any(v.path == rel and v.rule == "manifest" and "altered" in v.message
                           for v in found), (rel, at, found)
    assert Checker(pkgcopy).run() == []
    results = pkgcopy / KWS / "performance" / "results.json"  # and through the whole check
    results.write_bytes(results.read_bytes().replace(b'"iterations": ', b'"iterations": 1', 1))
    assert any(v.path == f"{KWS}/performance/results.json" and v.rule == "manifest"
               for v in check_package(pkgcopy))


@pytest.mark.slow
def test_an_altered_byte_inside_the_archive_is_caught(pkgcopy, tmp_path):
    target = pkgcopy / KWS / "accuracy" / "results.txt"
    target.write_text(target.read_text().replace("= 90", "= 99"))
    archive.write_tar_gz(pkgcopy, tmp_path / "altered.tar.gz")
    code, out, _ = cli("check", str(tmp_path / "altered.tar.gz"))
    assert code == 1
    assert f"{KWS}/accuracy/results.txt: manifest: sha256 differs from manifest.json: the file was altered" in out


@pytest.mark.slow
@pytest.mark.parametrize("name", TEST_FILES)
def test_a_removed_required_file_is_caught(pkgcopy, name):
    (pkgcopy / AD / "performance" / name).unlink()
    found = Checker(pkgcopy).run()
    rel = f"{AD}/performance/{name}"
    assert any(v.path == rel and v.rule == "required-files" and "missing" in v.message for v in found), found
    assert any(v.path == rel and v.rule == "manifest" for v in found)
    archive.write_manifest(pkgcopy)
    assert {v.rule for v in Checker(pkgcopy).run()} == {"required-files"}


def refresh_test_folder(root: Path, model: str, test: str, run: Path, bench_id: str) -> None:
    """The test folder written again from the (edited) run, and the manifest recomputed."""
    pkg.write_test_folder(root / model / test, test, run, read_summary(run), load_benchmarks()[bench_id])
    archive.write_manifest(root)


@pytest.mark.slow
def test_a_shortened_window_is_caught_by_the_10_second_rule_alone(pkgcopy):
    run = embedded(pkgcopy, "host-tflite", "kws")

    def shorten(k, w):  # window 3 ran 9.5 s at its own pace: every record says so
        if k == 2:
            w["inferences"], w["runtime_s"] = round(w["inferences"] / w["runtime_s"] * 9.5), 9.5

    rewrite_windows(run, shorten)
    refresh_test_folder(pkgcopy, KWS, "performance", run, "kws01")
    text = (pkgcopy / KWS / "performance" / "results.txt").read_text()
    assert "Runtime: 9.500000 sec." in text and text.count("Runtime requirements have been met.") == 4
    found = Checker(pkgcopy).run()
    assert rules(found) == {"window-duration"}, found
    assert {v.path for v in found} == {f"{KWS}/performance/results.txt", f"{run.relative_to(pkgcopy).as_posix()}/summary.json"}
    assert all("window 3 ran 9.500000 s" in v.message and "at least 10 s" in v.message for v in found)


@pytest.mark.slow
def test_four_windows_are_caught(pkgcopy):
    path = pkgcopy / AD / "performance" / "results.txt"
    text = path.read_text()
    start = text.index("Performance results for window 5")
    path.write_text(text[:start] + text[text.index(" ulp-mlperf: ---", start) - 11:])
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    assert "windows-count" in rules(found) and "window-mismatch" in rules(found)
    assert any(v.path == f"{AD}/performance/results.txt" and "4 performance windows" in v.message for v in found)


@pytest.mark.slow
def test_a_missed_quality_target_is_caught_in_the_closed_division(pkgcopy):
    """A run whose outputs give 85.0 %, every record consistent with it (labels of correct
    answers moved until 850 of 1000 are right)."""
    run = embedded(pkgcopy, "host-tflite", "kws")
    entries = load(run, "accuracy.json")
    right = [e for e in entries if e["label"] == e["prediction"]]
    for e in right[:len(right) - 850]:
        e["label"] = (e["label"] + 1) % 12
    save(run, "accuracy.json", entries)
    summary = edit_summary(run, lambda s: s["accuracy"].update(value=85.0))
    rewrite_events(run, "accuracy_result", lambda v, k: {**v, "value": 85.0})
    (run / "summary.txt").write_text(render.text(RunSummary.from_dict(summary)))
    refresh_test_folder(pkgcopy, KWS, "accuracy", run, "kws01")
    found = Checker(pkgcopy).run()
    assert rules(found) == {"quality-target"}, found
    assert str(found[0]) == (f"{KWS}/accuracy/results.txt: quality-target: Top 1% = 85.0 is below the "
                             "closed-division target 90")


@pytest.mark.slow
def test_accuracy_over_part_of_the_label_list_is_caught(pkgcopy):
    run = embedded(pkgcopy, "host-ort", "kws")
    edit_summary(run, lambda s: s["dataset"].update(count=2000))
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    assert rules(found) == {"accuracy-coverage"}, found
    assert "covered 1000 of the 2000 samples" in found[0].message


@pytest.mark.slow
def test_an_unparseable_or_missing_result_line_is_caught(pkgcopy):
    acc = pkgcopy / AD / "accuracy" / "results.txt"
    acc.write_text(acc.read_text().replace("AUC = 1.000", "AUC = 1.0.0"))
    perf = pkgcopy / AD / "performance" / "results.txt"
    perf.write_text("".join(ln for ln in perf.read_text().splitlines(True) if "Median" not in ln))
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    assert rules(found) == {"results-txt"}, found
    assert {v.path for v in found} == {f"{AD}/accuracy/results.txt", f"{AD}/performance/results.txt"}


@pytest.mark.slow
def test_ic2_without_ic_is_caught(pkgcopy):
    for part in ("results", "tinyharness"):
        os.rename(pkgcopy / TOP / part / "host-ort" / "kws", pkgcopy / TOP / part / "host-ort" / "ic2")
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    assert any(v.rule == "requires" and v.path == f"{TOP}/results/host-ort/ic2" and "need ic results" in v.message
               for v in found), found
    assert "benchmark" in rules(found)  # and the kws01 runs filed under ic2


@pytest.mark.slow
@pytest.mark.parametrize("change, rule", [({"system_type": "datacenter"}, "system-type"),
                                          ({"Status": "released"}, "system-status"),
                                          ({"Board Name": 42}, "system-json"),
                                          ({"Division": "Open"}, "system-json"),
                                          ({"Board Name": ""}, "system-blank")])
def test_a_bad_system_description_is_caught(pkgcopy, change, rule):
    path = pkgcopy / TOP / "systems" / "host-ort.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    assert rules(found) == {rule} and found[0].path == f"{TOP}/systems/host-ort.json", found


@pytest.mark.slow
def test_hygiene_and_extra_files_are_caught_all_at_once(pkgcopy):
    (pkgcopy / KWS / "accuracy" / "notes.txt").write_text("extra")
    (pkgcopy / TOP / "code" / "empty").mkdir(parents=True)
    (pkgcopy / TOP / "code" / "__pycache__").mkdir()
    (pkgcopy / TOP / "code" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    os.symlink("/etc/passwd", pkgcopy / TOP / "code" / "passwd")
    (pkgcopy / "extra-top").mkdir()
    (pkgcopy / "extra-top" / "a.txt").write_text("a")
    found = Checker(pkgcopy).run()
    shown = {(v.path, v.rule) for v in found}
    assert {(f"{KWS}/accuracy/notes.txt", "required-files"), (f"{KWS}/accuracy/notes.txt", "manifest"),
            (f"{TOP}/code/empty", "hygiene"), (f"{TOP}/code/__pycache__", "hygiene"),
            (f"{TOP}/code/passwd", "hygiene"), ("extra-top", "layout")} <= shown, shown
    code, out, err = cli("check", str(pkgcopy))
    assert code == 1 and len(out.splitlines()) == len(found) and f"{len(found)} violations" in err


# -- forged figures: recomputed from the embedded records (defect 1) ------------------------------
@pytest.mark.slow
def test_a_package_forged_to_97_5_percent_fails_check(pkgcopy):
    """The issue's forgery: accuracy 97.5 in summary.json, summary.txt and results.txt, manifest
    recomputed; accuracy.json's outputs still give the run's 90.2 %."""
    run = embedded(pkgcopy, "host-tflite", "kws")
    entries = load(run, "accuracy.json")
    measured = round(100 * sum(e["label"] == e["prediction"] for e in entries) / len(entries), 6)
    assert measured == 90.2  # the run's own figure (predictions are checked against the outputs)
    summary = edit_summary(run, lambda s: s["accuracy"].update(value=97.5))
    (run / "summary.txt").write_text(render.text(RunSummary.from_dict(summary)))
    results = pkgcopy / KWS / "accuracy" / "results.txt"
    results.write_text(results.read_text().replace("Top 1% = 90.2", "Top 1% = 97.5"))
    archive.write_manifest(pkgcopy)
    found = check_package(pkgcopy)
    at = run.relative_to(pkgcopy).as_posix()
    assert f"{at}/summary.json: accuracy-mismatch: summary.json accuracy 97.5 % but accuracy.json's " \
           "outputs give 90.2 %" in map(str, found)
    assert {(v.path, v.rule) for v in found} == {  # detail.txt, left alone, agrees with the outputs
        (f"{at}/summary.json", "accuracy-mismatch"), (f"{at}/summary.txt", "figure-mismatch"),
        (f"{KWS}/accuracy/results.txt", "accuracy-mismatch")}
    code, out, _ = cli("check", str(pkgcopy))
    assert code == 1 and "OK" not in out


@pytest.mark.slow
def test_a_package_with_window_throughput_the_latencies_rule_out_fails_check(pkgcopy):
    """Every window record (summary.json, detail.txt, summary.txt, results.txt, results.json)
    forged consistently to 3x the rate the run's fastest timed query allows: only the
    plausibility bound between the windows and latencies.npy can catch it, and does."""
    run = embedded(pkgcopy, "host-tflite", "kws")
    fastest = int(np.load(run / "latencies.npy").min())
    inflate(run, lambda k, w: math.ceil(3 * 1e9 / fastest * w["runtime_s"]))
    refresh_test_folder(pkgcopy, KWS, "performance", run, "kws01")
    found = Checker(pkgcopy).run()
    assert rules(found) == {"implausible-throughput"} and len(found) == 5, found
    assert all(v.path == f"{run.relative_to(pkgcopy).as_posix()}/summary.json" for v in found)
    assert f"took {fastest / 1000:.3f} us: more than 1.5x its {1e9 / fastest:.3f} inf./sec." in found[0].message


@pytest.mark.slow
def test_a_package_with_a_forged_latency_fails_check(pkgcopy):
    run = embedded(pkgcopy, "host-ort", "kws")
    values = np.sort(np.load(run / "latencies.npy"))
    p90 = round(int(values[int(len(values) * 0.9)]) / 1000, 3)
    summary = edit_summary(run, lambda s: s["latency_us"].update(p90=round(p90 / 2, 3)))
    (run / "summary.txt").write_text(render.text(RunSummary.from_dict(summary)))
    archive.write_manifest(pkgcopy)
    found = Checker(pkgcopy).run()
    at = run.relative_to(pkgcopy).as_posix()
    assert [str(v) for v in found] == [
        f"{at}/summary.json: latency-mismatch: summary.json latency p90 {round(p90 / 2, 3)} us but "
        f"latencies.npy gives {p90} us",
        f"{at}/summary.txt: figure-mismatch: summary.txt latency p90 {round(p90 / 2, 3)} but the run's "
        f"records give {p90}"]


@pytest.mark.slow
def test_a_package_with_a_forged_auc_fails_check(pkgcopy):
    run = embedded(pkgcopy, "host-openvino", "ad")
    summary = edit_summary(run, lambda s: s["accuracy"].update(value=0.9))
    rewrite_events(run, "accuracy_result", lambda v, k: {**v, "value": 0.9})
    (run / "summary.txt").write_text(render.text(RunSummary.from_dict(summary)))
    refresh_test_folder(pkgcopy, AD, "accuracy", run, "ad01")
    found = Checker(pkgcopy).run()
    at = run.relative_to(pkgcopy).as_posix()
    assert {str(v) for v in found} == {  # the six files' scores separate perfectly: AUC 1
        f"{at}/summary.json: accuracy-mismatch: summary.json AUC 0.9 but accuracy.json's window scores give 1",
        f"{at}/detail.txt: accuracy-mismatch: detail.txt accuracy_result AUC 0.9 but accuracy.json's window "
        "scores give 1",
        f"{at}/summary.txt: figure-mismatch: summary.txt accuracy 0.9000 but the run's records give 1",
        f"{AD}/accuracy/results.txt: accuracy-mismatch: AUC = 0.900 but the embedded run's accuracy.json "
        "window scores give 1"}


# -- a package's own extras, present or absent (issue 12 §1) ----------------------------------------
@pytest.mark.slow
def test_a_package_without_its_embedded_runs_passes_with_a_note(pkgcopy):
    """The embedded runs are verified when present; without them nothing is recomputed and the
    check says so in a note, not a violation (no run-missing for every result)."""
    shutil.rmtree(pkgcopy / TOP / "tinyharness")
    archive.write_manifest(pkgcopy)
    checker = Checker(pkgcopy)
    assert checker.run() == []
    assert [(n.path, n.message.split(" (")[0]) for n in checker.notes] == [(TOP, "no embedded runs")]
    code, out, err = cli("check", str(pkgcopy))
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"{TOP}: note: no embedded runs (tinyharness/)")
    assert out.splitlines()[1] == (f"{pkgcopy}: OK under the MLPerf Tiny v1.4 rules (detected: the newest round "
                                   "whose layout fits the tree; manifest, layout, system descriptions, result lines "
                                   "and embedded runs all pass)")


@pytest.mark.slow
def test_a_package_without_its_manifest_is_checked_as_any_tree(pkgcopy):
    """No manifest.json: "not a tinyharness package" (a note); the MLCommons rules still apply,
    the embedded runs are still verified, and tinyharness's stricter layout no longer does."""
    (pkgcopy / "manifest.json").unlink()
    (pkgcopy / "README.md").write_text("a results repository's README\n")
    (pkgcopy / KWS / "accuracy" / "results.json").unlink()  # tolerated by the MLCommons checker
    report = check_tree(pkgcopy)
    assert report.found == [] and not report.package
    assert any(n.path == "." and n.message.startswith("not a tinyharness package") for n in report.notes)
    results = pkgcopy / KWS / "accuracy" / "results.txt"
    results.write_text(results.read_text().replace("Top 1% = 90", "Top 1% = 80"))
    assert {(v.path, v.rule) for v in check_tree(pkgcopy).found} == {
        (f"{KWS}/accuracy/results.txt", "quality-target"), (f"{KWS}/accuracy/results.txt", "accuracy-mismatch")}
