"""``tinyharness report``: a self-contained, escaped HTML page whose embedded plots decode.

Inputs are the schema-1 fixture runs, read unchanged, copies of one whose summary.json this file
rewrites through the run model (markup in every string a report shows; other figures), and runs
of a fake SUT that failed or were interrupted.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fakes import FakeSUT, registered
from tinyharness import report
from tinyharness.cli import main
from tinyharness.errors import RunFailed, RunInterrupted, UsageError
from tinyharness.progress import Progress
from tinyharness.report import NEEDS_MATPLOTLIB, accuracy_cell, make_report, row_of
from tinyharness.report_charts import (accuracy_figure, axis_scale, comparison_figure, figures,
                                       latency_figure)
from tinyharness.results import Reason, ReasonCode
from tinyharness.results.read import RunRecord, load_runs, read_summary
from tinyharness.runner import Run, RunRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"
SINGLE_STREAM = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('x')</script> $\\notamacro$ & co"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A copy of the single-stream fixture whose SUT, runtime, precision and an invalid reason
    carry markup, and whose accuracy fails its target."""
    run = shutil.copytree(SINGLE_STREAM, tmp_path_factory.mktemp("hostile") / "run")
    s = read_summary(run)
    s = dataclasses.replace(
        s, sut=HOSTILE, system=dataclasses.replace(s.system, runtime=HOSTILE, precision=HOSTILE),
        accuracy=dataclasses.replace(s.accuracy, value=10.0, passed=False),
        invalid_reasons=[*s.invalid_reasons, Reason(ReasonCode.OTHER, HOSTILE)])
    (run / "summary.json").write_text(json.dumps(s.to_dict()))
    return run


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def decode_png(data: bytes) -> tuple[int, int]:
    """Height and width of a PNG, fully decoded (matplotlib checks the zlib stream and CRCs)."""
    from matplotlib.image import imread

    assert data.startswith(PNG_SIGNATURE)
    pixels = imread(io.BytesIO(data), format="png")
    return pixels.shape[0], pixels.shape[1]


