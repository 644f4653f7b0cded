"""``tinyharness check`` on the published MLPerf Tiny results, trees tinyharness did not make.

The excerpts under ../shared/mlperf_tiny/published/{v1.0,v1.1,v1.2} keep every systems/*.json and
every results.txt of MLCommons' result repositories, and leave out (their README says) the log.txt
files, the energy traces, script.async, the code/ trees and PDFs. So on every submitter folder the
check must report exactly what those left-out files explain, and the few defects the published
trees really have, each derived here from the tree's own files (never from the check's output):

- ``required-files``: log.txt and script.async, missing from every accuracy and performance folder
  (v1.0 to v1.2 results come from the EEMBC runner, which writes log.txt, results.txt, script.async);
- ``window-duration``: one per window the EEMBC runner itself declared short in a performance
  results.txt ('e-[The run must take at least 10 seconds ...]' instead of 'Runtime requirements
  have been met.');
- ``system-json``: a results/<system>/ folder with no systems/<system>.json (v1.0: OctoML's and
  hls4ml's names differ, ST's descriptions sit one folder deeper, syntiant published none);
- ``model-name``: a folder where a model folder belongs (OctoML's results/<impl>/<board>/ nesting);
- ``required-tests``: a model folder without accuracy/ or performance/ (hls4ml's ic/RN08/).

Then copies of real trees, edited: a closed kws accuracy below its target (in the new runner's
'Top 1% = 80.0' and the old 'Top-1: 80.0%' form), a window under 10 s, a median that is not the
median of its windows; and the rules of the later rounds (sww, energy, the EEMBC_RUNNER switch).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from test_package import cli
from tinyharness.submission import versions
from tinyharness.submission.check import Checker, check_tree

REPO = Path(__file__).resolve().parents[3]
PUBLISHED = REPO.parent / "shared" / "mlperf_tiny" / "published"
ROUNDS = ("v1.0", "v1.1", "v1.2")
OFFICIAL = {"ad", "ic", "kws", "vww"}
MODELS = {"v1.0": OFFICIAL | {"anomaly_detection", "image_classification", "keyword_spotting",
                              "visual_wake_words"}, "v1.1": OFFICIAL, "v1.2": OFFICIAL}
LEFT_OUT = ("log.txt", "script.async")  # the EEMBC runner's files the excerpt left out
SHORT = "e-[The run must take at least"  # the EEMBC runner's verdict on a window under 10 s


@pytest.fixture(scope="module")
def published() -> Path:
    if not (PUBLISHED / "README.md").is_file():
        pytest.skip(f"the published MLPerf Tiny result excerpts are not at {PUBLISHED}")
    return PUBLISHED


@pytest.fixture(scope="module")
def reports(published) -> dict:
    return {round_: check_tree(published / round_) for round_ in ROUNDS}


def submitters(root: Path) -> list[tuple[str, str]]:
    return [(d.name, s.name) for d in sorted(root.iterdir()) if d.name in ("closed", "open") and d.is_dir()
            for s in sorted(d.iterdir()) if s.is_dir()]


def declared_short(results: Path) -> int:
    """Windows the runner declared short (a log written twice over repeats each line: once)."""
    lines = results.read_text().splitlines()
    return sum(SHORT in line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1])


def expected(root: Path, round_: str, division: str, submitter: str) -> Counter:
    """(rule, path) -> count: what the excerpt's left-out files and the tree's own defects explain."""
    found: Counter = Counter()
    base = root / division / submitter
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    if not (base / "results").is_dir():
        return found  # the MLCommons checker passes over such a submitter
    for system in sorted(p for p in (base / "results").iterdir() if p.is_dir()):
        if not (base / "systems" / f"{system.name}.json").is_file():
            found["system-json", rel(system)] += 1
        for model in sorted(p for p in system.iterdir() if p.is_dir()):
            if model.name not in MODELS[round_]:
                found["model-name", rel(model)] += 1
                continue
            for test in ("accuracy", "performance"):
                folder = model / test
                if not folder.is_dir():
                    found["required-tests", rel(folder)] += 1
                    continue
                for name in LEFT_OUT:
                    found["required-files", rel(folder / name)] += not (folder / name).exists()
                if test == "performance":
                    found["window-duration", rel(folder / "results.txt")] += declared_short(folder / "results.txt")
    return +found


def got(report, division: str, submitter: str) -> Counter:
    return Counter((v.rule, v.path) for v in report.found if v.path.startswith(f"{division}/{submitter}/")
                   or v.path == f"{division}/{submitter}")


def test_the_excerpts_are_what_this_test_expects(published):
    """Every test folder holds results.txt and nothing the runner wrote beside it."""
    folders = [p.parent for p in published.rglob("results.txt")]
    assert len(folders) == 572
    assert {p.name for f in folders for p in f.iterdir()} == {"results.txt"}


@pytest.mark.parametrize("round_", ROUNDS)
def test_each_submitter_folder_has_only_the_violations_its_left_out_files_explain(published, reports, round_):
    report = reports[round_]
    assert report.version == round_ and report.version_from == f"named by {round_!r} in the path"
    assert not report.package and any("not a tinyharness package" in n.message for n in report.notes)
    folders = submitters(published / round_)
    assert folders
    for division, submitter in folders:
        want = expected(published / round_, round_, division, submitter)
        assert got(report, division, submitter) == want, (division, submitter)
    covered = {f"{d}/{s}" for d, s in folders}
    assert all("/".join(v.path.split("/")[:2]) in covered for v in report.found), "a violation outside them"


def test_the_expected_violations_per_tree(published, reports):
    """The summary (rules and counts per tree) the expectations come to, for the record."""
    summary = {}
    for round_ in ROUNDS:
        for division, submitter in submitters(published / round_):
            counts = Counter(rule for rule, _ in expected(published / round_, round_, division, submitter).elements())
            summary[f"{round_}/{division}/{submitter}"] = dict(sorted(counts.items()))
    print("\nexpected violations per tree:")
    for tree, counts in summary.items():
        print(f"  {tree}: {counts or 'none'}")
    assert summary["v1.0/closed/plumerai"] == {"required-files": 64}
    assert summary["v1.0/closed/OctoML"] == {"model-name": 3, "system-json": 2}
    assert summary["v1.0/open/hls4ml"] == {"required-tests": 2, "system-json": 1}
    assert summary["v1.0/closed/qualcomm"] == {}  # systems/ only: nothing to check
    assert summary["v1.2/closed/bosch"]["window-duration"] == 25


def test_check_on_the_whole_excerpts_is_fast(published, capsys):
    started = time.perf_counter()
    for round_ in ROUNDS:
        check_tree(published / round_)
    took = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ncheck on the whole excerpts ({', '.join(ROUNDS)}, 650 files): {took:.2f} s")
    assert took < 60


def test_the_cli_on_a_published_submitter_folder(published):
    code, out, err = cli("check", str(published / "v1.1" / "closed" / "kai_jiang"))
    assert code == 1
    violations = [line for line in out.splitlines() if ": note: " not in line]
    assert violations == [f"closed/kai_jiang/results/ZCU106/vww/{t}/{f}: required-files: missing: the "
                          "EEMBC runner writes log.txt, results.txt, script.async (the MLCommons checker "
                          "reports a file-list mismatch)" for t in ("accuracy", "performance") for f in LEFT_OUT]
    assert out.splitlines()[len(violations)].startswith(".: note: not a tinyharness package")
    assert err.strip() == (f"{published / 'v1.1/closed/kai_jiang'}: 4 violations under the MLPerf Tiny v1.1 "
                           "rules (named by 'v1.1' in the path)")
    code, out, _ = cli("check", "--json", "--submitter", "kai_jiang", str(published / "v1.1"))
    doc = json.loads(out)
    assert code == 1 and doc["rules"] == "v1.1" and not doc["package"] and len(doc["violations"]) == 4


# -- copies of real trees, edited ------------------------------------------------------------------
def copy_tree(published: Path, tmp_path: Path, round_: str, division: str, submitter: str,
              to_division: str | None = None) -> Path:
    """tmp/<round>/<division>/<submitter>: the round stays named by the path."""
    root = tmp_path / round_
    shutil.copytree(published / round_ / division / submitter, root / (to_division or division) / submitter)
    return root


def edit(path: Path, pattern: str, replacement: str, count: int = 1) -> None:
    text, n = re.subn(pattern, replacement, path.read_text(), count=count, flags=re.MULTILINE)
    assert n == count, (path, pattern)
    path.write_text(text)


def extra(root: Path, round_: str, division: str, submitter: str) -> list:
    """What check finds beyond the excerpt's own expectations (the edits' violations); every
    expected one is found too."""
    report = check_tree(root)
    want = expected(root, round_, division, submitter)
    assert not want - Counter((v.rule, v.path) for v in report.found)
    found = []
    for v in report.found:
        if want[v.rule, v.path] > 0:
            want[v.rule, v.path] -= 1
        else:
            found.append(v)
    return found


PLUMERAI_KWS = "closed/plumerai/results/NUCLEO-L4R5ZI/kws"


@pytest.mark.parametrize("line", ["0412.093015 ulp-mlperf: Top 1% = 80.0", "00302.045 ulp-mlperf: Top-1: 80.0%"])
def test_a_closed_kws_accuracy_below_the_target_is_a_violation(published, tmp_path, line):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "plumerai")
    results = root / PLUMERAI_KWS / "accuracy" / "results.txt"
    assert re.search(r"Top-1: 9\d\.\d%", results.read_text())  # the published 90.x %
    edit(results, r"^.* Top-1: .*$", line)
    (violation,) = extra(root, "v1.1", "closed", "plumerai")
    assert str(violation) == (f"{PLUMERAI_KWS}/accuracy/results.txt: quality-target: Top 1% = 80.0 is below "
                              "the closed-division target 90")
    code, out, _ = cli("check", str(root))
    assert code == 1 and str(violation) in out.splitlines()


def test_the_open_division_accepts_an_accuracy_below_the_target(published, tmp_path):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "plumerai", to_division="open")
    edit(root / PLUMERAI_KWS.replace("closed", "open") / "accuracy" / "results.txt", r"^.* Top-1: .*$",
         "00302.045 ulp-mlperf: Top-1: 80.0%")
    assert extra(root, "v1.1", "open", "plumerai") == []


def test_a_window_under_10_s_is_a_violation(published, tmp_path):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "plumerai")
    results = root / PLUMERAI_KWS / "performance" / "results.txt"
    text = results.read_text()
    n = int(re.findall(r"# Inferences :\s+(\d+)", text)[1])
    runtime = re.findall(r"Runtime      :\s+([\d.]+) sec", text)[1]
    edit(results, rf"(window 4:\n.*\n.*Runtime      :\s+){re.escape(runtime)}( sec\.\n.*Throughput   :\s+)[\d.]+",
         rf"\g<1>9.500\g<2>{n / 9.5:.3f}")
    (violation,) = extra(root, "v1.1", "closed", "plumerai")
    assert (violation.path, violation.rule) == (f"{PLUMERAI_KWS}/performance/results.txt", "window-duration")
    assert violation.message == "window 4 ran 9.500000 s; each window must run at least 10 s"


def test_a_median_that_is_not_the_median_of_its_windows_is_a_violation(published, tmp_path):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "plumerai")
    results = root / PLUMERAI_KWS / "performance" / "results.txt"
    median = re.search(r"Median throughput is ([\d.]+)", results.read_text()).group(1)
    edit(results, r"Median throughput is [\d.]+", f"Median throughput is {float(median) * 1.1:.3f}")
    (violation,) = extra(root, "v1.1", "closed", "plumerai")
    assert (violation.path, violation.rule) == (f"{PLUMERAI_KWS}/performance/results.txt", "median-mismatch")
    assert f"is not the median of the windows ({median})" in violation.message


def test_a_throughput_that_is_not_its_inferences_over_its_runtime_is_a_violation(published, tmp_path):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "plumerai")
    results = root / PLUMERAI_KWS / "performance" / "results.txt"
    edit(results, r"(window 2:\n.*\n.*\n.*Throughput   :\s+)([\d.]+)", lambda m: f"{m[1]}{float(m[2]) * 1.01:.3f}")
    found = extra(root, "v1.1", "closed", "plumerai")
    assert [(v.rule, v.message.split(":")[0]) for v in found] == [("window-arithmetic", "window 2")]


def test_energy_results_without_their_median_line_void_the_result(published, tmp_path):
    root = copy_tree(published, tmp_path, "v1.1", "closed", "STMicroelectronics")
    energy = root / "closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/energy"
    assert extra(root, "v1.1", "closed", "STMicroelectronics") == []  # energy/ holds results.txt only here
    edit(energy / "results.txt", r"^.*Median energy cost is.*\n", "")
    (violation,) = extra(root, "v1.1", "closed", "STMicroelectronics")
    assert (violation.path, violation.rule) == ("closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/energy/"
                                                "results.txt", "results-txt")
    assert "Median energy cost is" in violation.message
    (energy / "log.txt").write_text("x\n")  # the folder stays (an empty one is a hygiene violation)
    (energy / "results.txt").unlink()
    (violation,) = extra(root, "v1.1", "closed", "STMicroelectronics")
    assert violation.rule == "required-files" and violation.path.endswith("kws/energy/results.txt")


def test_a_published_tree_fits_its_own_round_best(published, tmp_path):
    """Without a round in the path: the newest round whose layout fits (the complete tree, with
    the EEMBC runner's files put back, is a v1.2 one; greenwaves' long names a v1.0 one)."""
    for round_, submitter, want in (("v1.1", "plumerai", "v1.2"), ("v1.0", "greenwaves-technologies", "v1.0")):
        root = tmp_path / f"tree-{submitter}"
        shutil.copytree(published / round_ / "closed" / submitter, root / "closed" / submitter)
        for results in root.rglob("results.txt"):
            for name in LEFT_OUT:
                (results.parent / name).write_text("x\n")
        report = check_tree(root)
        assert report.version == want and report.version_from.startswith("detected"), (submitter, report.version)
        assert [v for v in report.found if v.rule != "window-duration"] == [], submitter
        assert check_tree(root, version="v1.1").version == "v1.1"


# -- the rules of the later rounds, on small trees ------------------------------------------------
SYSTEM = {"Submitter": "Some Org Inc.", "Division": "Closed", "Status": "Available", "system_type": None}
PERFORMANCE = "".join(f"Performance results for window {n}\n    # Inferences : 500\n    Runtime: 10.{n}00000 sec.\n"
                      f"    Throughput: {500 / (10 + n / 10):.3f} inf./sec.\n" for n in range(1, 6)) + \
    f"0102.030405 ulp-mlperf: Median throughput is {500 / 10.3:10.3f} inf./sec.\n"


def small_tree(root: Path, division: str = "closed", files=("log.txt", "results.json"), system=SYSTEM,
               model: str = "kws", flag: bool = False) -> Path:
    base = root / division / "org"
    (base / "systems").mkdir(parents=True)
    (base / "systems" / "board.json").write_text(json.dumps(system))
    folder = base / "results" / "board" / model
    for test, lines in (("accuracy", "0102.030405 ulp-mlperf: Top 1% = 91.5\n"), ("performance", PERFORMANCE)):
        (folder / test).mkdir(parents=True)
        (folder / test / "results.txt").write_text(lines)
        for name in files:
            (folder / test / name).write_text("[]\n" if name.endswith(".json") else "x\n")
    if flag:
        (folder / versions.EEMBC_FLAG).write_text("")
    return root


def rules_of(root: Path, version: str | None = None) -> list[tuple[str, str]]:
    return sorted((v.rule, v.path.split("/", 2)[-1]) for v in check_tree(root, version=version).found)


def test_a_clean_tree_that_is_not_a_package_passes_with_a_note(tmp_path):
    root = small_tree(tmp_path / "v1.3")
    report = check_tree(root)
    assert report.found == [] and report.version == "v1.3" and not report.package
    assert [n.path for n in report.notes] == [".", "closed/org/systems/board.json"]
    assert report.notes[0].message.startswith("not a tinyharness package (no manifest.json)")
    assert report.notes[1].message.startswith("no Board Name, Processor(s) Name")  # optional fields
    code, out, err = cli("check", str(root))
    assert code == 0 and err == "" and out.splitlines()[-1] == (
        f"{root}: OK under the MLPerf Tiny v1.3 rules (named by 'v1.3' in the path; layout, system descriptions "
        "and result lines pass; not a tinyharness package, nothing recomputed)")
    assert out.splitlines()[0].startswith(".: note: not a tinyharness package")


def test_the_runner_decides_the_files_of_a_test_folder(tmp_path):
    """MLCommons runner: log.txt, results.txt (results.json tolerated); EEMBC_RUNNER in the model
    folder: log.txt, results.txt, script.async; v1.0 to v1.2 knew the EEMBC runner alone."""
    assert rules_of(small_tree(tmp_path / "a" / "v1.3", files=("log.txt",))) == []
    assert rules_of(small_tree(tmp_path / "b" / "v1.3", files=("log.txt", "script.async"))) == [
        ("required-files", "results/board/kws/accuracy/script.async"),
        ("required-files", "results/board/kws/performance/script.async")]
    eembc = small_tree(tmp_path / "c" / "v1.3", files=("log.txt", "script.async", ".gitkeep"), flag=True)
    assert rules_of(eembc) == []
    assert rules_of(eembc, "v1.2") == rules_of(eembc, "v1.0") == []
    (eembc / "closed/org/results/board/kws/performance/script.async").unlink()
    (eembc / "closed/org/results/board/kws/performance/notes.txt").write_text("x")
    assert rules_of(eembc) == [("required-files", "results/board/kws/performance/notes.txt"),
                               ("required-files", "results/board/kws/performance/script.async")]


def test_system_descriptions_by_the_mlcommons_rules_alone(tmp_path):
    """Status only (any case, the key read tolerantly); system_type absent or null; no display
    name compared with the folders."""
    spaced = {"Submitter": "Someone Else", "Division": "Open", "Status ": "preview"}
    report = check_tree(small_tree(tmp_path / "a" / "v1.3", system=spaced))
    assert report.found == []
    notes = " | ".join(n.message for n in report.notes)
    assert "'Status' read from the key 'Status '" in notes and "Division says 'Open'" in notes
    assert rules_of(small_tree(tmp_path / "b" / "v1.3", system={"Status": "released"})) == [
        ("system-status", "systems/board.json")]
    assert rules_of(small_tree(tmp_path / "c" / "v1.3", system={"Board Name": "x"})) == [
        ("system-status", "systems/board.json")]
    assert rules_of(small_tree(tmp_path / "d" / "v1.3", system={"Status": "rdi", "system_type": "edge"})) == [
        ("system-type", "systems/board.json")]


def test_model_folders_by_round_and_model_mapping(tmp_path):
    eembc = ("log.txt", "script.async")
    assert rules_of(small_tree(tmp_path / "a" / "v1.0", model="keyword_spotting", files=eembc)) == []
    assert rules_of(small_tree(tmp_path / "b" / "v1.1", model="keyword_spotting", files=eembc)) == [
        ("model-name", "results/board/keyword_spotting")]
    mapped = small_tree(tmp_path / "c" / "v1.3", division="open", model="my_kws", files=("log.txt",))
    assert rules_of(mapped) == [("model-name", "results/board/my_kws")]
    (mapped / "open/org/model_mapping.json").write_text(json.dumps({"my_kws": "kws"}))
    assert rules_of(mapped) == []
    ic2 = small_tree(tmp_path / "d" / "v1.4", model="ic2", files=("log.txt",))
    assert rules_of(ic2) == [("requires", "results/board/ic2")]
    assert rules_of(ic2, "v1.3") == [("model-name", "results/board/ic2")]


SWW = ("Accuracy: {tp} True positives, {fn} False negatives, {fp} False positives\nAverage duty cycle: 0.13262\n"
       "Average period: 0.032055 s\nEstimated throughput: 235.23 inf./sec.\n")
SWW_ENERGY = ("Power Edition Output\nEnergy data for trial 0\n  Power         : 30.4526 mW.\n"
              "Median energy cost is 36631843.6700 uJ/inf.\n")


def sww_tree(root: Path, tp=44, fn=6, fp=4, energy: bool = False, plot: bool = True, division="closed") -> Path:
    base = root / division / "org"
    (base / "systems").mkdir(parents=True)
    (base / "systems" / "board.json").write_text(json.dumps(SYSTEM))
    folder = base / "results" / "board" / "sww" / ("energy" if energy else "performance")
    folder.mkdir(parents=True)
    (folder / "results.txt").write_text((SWW_ENERGY if energy else "") + SWW.format(tp=tp, fn=fn, fp=fp))
    (folder / "log.txt").write_text("x\n")
    if energy and plot:
        (folder / "energy_inf_000.png").write_bytes(b"\x89PNG")
    return root


def test_sww_has_its_own_rules(tmp_path):
    assert rules_of(sww_tree(tmp_path / "a" / "v1.3")) == []
    assert rules_of(sww_tree(tmp_path / "b" / "v1.3", energy=True)) == []
    results = "results/board/sww/performance/results.txt"
    assert rules_of(sww_tree(tmp_path / "c" / "v1.3", tp=41, fn=9)) == [("quality-target", results)]
    assert rules_of(sww_tree(tmp_path / "d" / "v1.3", tp=41, fn=9, division="open")) == []
    assert rules_of(sww_tree(tmp_path / "e" / "v1.3", fp=9)) == [("quality-target", results)]
    assert rules_of(sww_tree(tmp_path / "f" / "v1.3", tp=45, fn=6)) == [("sww-count", results)]
    assert rules_of(sww_tree(tmp_path / "g" / "v1.4", energy=True, plot=False)) == [
        ("required-files", "results/board/sww/energy/energy_inf_000.png")]
    assert rules_of(sww_tree(tmp_path / "h" / "v1.2")) == [("model-name", "results/board/sww")]


def test_a_foreign_tree_with_a_results_repository_around_it(tmp_path):
    """.git/ and the like are passed over; other top-level folders are not divisions; files at the
    top are not read; a whole round's tree can be checked from a division folder too."""
    root = small_tree(tmp_path / "tiny_results_v1.3", files=("log.txt",))
    (root / ".git" / "refs" / "tags").mkdir(parents=True)  # an empty folder: not walked
    (root / "README.md").write_text("results\n")
    (root / "tools").mkdir()
    (root / "tools" / "x.py").write_text("")
    assert rules_of(root) == [("layout", "tools")]
    assert check_tree(root).version == "v1.3"
    assert check_tree(root / "closed").found == []


