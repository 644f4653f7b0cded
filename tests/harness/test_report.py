"""``tinyharness report``: a self-contained, escaped HTML page whose embedded plots decode.

Inputs are the schema-1 fixture runs, read unchanged, plus a copy of one whose summary.json this
file rewrites through the run model with markup in every string a report shows.
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
from tinyharness import report
from tinyharness.cli import main
from tinyharness.errors import UsageError
from tinyharness.report import latency_figure, make_report, row_of
from tinyharness.results import Reason, ReasonCode
from tinyharness.results.read import load_runs, read_summary

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
    assert "top1 10 vs target 90 (fail)" in page.text and "top1 90.1 vs target 90 (pass)" in page.text
    # schema-1 reasons (plain strings) are listed as read
    assert "min_duration overridden to 0.05 s (rule set digits01 requires 3 s)" in page.text


def test_rows_from_the_run_model():
    """Table cells of the schema-1 runs: each section where the run has it, '-' where not."""
    rows = {r.sut: row_of(r) for r in load_runs([FIXTURES])}
    ss, off, serial = rows["onnxruntime-cpu"], rows["tflite-cpu"], rows["serial"]
    assert (ss["p50 (µs)"], ss["p90 (µs)"], ss["early-stopping p90 (µs)"]) == ("5.525", "8.998", "9.025")
    assert ss["median window throughput (inf/s)"] == "142,974.8" and ss["threads"] == "1"
    assert ss["accuracy"] == "top1 98.3333 vs target 90 (pass)" and ss["valid"] == "INVALID"
    assert off["offline throughput (samples/s)"] == "249,777.7" and off["p50 (µs)"] == "-"
    assert off["runtime"] == "ai-edge-litert 2.3.0" and off["precision"] == "int8"
    assert serial["valid"] == "VALID" and serial["threads"] == "-" and serial["p50 (µs)"] == "-"
    assert serial["median window throughput (inf/s)"] == "167.9"


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
    assert {"01_onnxruntime-cpu_single-stream_latency.png", "02_tflite-cpu_offline_offline.png",
            "03_serial_single-stream_windows.png", "digits01_comparison.png", "kws01_accuracy.png"} <= names
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png", n) for n in names)  # hostile name slugged
    for f in files:
        assert decode_png(f.read_bytes())[0] >= 200


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
