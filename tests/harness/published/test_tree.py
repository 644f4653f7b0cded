"""Published MLPerf Tiny results read into records: every results.txt of the excerpts in
../shared/mlperf_tiny/published parses (counted by variant) or is reported with its reason;
figures read by eye from real files; every variant of the result lines; system descriptions as
submitters wrote them; bounded reading (links, FIFOs, sizes); archives; load_runs on a tree."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from tinyharness.errors import UsageError
from tinyharness.published import lines, systems
from tinyharness.published.tree import FILE_LIMIT, is_tree, read_published, read_tree, version_of
from tinyharness.results.read import load_runs

PUBLISHED = Path(__file__).resolve().parents[3].parent / "shared" / "mlperf_tiny" / "published"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SERIAL = FIXTURES / "20261201-224022_kws01_serial_single-stream"


@pytest.fixture(scope="module")
def published_root() -> Path:
    if not (PUBLISHED / "v1.0").is_dir():
        pytest.skip(f"published MLPerf Tiny results (excerpt) not found at {PUBLISHED}")
    return PUBLISHED


@pytest.fixture(scope="module")
def store(published_root):
    return read_published([published_root])


def one(store, version, submitter, system, benchmark, division="closed"):
    found = [r for r in store.results if (r.version, r.division, r.submitter, r.system, r.benchmark)
             == (version, division, submitter, system, benchmark)]
    assert len(found) == 1, found
    return found[0]


def write_tree(root: Path, results: dict[str, str], system_json: dict[str, str] | None = None) -> Path:
    """``root/closed/acme/...``: ``results`` maps 'system/model/test' to a results.txt's text."""
    base = root / "closed" / "acme"
    for where, text in results.items():
        folder = base / "results" / where
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.txt").write_text(text)
    for name, text in (system_json or {}).items():
        (base / "systems").mkdir(parents=True, exist_ok=True)
        (base / "systems" / f"{name}.json").write_text(text)
    return root


# -- the excerpts: every file ------------------------------------------------------------------

def test_every_published_results_txt_parses_counted_by_variant(published_root, store):
    on_disk = sorted(str(Path(here) / "results.txt") for here, _, names in os.walk(published_root)
                     if "results.txt" in names)
    assert len(on_disk) == 572  # the excerpt's README: 572 results.txt
    unreadable = {path for path, _ in store.unreadable}
    assert sorted(set(store.variants) | {p for p in unreadable if p.endswith("results.txt")}) == on_disk
    assert not [p for p in unreadable if p.endswith("results.txt")]  # all of them parse
    counts: dict[str, int] = {}
    for variant in store.variants.values():
        counts[variant] = counts.get(variant, 0) + 1
    # EEMBC runner performance/accuracy logs, its energy-mode logs, and 4 files whose every line is
    # written twice (bosch v1.2); the excerpt holds no MLCommons-runner results.txt
    assert counts == {"eembc": 474, "eembc-energy": 94, "edited": 4}
    figures = sum(1 for r in store.results for fig, _ in r.sources if fig != "system")
    assert figures == 572  # every file gave its figure to one record
    # the only file that could not be read: macOS metadata beside a system description
    assert [(Path(p).name, why.split(" (")[0]) for p, why in store.unreadable] == [
        ("._Snapdragon_8_Gen_3_Mobile_Platform_MTP.json", "macOS metadata")]


def test_records_by_version_and_division(store):
    counts: dict[tuple[str, str], int] = {}
    for r in store.results:
        counts[r.version, r.division] = counts.get((r.version, r.division), 0) + 1
    assert counts == {("v1.0", "closed"): 54, ("v1.0", "open"): 1, ("v1.1", "closed"): 111,
                      ("v1.2", "closed"): 73}
    assert {r.benchmark for r in store.results} == {"kws", "vww", "ic", "ad"}


# -- hand-worked: values read by eye in the files ------------------------------------------------