def test_html_report(hostile, tmp_path):
    """The three schema-1 runs and the hostile copy: every SUT named, markup shown as text."""
    out = tmp_path / "sub" / "report.html"
    assert make_report([FIXTURES, hostile], out) == [out]
    text = out.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert "script" not in page.tags and "<script>" not in text
    assert "&lt;script&gt;" in text and HOSTILE in "".join(page.text)  # shown, as text
    outside_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not {"link", "iframe", "object"} & set(page.tags) and "://" not in outside_images
    # Per run: latency (histogram + CDF) and windows for the two runs with latencies, windows for
    # the serial run, completions for the offline one; per benchmark: digits01 accuracy and the
    # comparison across its SUTs, kws01 accuracy (one SUT: nothing to compare).
    assert len(page.images) == 2 * 2 + 1 + 1 + 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        height, width = decode_png(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert 200 <= height <= 400 and 500 <= width <= 1200, (height, width)
    for cell in ("digits01", "kws01", "onnxruntime-cpu", "tflite-cpu", "serial", "single-stream",
                 "offline", "VALID", "INVALID"):
        assert cell in page.text  # whole table cells
    assert "10.00 % (target 90 %, fail)" in page.text and "90.10 % (target 90 %, pass)" in page.text
    # schema-1 reasons (plain strings) are listed as read
    assert "min_duration overridden to 0.05 s (rule set digits01 requires 3 s)" in page.text


def test_rows_from_the_run_model():
    """Table cells of the schema-1 runs: each section where the run has it, '-' where not."""
    rows = {r.sut: row_of(r) for r in load_runs([FIXTURES])}
    ss, off, serial = rows["onnxruntime-cpu"], rows["tflite-cpu"], rows["serial"]
    assert (ss["p50 (µs)"], ss["p90 (µs)"], ss["early-stopping p90 (µs)"]) == ("5.525", "8.998", "9.025")
    assert ss["window median (inf/s)"] == "142,974.8" and ss["runtime"].endswith(", 1 thread")
    assert ss["accuracy"] == "98.33 % (target 90 %, pass)" and ss["result"] == "INVALID"
    assert off["offline (samples/s)"] == "249,777.7" and off["p50 (µs)"] == "-"
    assert off["runtime"] == "ai-edge-litert 2.3.0, int8, 2 threads"
    assert serial["result"] == "VALID" and "thread" not in serial["runtime"] and serial["p50 (µs)"] == "-"
    assert serial["window median (inf/s)"] == "167.9"


def test_mode_date_result_and_reason_columns():
    """The columns users asked for: an accuracy-only or performance-only run says so, each run
    when it started (UTC, to the minute), its verdict and why."""
    rows = {r.sut: row_of(r) for r in load_runs([FIXTURES])}
    ss, off, serial = rows["onnxruntime-cpu"], rows["tflite-cpu"], rows["serial"]
    assert list(ss)[:7] == ["benchmark", "SUT", "scenario", "mode", "started (UTC)", "result", "reason"]
    assert (ss["mode"], off["mode"]) == ("all", "performance")
    assert (ss["started (UTC)"], off["started (UTC)"]) == ("2026-12-01 22:40", "2026-12-01 22:40")
    assert ss["reason"].startswith("min_duration overridden to 0.05 s (rule set digits01 requires 3 s)")
    assert serial["reason"] == "" and serial["result"] == "VALID"
    assert report._date("2026-12-01T23:40:10+01:00") == "2026-12-01 22:40" and report._date(None) == "-"


def test_accuracy_is_a_rounded_percentage_with_its_target():
    s = read_summary(SINGLE_STREAM)
    assert accuracy_cell(s) == "98.33 % (target 90 %, pass)"
    below = dataclasses.replace(s, accuracy=dataclasses.replace(s.accuracy, value=89.99444, passed=False))
    assert accuracy_cell(below) == "89.99 % (target 90 %, fail)"
    auc = dataclasses.replace(s.accuracy, metric="auc", value=0.862149, target=0.85)
    assert accuracy_cell(dataclasses.replace(s, accuracy=auc)) == "AUC 0.8621 (target 0.85, pass)"
    undefined = dataclasses.replace(auc, value=None, passed=False)
    assert accuracy_cell(dataclasses.replace(s, accuracy=undefined)) == "auc undefined (target 0.85)"


def test_latency_figure_marks_loadgen_percentiles():
    """The CDF's p50/p90 lines are LoadGen's percentiles (the fixture's summary values)."""
    run = load_runs([SINGLE_STREAM])[0]
    labels = [t.get_text() for t in latency_figure(run).axes[1].get_legend().get_texts()]
    assert labels == [f"p50 {5.525:.3g} µs", f"p90 {8.998:.3g} µs"]


def test_png_format_cli(hostile, tmp_path):
    out = tmp_path / "pngs"
    proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "report", str(FIXTURES), str(hostile),
                           "--format", "png", "--output", str(out)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert len(files) == 9 and all(f.suffix == ".png" for f in files)
    names = {f.name for f in files}
    # numbered as the table: the digits01 runs (the hostile copy third), then kws01
    assert {"01_digits01_onnxruntime-cpu_single-stream_latency.png",
            "02_digits01_tflite-cpu_offline_offline.png", "04_kws01_serial_single-stream_windows.png",
            "digits01_comparison.png", "kws01_accuracy.png"} <= names
    assert all("digits01" in n or "kws01" in n for n in names)  # every file names its benchmark
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png", n) for n in names)  # hostile name slugged
    for f in files:
        assert decode_png(f.read_bytes())[0] >= 200


# -- figures ---------------------------------------------------------------------------------------
def with_p50(run: RunRecord, p50: float, valid: bool = True, label: str = "") -> RunRecord:
    """The single-stream fixture run with another p50 (and verdict), as a new record."""
    s = run.summary
    s = dataclasses.replace(s, latency_us=dataclasses.replace(s.latency_us, p50=p50), valid=valid,
                            invalid_reasons=s.invalid_reasons if not valid else [], errors=[])
    return RunRecord(run.path, s, run.latencies, label or s.sut)


def panels(fig) -> dict[str, object]:
    return {ax.get_title().split(" (")[0]: ax for ax in fig.axes}


def test_axis_scale_is_linear_unless_values_span_orders_of_magnitude():
    assert axis_scale([43.6, 65.4]) == "linear"  # the 1.5x that a log axis made look like 10x
    assert axis_scale([2.5, 9.2, 13.8]) == "linear" and axis_scale([1.0, 99.0]) == "linear"
    assert axis_scale([5.0, 50_000.0]) == "log" and axis_scale([1.0, 100.0]) == "log"
    assert axis_scale([0.0, 1e6]) == "linear"  # log cannot show zero


def test_comparison_bars_are_linear_labelled_and_invalid_ones_hatched():
    (run,) = load_runs([SINGLE_STREAM])
    runs = [with_p50(run, 43.6, label="a"), with_p50(run, 65.4, valid=False, label="b")]
    p50 = panels(comparison_figure("digits01", runs))["p50 latency"]
    assert p50.get_yscale() == "linear" and "log" not in p50.get_ylabel()
    bars = p50.patches
    assert [round(b.get_height(), 1) for b in bars] == [43.6, 65.4]
    assert (bars[0].get_hatch(), bars[1].get_hatch()) == (None, "///")  # the INVALID one
    assert [t.get_text() for t in p50.texts] == ["43.6", "65.4"]  # values written on the bars
    legend = p50.figure.legends[0]
    assert "INVALID run" in [t.get_text() for t in legend.get_texts()]
    wide = panels(comparison_figure("digits01", [with_p50(run, 5.0, label="a"),
                                                 with_p50(run, 50_000.0, label="b")]))["p50 latency"]
    assert wide.get_yscale() == "log" and wide.get_ylabel() == "µs (log scale)"
    assert not panels(comparison_figure("digits01", [with_p50(run, 5.0), with_p50(run, 6.0)]))[
        "p50 latency"].figure.legends  # all VALID: nothing to explain


def test_accuracy_is_drawn_as_the_distance_to_the_target(hostile):
    """98.33 % against a target of 90 is a bar of +8.33 pp; the hostile copy's 10 % is -80 pp."""
    runs = [r for r in load_runs([SINGLE_STREAM, hostile])]
    fig = accuracy_figure("digits01", runs)
    ax = fig.axes[0]
    assert [round(b.get_height(), 2) for b in ax.patches] == [8.33, -80.0]
    assert [t.get_text() for t in ax.texts] == ["98.33 %\n+8.33 pp", "10.00 %\n-80.00 pp"]
    assert ax.get_ylim()[0] < -80 < 8.33 < ax.get_ylim()[1] and "target" in ax.get_ylabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "target 90 % (the zero line)" in legend and "below the target" in legend


def test_latency_figure_marks_loadgen_percentiles_on_a_labelled_log_axis():
    run = load_runs([SINGLE_STREAM])[0]
    fig = latency_figure(run)
    assert all("log scale" in ax.get_xlabel() for ax in fig.axes)
    assert fig.axes[0].get_title().startswith("digits01 · onnxruntime-cpu (INVALID)")


def test_every_figure_name_holds_its_benchmark(hostile):
    runs = load_runs([FIXTURES, hostile])
    names = [name for name, *_ in figures(list(enumerate(runs, start=1)))]
    benchmarks = {r.key[0] for r in runs}
    assert names and all(any(b in name for b in benchmarks) for name in names)
    assert "02_digits01_tflite-cpu_offline_offline" in names


# -- runs that did not finish ----------------------------------------------------------------------
def unfinished(out: Path, interrupt: bool = False) -> Path:
    """A run of the fake SUT that fails (or is interrupted) in its accuracy pass: a run
    directory with status.json, detail.txt and partial_summary.json, no summary.json."""
    options = {"fail_after": "5", **({"interrupt": "1"} if interrupt else {})}
    with registered(FakeSUT), pytest.raises(RunInterrupted if interrupt else RunFailed):
        Run(RunRequest(sut="fake", output=out, min_duration_s=0.2,
                       sut_options=options)).execute(Progress(enabled=False))
    (run_dir,) = out.iterdir()
    return run_dir


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """results/ as users have it: the fixture runs, a failed run and an interrupted one."""
    root = tmp_path_factory.mktemp("results")
    for run in FIXTURES.iterdir():
        shutil.copytree(run, root / run.name)
    failed = unfinished(tmp_path_factory.mktemp("failed"))
    interrupted = unfinished(tmp_path_factory.mktemp("interrupted"), interrupt=True)
    shutil.move(failed, root / failed.name)
    shutil.move(interrupted, root / interrupted.name)
    return root


def test_unfinished_runs_are_skipped_with_a_warning_and_listed(results, tmp_path, capsys):
    """Issue: `report results/*` exited 2 as soon as one run there had failed."""
    out = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exited:
        main(["report", *map(str, sorted(results.iterdir())), "--output", str(out)])
    assert exited.value.code == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("warning: skipped ")]
    assert len(warnings) == 2 and len(err) == 3  # and the closing "report: ..." line
    failed, interrupted = (next(w for w in warnings if f"(status: {state})" in w)
                           for state in ("failed", "interrupted"))
    assert "_digits01_fake_single-stream" in failed and failed.endswith("RuntimeError: device fell over")
    assert interrupted.endswith("(status: interrupted): interrupted by the user")
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert {"FAILED", "INTERRUPTED", "RuntimeError: device fell over", "fake"} <= set(page.text)
    alone = Page()
    alone.feed(make_report([FIXTURES], tmp_path / "alone.html")[0].read_text(encoding="utf-8"))
    assert page.images == alone.images  # the fixture runs' figures alone: nothing drawn of the fake runs
    skipped: list = []
    load_runs([results], skipped, warn=lambda message: None)
    assert [row_of(r)["mode"] for r in skipped] == ["all", "all"]  # from the partial summaries