def test_check_names_the_rules_it_used(tmp_path):
    root = small_tree(tmp_path / "tree", files=("log.txt",))
    code, out, err = cli("check", str(root))
    assert code == 0 and "OK under the MLPerf Tiny v1.4 rules (detected: the newest round whose layout fits " \
                         "the tree; layout" in out
    code, out, err = cli("check", "--version", "v1.2", str(root))
    assert code == 1 and err.strip().endswith("2 violations under the MLPerf Tiny v1.2 rules (--version)")
    assert "script.async: required-files" in out
    code, _, err = cli("check", "--version", "v2.0", str(root))
    assert code == 2


def test_checker_defaults_stay_for_the_packager(tmp_path):
    """package.py calls Checker(folder).run() on its staging folder: a list of violations."""
    root = small_tree(tmp_path / "v1.3", files=("log.txt",))
    assert Checker(root).run() == []


def test_the_window_blocks_of_every_published_form(published):
    """The EEMBC runner's even-numbered windows with their 'ulp-mlperf: '/'ulp-ml: ' prefix, its
    verdict line, and a log written twice over (every line repeated): five windows each."""
    from tinyharness.submission import result_lines as rl

    twice = published / "v1.2/closed/bosch/results/NUCLEO_H7A3ZI_float/ic/performance/results.txt"
    lines = twice.read_text().splitlines()
    assert lines[0] == lines[1] and lines[2] == lines[3]  # each line twice
    windows, problems = rl.read_windows(twice.read_text())
    assert problems == [] and [w["number"] for w in windows] == [2, 4, 6, 8, 10]
    assert all(w["met"] and w["runtime_raw"] == "12.422" for w in windows)
    short = published / "v1.1/closed/STMicroelectronics/results/NUCLEO_H7A3ZI_Q/vww/performance/results.txt"
    windows, _ = rl.read_windows(short.read_text())
    assert [(w["met"], w["inferences"], w["runtime_s"]) for w in windows][3] == (False, 100, 2.962)
    # 100 / 2.962 = 33.761, printed 33.756: within the rounding of a runtime printed to 1 ms
    assert not [v for v in check_tree(short.parents[5]).found if v.rule == "window-arithmetic"]
    energy = published / "v1.0/closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/energy/results.txt"
    assert rl.last_search(rl.ENERGY, energy.read_text()) == ("3371.738",)


def test_the_round_named_by_an_archive(published, tmp_path):
    from tinyharness.submission import archive

    root = copy_tree(published, tmp_path / "tree", "v1.1", "closed", "kai_jiang")
    path = tmp_path / "tiny_results_v1.1.tar.gz"
    archive.write_tar_gz(root, path)
    report = check_tree(path)
    assert (report.version, report.version_from) == ("v1.1", "named by 'tiny_results_v1.1.tar.gz' in the path")
    assert len(report.found) == 4 and {v.rule for v in report.found} == {"required-files"}