def test_st_l4r5zi_kws_v11(store):
    # results/NUCLEO_L4R5ZI/kws/accuracy: "00245.223 ulp-mlperf: Top-1: 90.2%"; performance:
    # windows 15.904 15.905 15.906 15.904 15.908, "Median throughput is 15.905 inf./sec.";
    # energy: "Median energy cost is 2833.138 uJ/inf."; systems/NUCLEO_L4R5ZI.json: Board Name
    # NUCLEO-L4R5ZI, 32-bit Arm Cortex-M4 (DSP + FPU) at 120 MHz, X-CUBE-AI v8.1.0.
    r = one(store, "v1.1", "STMicroelectronics", "NUCLEO_L4R5ZI", "kws")
    assert (r.throughput_ips, r.accuracy, r.accuracy_metric, r.energy_uj) == (15.905, 90.2, "top1", 2833.138)
    assert r.windows == (15.904, 15.905, 15.906, 15.904, 15.908)
    assert r.latency_ms == pytest.approx(1000 / 15.905) and f"{r.latency_ms:.2f}" == "62.87"
    assert (r.board, r.processor, r.frequency, r.framework) == (
        "NUCLEO-L4R5ZI", "32-bit Arm Cortex-M4 (DSP + FPU)", "120 MHz", "X-CUBE-AI v8.1.0")
    assert r.benchmark_id == "kws01" and r.name == "STMicroelectronics/NUCLEO_L4R5ZI"
    assert r.source("throughput").endswith("v1.1/closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/"
                                           "performance/results.txt")
    assert r.source("system").endswith("systems/NUCLEO_L4R5ZI.json")
    assert dict(r.formats) == {"accuracy": "eembc", "performance": "eembc", "energy": "eembc-energy"}


def test_octoml_nested_results_and_broken_system_json(store):
    # results/microtvm_cmsis_nn/NRF5340-DK/ad: accuracy "Top-1: 77.4%" and "AUC: 0.86" (ad's figure
    # is the AUC); "Median throughput is 159.579 inf./sec."; no energy folder. Its description
    # (system_description_NRF5340DK_microtvm_cmsis_nn.json) lacks a comma at line 40.
    r = one(store, "v1.0", "OctoML", "microtvm_cmsis_nn/NRF5340-DK", "ad")
    assert (r.throughput_ips, r.accuracy, r.accuracy_metric, r.energy_uj) == (159.579, 0.86, "auc", None)
    assert (r.board, r.processor, r.frequency, r.framework) == (
        "nRF5340 DK", "32-bit Arm® Cortex®-M33 (DSP + FPU)", "128 MHz", "microTVM")
    assert r.software.startswith("TVM SHA")  # {"TVM": {"SHA": ...}} as one line
    assert any("not valid JSON" in n and "repairing" in n for n in r.notes)
    assert any("matched by name" in n for n in r.notes)


def test_hls4ml_open_variant_folder_and_power_folder(store):
    # open/hls4ml/results/pynq-z2/ic/RN08/{accuracy,performance,power}: "Top-1: 83.5%",
    # "Median throughput is 130.834 inf./sec.", "Median energy cost is 12266.036 uJ/inf."
    r = one(store, "v1.0", "hls4ml", "pynq-z2", "ic", division="open")
    assert (r.variant, r.throughput_ips, r.accuracy, r.energy_uj) == ("RN08", 130.834, 83.5, 12266.036)
    assert r.name == "hls4ml/pynq-z2 RN08"
    assert "energy: test folder named 'power'" in r.notes


def test_doubled_lines_and_short_windows_are_noted(store):
    # bosch v1.2 NUCLEO_H7A3ZI_float/ic/performance: every line twice, "Median throughput is 8.050"
    r = one(store, "v1.2", "bosch", "NUCLEO_H7A3ZI_float", "ic")
    assert r.throughput_ips == 8.05 and r.windows == (8.05,) * 5 and r.accuracy == 87.0
    assert dict(r.formats)["performance"] == "edited"
    assert "performance: every line is written twice; read once" in r.notes
    # ST v1.1 NUCLEO_L4R5ZI/ic/energy: window 6 ran 9.99 s, "Median energy cost is 7019.085 uJ/inf."
    st = one(store, "v1.1", "STMicroelectronics", "NUCLEO_L4R5ZI", "ic")
    assert st.energy_uj == 7019.085
    assert any(n.startswith("energy: 1 window shorter than 10 s") for n in st.notes)


def test_missing_system_description_is_noted(store):
    r = one(store, "v1.0", "syntiant", "syntiant_9120_1v1_98mhz", "kws")
    assert (r.throughput_ips, r.accuracy, r.energy_uj) == (675.024, 91.1, 43.802)
    assert r.processor == "" and r.source("system") is None
    assert "no system description systems/syntiant_9120_1v1_98mhz.json" in r.notes