def test_only_unfinished_runs_is_a_one_line_usage_error(results, tmp_path, capsys):
    fake_runs = [str(p) for p in results.iterdir() if "_fake_" in p.name]
    with pytest.raises(SystemExit) as exited:
        main(["report", *fake_runs, "--output", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and len(err) == 3 and not (tmp_path / "r.html").exists()
    assert err[-1] == ("tinyharness: error: no finished runs to read: the 2 run directories given did "
                       "not finish (see the warnings above)")


def test_without_matplotlib_the_report_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(SystemExit) as exited:
        main(["report", str(SINGLE_STREAM), "--output", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and err == [f"tinyharness: error: {NEEDS_MATPLOTLIB}"]
    assert NEEDS_MATPLOTLIB == "tinyharness report needs matplotlib: pip install 'tinyharness[report]'"
    assert not (tmp_path / "r.html").exists()


# -- where the report goes (hardening) -------------------------------------------------------------
@contextlib.contextmanager
def drained(fifo: Path):
    """A reader on ``fifo`` for the block, so that code writing into it (the defect) does not
    block the test forever."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    done = threading.Event()

    def drain() -> None:
        while not done.wait(0.01):
            try:
                while os.read(fd, 1 << 16):
                    pass
            except BlockingIOError:
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        os.close(fd)


def report_error(capsys, *args: str) -> str:
    """The one line ``tinyharness report`` prints on stderr, after checking it exits 2."""
    with pytest.raises(SystemExit) as exited:
        main(["report", str(SINGLE_STREAM), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1, err
    return err[0]


def test_output_onto_a_folder_or_under_a_file_is_one_line(tmp_path, capsys):
    """Issue defect 11: these gave tracebacks."""
    assert f"--output {tmp_path} is a folder; give the HTML file's path, e.g. " \
           f"{tmp_path / 'report.html'}" in report_error(capsys, "--output", str(tmp_path))
    (tmp_path / "file").write_text("")
    under = tmp_path / "file" / "sub" / "report.html"
    assert f"--output {under}: {tmp_path / 'file'} is a file, not a folder" in report_error(
        capsys, "--output", str(under))
    assert f"--output {tmp_path / 'file'} exists and is not a folder; with --format png give a " \
           "folder" in report_error(capsys, "--output", str(tmp_path / "file"), "--format", "png")


def test_output_into_proc_is_one_line(capsys):
    message = report_error(capsys, "--output", "/proc/tinyharness-report.html")
    assert message.startswith("tinyharness: error: --output /proc/tinyharness-report.html")


def test_output_onto_a_fifo_is_refused_and_never_opened(tmp_path, capsys):
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    with drained(fifo):
        assert f"--output {fifo} is not a regular file" in report_error(capsys, "--output", str(fifo))


def test_runs_in_one_report_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_RUNS", 2)
    with pytest.raises(UsageError, match="3 runs; a report shows at most 2, give fewer paths"):
        make_report([FIXTURES], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# -- against published MLPerf Tiny results (issue 12 §4) --------------------------------------------
SERIAL = FIXTURES / "20261201-224022_kws01_serial_single-stream"  # VALID kws01, 167.855 inf/s
PUBLISHED = Path(__file__).resolve().parents[2].parent / "shared" / "mlperf_tiny" / "published"


def published_tree(root: Path) -> Path:
    """Three published kws systems (10, 100 and 1000 inf/s; 'mid' in the open division)."""
    for division, system, ips in (("closed", "slow", 10.0), ("open", "mid", 100.0), ("closed", "fast", 1000.0)):
        perf = root / "v1.1" / division / "acme" / "results" / system / "kws" / "performance"
        perf.mkdir(parents=True)
        (perf / "results.txt").write_text(f"1.000 ulp-mlperf: Median throughput is {ips:.3f} inf./sec.\n")
    return root


def test_published_chart_and_table(tmp_path):
    tree = published_tree(tmp_path / "pub")
    written = make_report([SERIAL], tmp_path / "png", "png", published=[tree])
    chart = tmp_path / "png" / "kws01_published.png"
    assert chart in written and decode_png(chart.read_bytes())[0] > 200
    page = tmp_path / "report.html"
    main_args = ["report", str(SERIAL), "--published", str(tree), "--output", str(page)]
    with pytest.raises(SystemExit) as done:
        main(main_args)
        raise SystemExit(0)
    assert done.value.code in (0, None)
    html_text = page.read_text()
    parsed = Page()
    parsed.feed(html_text)
    assert "Against 3 published results" in html_text
    assert "serial: rank 2 of 4 by median throughput (167.855 inf/s" in html_text
    assert '<tr class="mine"><td class="num">2</td><td>YOURS</td><td>serial</td>' in html_text
    for header in ("rank", "submitter", "system", "processor", "framework", "inf/s", "latency ms",
                   "accuracy", "energy µJ/inf", "version", "division"):
        assert f"<th>{header}</th>" in html_text
    assert any("kws01_published" in alt for alt in re.findall(r'alt="([^"]+)"', html_text))


def test_published_figure_is_a_labelled_log_axis_with_your_bar_highlighted(tmp_path):
    from tinyharness.published.ranking import mine_of, ranked
    from tinyharness.published.tree import read_published
    from tinyharness.report_charts import MINE_COLOR, published_figure

    store = read_published([published_tree(tmp_path)])
    entries = ranked(store.results, [mine_of(load_runs([SERIAL])[0])])
    fig = published_figure("kws01", entries)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel().endswith("(log scale)")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["acme/fast (v1.1)", "yours: serial", "acme/mid (v1.1, open)", "acme/slow (v1.1)"]
    bars = ax.patches
    from matplotlib.colors import to_hex

    assert to_hex(bars[1].get_facecolor()) == MINE_COLOR
    assert "yours: rank 2 of 4" in " ".join(t.get_text() for t in ax.texts)


def test_published_report_on_the_excerpt(tmp_path):
    if not (PUBLISHED / "v1.0").is_dir():
        pytest.skip(f"published MLPerf Tiny results (excerpt) not found at {PUBLISHED}")
    written = make_report([SERIAL], tmp_path, "png", published=[PUBLISHED])
    assert tmp_path / "kws01_published.png" in written
    assert decode_png((tmp_path / "kws01_published.png").read_bytes())[0] > 1000  # 59 bars
