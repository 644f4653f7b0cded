"""``tinyharness published``: the published results of a benchmark ranked by median throughput,
filtered, with the user's run inserted and marked; one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tinyharness.cli import main
from tinyharness.published.ranking import Mine, ranked
from tinyharness.published.tree import PublishedResult

PUBLISHED = Path(__file__).resolve().parents[3].parent / "shared" / "mlperf_tiny" / "published"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SERIAL = FIXTURES / "20261201-224022_kws01_serial_single-stream"  # VALID kws01, median 167.855 inf/s


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    monkeypatch.delenv("TINYHARNESS_PUBLISHED", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # piped: the tab-separated table


@pytest.fixture(scope="module")
def published_root() -> Path:
    if not (PUBLISHED / "v1.0").is_dir():
        pytest.skip(f"published MLPerf Tiny results (excerpt) not found at {PUBLISHED}")
    return PUBLISHED


def small_tree(root: Path) -> Path:
    """Three kws systems at 10, 100 and 1000 inf/s (v1.1 closed; the 100 one open) and a vww one."""
    for division, system, model, ips, cpu in (("closed", "slow", "kws", 10.0, "Cortex-M4"),
                                              ("open", "mid", "kws", 100.0, "Cortex-M7"),
                                              ("closed", "fast", "kws", 1000.0, "RISC-V"),
                                              ("closed", "cam", "vww", 50.0, "Cortex-M7")):
        base = root / "tiny_results_v1.1" / division / "acme"
        perf = base / "results" / system / model / "performance"
        perf.mkdir(parents=True)
        (perf / "results.txt").write_text(f"1.000 ulp-mlperf: Median throughput is {ips:.3f} inf./sec.\n")
        (perf.parent / "accuracy").mkdir()
        (perf.parent / "accuracy" / "results.txt").write_text("1.000 ulp-mlperf: Top-1: 90.5%\n")
        (base / "systems").mkdir(exist_ok=True)
        (base / "systems" / f"{system}.json").write_text(json.dumps(
            {"Board Name": f"{system} board", "Processor(s) Name ": cpu, "Inference Framework": "TFLM"}))
    return root


class Done:
    def __init__(self, code: int, output: str, err: str) -> None:
        self.exit_code, self.output, self.err = code, output, err


@pytest.fixture
def invoke(capsys):
    """``invoke(*args)``: tinyharness through main (exit codes as users get them) -> (exit code,
    stdout, and stderr as .err; .output is stdout, or stderr when the command failed)."""
    def call(*args: str) -> Done:
        with pytest.raises(SystemExit) as done:
            main(list(args))
            raise SystemExit(0)
        out, err = capsys.readouterr()
        code = done.value.code or 0
        return Done(code, out if code == 0 else err, err)
    return call


def test_ranks_a_known_throughput_among_the_published(tmp_path, invoke):
    tree = small_tree(tmp_path)
    result = invoke("published", "--results", str(tree), "--mine", str(SERIAL))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "kws01 (kws): 3 published results, by median throughput"
    assert lines[1].split("\t") == ["rank", "submitter", "system", "processor", "framework", "inf/s",
                                    "latency ms", "accuracy", "energy µJ/inf", "version", "division"]
    rows = [line.split("\t") for line in lines[2:6]]
    assert [(r[0], r[1], r[2], r[5]) for r in rows] == [
        ("1", "acme", "fast", "1,000.000"), ("2", "YOURS", "serial", "167.855"),
        ("3", "acme", "mid", "100.000"), ("4", "acme", "slow", "10.000")]
    assert rows[1][6] == f"{1000 / 167.855:.4g}" and rows[1][7] == "90.1 %" and rows[1][9] == "tinyharness"
    assert rows[0][3:5] == ["RISC-V", "TFLM"]  # the processor key has a trailing space
    assert "serial: rank 2 of 4 by median throughput (167.855 inf/s" in result.output


def test_filters_never_hide_your_run(tmp_path, invoke):
    tree = small_tree(tmp_path)
    out = invoke("published", "--results", str(tree), "--mine", str(SERIAL), "--division", "closed",
                 "--processor", "risc", "--json")
    assert out.exit_code == 0, out.output
    (bench,) = json.loads(out.output)["benchmarks"]
    assert [(e["rank"], e["mine"], e.get("system") or e["label"]) for e in bench["results"]] == [
        (1, False, "fast"), (2, True, "serial")]
    assert bench["mine"] == [bench["mine"][0]] and "rank 2 of 2" in bench["mine"][0]


def test_ranking_ties_and_results_without_throughput():
    def pub(name, ips):
        return PublishedResult("v1.0", "closed", "x", name, "kws", throughput_ips=ips)

    mine = Mine("run", "me", "kws01", True, 20.0, 90.0, "top1")
    entries = ranked([pub("a", 20.0), pub("b", 30.0), pub("c", None), pub("d", 20.0)], [mine])
    assert [(e.rank, e.name) for e in entries] == [(1, "x/b"), (2, "yours: me"), (2, "x/a"), (2, "x/d"),
                                                   (None, "x/c")]


def test_published_excerpt_kws_closed(published_root, invoke):
    out = invoke("published", "--results", str(published_root), "--benchmark", "kws01", "--division",
                 "closed", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    (bench,) = doc["benchmarks"]
    results = bench["results"]
    assert len(results) == 58 and {r["benchmark"] for r in results} == {"kws"}
    throughputs = [r["throughput_ips"] for r in results]
    assert throughputs == sorted(throughputs, reverse=True)
    assert results[0]["name"] == "Qualcomm/Snapdragon_8_Gen_3_Mobile_Platform_MTP"
    assert doc["variants"] == {"eembc": 474, "eembc-energy": 94, "edited": 4}


@pytest.mark.parametrize("options, check", [
    (("--version", "1.0"), lambda r: r["version"] == "v1.0"),
    (("--version", "v1.2", "--version", "v1.1"), lambda r: r["version"] in ("v1.1", "v1.2")),
    (("--processor", "m33"), lambda r: "M33" in r["processor"]),
    (("--framework", "x-cube"), lambda r: "X-CUBE-AI" in r["framework"]),
    (("--division", "open", "--benchmark", "ic01"), lambda r: r["submitter"] == "hls4ml"),
])
def test_filters_on_the_excerpt(published_root, options, check, invoke):
    args = ["published", "--results", str(published_root), "--json", *options]
    if "--benchmark" not in options:
        args += ["--benchmark", "kws"]
    out = invoke(*args)
    assert out.exit_code == 0, out.output
    results = json.loads(out.output)["benchmarks"][0]["results"]
    assert results and all(check(r) for r in results)


def test_the_environment_variable_names_the_trees(tmp_path, invoke, monkeypatch):
    tree = small_tree(tmp_path)
    monkeypatch.setenv("TINYHARNESS_PUBLISHED", f"{tree}:/nowhere-x")
    out = invoke("published", "--benchmark", "vww01")
    assert out.exit_code == 2 and "/nowhere-x: no such file or folder (from TINYHARNESS_PUBLISHED)" in out.output
    monkeypatch.setenv("TINYHARNESS_PUBLISHED", str(tree))
    out = invoke("published", "--benchmark", "vww01")
    assert out.exit_code == 0 and "\tcam\t" in out.output


@pytest.mark.parametrize("args, message", [
    (("--benchmark", "kws1"), "--benchmark 'kws1' has no published MLPerf Tiny results (did you mean"),
    (("--version", "one"), "--version 'one' is not a version"),
    (("--benchmark", "ad01", "--mine", str(SERIAL)), "--mine holds no ad01 run (it holds kws01)"),
])
def test_bad_input_is_one_line(tmp_path, args, message, invoke):
    out = invoke("published", "--results", str(small_tree(tmp_path)), *args)
    assert out.exit_code == 2 and message in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_no_trees_given_says_how(tmp_path, invoke):
    out = invoke("published")
    assert out.exit_code == 2 and "give --results PATH" in out.output and "TINYHARNESS_PUBLISHED" in out.output
    out = invoke("published", "--results", str(tmp_path))
    assert out.exit_code == 2 and "no MLPerf Tiny results tree" in out.output


def test_a_package_run_shows_its_system_description(tmp_path, invoke):
    """A run inside a tinyharness package folder: the package's systems/<id>.json names it."""
    tree = small_tree(tmp_path / "pub")
    run = tmp_path / "pkg" / "closed" / "me" / "tinyharness" / "myboard" / "kws" / SERIAL.name
    shutil.copytree(SERIAL, run)
    (tmp_path / "pkg" / "closed" / "me" / "systems").mkdir(parents=True)
    (tmp_path / "pkg" / "closed" / "me" / "systems" / "myboard.json").write_text(json.dumps(
        {"Board Name": "My Board", "Processor(s) Name": "Cortex-M55", "Inference Framework": "TFLM 2024"}))
    out = invoke("published", "--results", str(tree), "--mine", str(tmp_path / "pkg"))
    assert out.exit_code == 0, out.output
    mine = next(line.split("\t") for line in out.output.splitlines() if "\tYOURS\t" in line)
    assert mine[2:5] == ["serial (me/myboard)", "Cortex-M55", "TFLM 2024"] and mine[10] == "closed"