# -- result lines: every variant ------------------------------------------------------------------

@pytest.mark.parametrize("text, test, variant, figures", [
    ("31730.644 ulp-mlperf: Top-1: 78.6%\n31730.650 ulp-mlperf: AUC: 0.93\n", "accuracy", "eembc",
     {"top1": 78.6, "auc": 0.93}),
    ("0612.142501 ulp-mlperf: Top 1% = 85.4\n0612.142501 ulp-mlperf: AUC = 0.862\n", "accuracy",
     "mlcommons", {"top1": 85.4, "auc": 0.862}),
    ("0612.142501 ulp-mlperf: Median throughput is    141.702 inf./sec.\n", "performance", "mlcommons",
     {"throughput_ips": 141.702}),
    ("00126.103 ulp-ml: Median energy cost is 2833.138 uJ/inf.\n", "energy", "eembc-energy",
     {"energy_uj": 2833.138}),
    ("Median throughput is 12.5 inf./sec.\n", "performance", "edited", {"throughput_ips": 12.5}),
    ("x ulp-mlperf: Top-1: 80.0%\n0612.142501 ulp-mlperf: Top 1% = 81.0\n", "accuracy", "edited",
     {"top1": 81.0}),  # two runners' lines: the last wins, as in the checker
])
def test_result_line_variants(text, test, variant, figures):
    parsed = lines.parse(text, test)
    assert parsed.variant == variant and parsed.problem is None
    for name, value in figures.items():
        assert getattr(parsed, name) == value


def test_a_hand_edited_line_the_checker_misses_is_read_and_noted():
    parsed = lines.parse("Median throughput is 12.5 inf./sec.\n", "performance")
    assert any("the MLCommons checker does not match" in n for n in parsed.notes)


@pytest.mark.parametrize("text, test, problem", [
    ("", "performance", "no 'Median throughput is N inf./sec.' line"),
    ("1 ulp-mlperf: Median throughput is 1.2.3 inf./sec.\n", "performance", "not a number"),
    ("1.000 ulp-mlperf: Cannot compute accuracy metrics in single-run mode.\n", "accuracy", "no 'Top-1'"),
    ("1.000 ulp-ml: Median throughput is 3.0 inf./sec.\n", "energy", "no 'Median energy cost"),
])
def test_a_file_without_its_figure_says_why(text, test, problem):
    assert problem in lines.parse(text, test).problem


# -- system descriptions ----------------------------------------------------------------------------

def test_system_keys_are_read_tolerantly():
    info = systems.parse(b'{"board name ": "B", "PROCESSOR(S) NAME": "Cortex-M4", "Inference Framework":'
                         b' "N/A", "ML Model Compiler(s)": "TVM", "Software Libraries": ["a", {"b": "1"}]}',
                         "x", "x.json")
    assert (info.get("board"), info.get("processor"), info.get("framework"), info.get("software")) == (
        "B", "Cortex-M4", "TVM", "a, b 1")
    twice = systems.parse(b'{"Inference Framework": "X-CUBE-AI v8.0.0", "Inference Framework": ""}', "x", "x")
    assert twice.get("framework") == "X-CUBE-AI v8.0.0" and "more than once" in twice.notes[0]
    broken = systems.parse(b'{\n"Board Name": "B",\n"Processor(s) Name": "P",\n', "x", "x.json")
    assert broken.get("processor") == "P" and "repairing" in broken.notes[0]
    scraped = systems.parse(b'{\n"Board Name": "B"\n"x": [1 2]\n', "x", "x.json")
    assert scraped.get("board") == "B" and "read one by one" in scraped.notes[0]
    for bad in (b"[1, 2]", b"\xff\xfe", b"nothing here"):
        with pytest.raises(UsageError):
            systems.parse(bad, "x", "x.json")


def test_system_matching():
    d = {n: systems.SystemInfo(n, n) for n in ("system_description_NRF5340DK_microtvm_cmsis_nn",
                                                "system_description_NUCLEO_L4R5ZI_microtvm_cmsis_nn",
                                                "NUCLEO-H7A3ZI")}
    assert systems.match("NUCLEO-H7A3ZI", d)[0].name == "NUCLEO-H7A3ZI"
    assert systems.match("nucleo_h7a3zi", d)[0].name == "NUCLEO-H7A3ZI"
    assert systems.match("microtvm_cmsis_nn/NRF5340-DK", d)[0].name.endswith("NRF5340DK_microtvm_cmsis_nn")
    assert systems.match("zybo", d) == (None, "")
    assert systems.match("pynq-z2", {"only": systems.SystemInfo("only", "p")})[0].name == "only"


# -- trees: versions, bounds, archives -------------------------------------------------------------

def test_version_from_the_path():
    assert version_of(["x", "tiny_results_v1.1", "closed"]) == "v1.1"
    assert version_of(["v1.0", "tiny_results_v1.2-main"]) == "v1.2"
    assert version_of(["results", "closed"]) == "?"


def test_links_fifos_oversized_and_misplaced_files_are_reported(tmp_path):
    root = write_tree(tmp_path / "tiny_results_v1.3", {
        "b1/kws/performance": "1.000 ulp-mlperf: Median throughput is 10.000 inf./sec.\n",
        "b1/kws/accuracy": "1.000 ulp-mlperf: Top-1: 90.5%\n",
        "b1/kws/energy": "x" * (FILE_LIMIT + 1),
        "b1/kws/notes": "1.000 ulp-mlperf: Median throughput is 1.0 inf./sec.\n",
    })
    results = root / "closed" / "acme" / "results"
    outside = tmp_path / "outside.txt"
    outside.write_text("1.000 ulp-mlperf: Median throughput is 999.0 inf./sec.\n")
    (results / "b2" / "vww" / "performance").mkdir(parents=True)
    (results / "b2" / "vww" / "performance" / "results.txt").symlink_to(outside)
    (results / "b3" / "ic").mkdir(parents=True)
    (results / "b3" / "ic" / "performance").symlink_to(outside.parent, target_is_directory=True)
    (results / "b4" / "ad" / "performance").mkdir(parents=True)
    os.mkfifo(results / "b4" / "ad" / "performance" / "results.txt")
    out = read_tree(root)
    assert [(r.version, r.system, r.benchmark, r.throughput_ips, r.accuracy) for r in out.results] == [
        ("v1.3", "b1", "kws", 10.0, 90.5)]
    why = {str(Path(p).relative_to(results)): reason for p, reason in out.unreadable}
    assert "a symbolic link" in why["b2/vww/performance/results.txt"]
    assert "FIFO" in why["b4/ad/performance/results.txt"]
    assert "more than the 1,048,576 allowed" in why["b1/kws/energy/results.txt"]
    assert "not accuracy, performance or energy" in why["b1/kws/notes/results.txt"]
    assert not any("b3" in p for p in why)  # a linked folder is never entered


def test_an_archive_of_a_tree(tmp_path):
    root = write_tree(tmp_path / "src", {"b1/ic/performance": "1.000 ulp-mlperf: Median throughput is "
                                                               "5.500 inf./sec.\n"},
                      {"b1": '{"Board Name": "Board One", "Processor(s) Name": "RISC-V"}'})
    archive = tmp_path / "tiny_results_v1.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "closed", arcname="closed")
    out = read_published([archive])
    (r,) = out.results
    assert (r.version, r.throughput_ips, r.board, r.processor) == ("v1.1", 5.5, "Board One", "RISC-V")
    assert r.source("throughput") == f"{archive}:closed/acme/results/b1/ic/performance/results.txt"
    assert not any(tmp_path.glob("tinyharness-check-*"))


def test_a_path_without_a_tree(tmp_path):
    assert read_tree(tmp_path) is None and not is_tree(tmp_path)
    with pytest.raises(UsageError, match="no MLPerf Tiny results tree"):
        read_published([tmp_path])


def test_load_runs_recognises_a_tree(tmp_path):
    root = write_tree(tmp_path / "v1.2", {"b1/kws/performance": "1.000 ulp-mlperf: Median throughput "
                                                                "is 10.000 inf./sec.\n"})
    with pytest.raises(UsageError, match="is an MLPerf Tiny results tree.*'tinyharness published --results"):
        load_runs([root])
    found: list = []
    assert load_runs([root], published=found) == [] and [r.name for r in found] == ["acme/b1"]
    runs = load_runs([SERIAL, root], published=found)  # runs and a tree: both read
    assert [r.summary.benchmark for r in runs] == ["kws01"] and len(found) == 2
    with pytest.raises(UsageError, match="no run directories"):  # unchanged for other folders
        load_runs([tmp_path / "v1.2" / "closed" / "acme" / "results" / "b1"], published=[])
