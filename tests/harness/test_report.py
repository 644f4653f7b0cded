"""``tinyharness report``: a self-contained, escaped HTML page whose embedded plots decode."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tinyharness.progress import Progress
from tinyharness.report import make_report
from tinyharness.runner import Run, RunRequest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('x')</script> $\\notamacro$ & co"


def real_run(root: Path, sut: str, scenario: str = "single-stream") -> Path:
    request = RunRequest(sut=sut, scenario=scenario, output=root, min_duration_s=0.2)
    return Run(request).execute(Progress(False))[1].path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A folder of real runs (null, onnxruntime-cpu, null offline) plus a null run whose summary
    carries markup in every string a report shows."""
    root = tmp_path_factory.mktemp("runs")
    null = real_run(root, "null")
    real_run(root, "onnxruntime-cpu")
    real_run(root, "null", "offline")
    hostile = shutil.copytree(null, root / "hostile")
    summary = json.loads((hostile / "summary.json").read_text())
    summary["sut"] = summary["system"]["runtime"] = summary["system"]["precision"] = HOSTILE
    summary["invalid_reasons"].append(HOSTILE)
    (hostile / "summary.json").write_text(json.dumps(summary))
    return root


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


def test_html_report(runs, tmp_path):
    out = tmp_path / "sub" / "report.html"
    assert make_report([runs], out) == [out]
    text = out.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert "script" not in page.tags and "<script>" not in text
    assert "&lt;script&gt;" in text and HOSTILE in "".join(page.text)  # shown, as text
    outside_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not {"link", "iframe", "object"} & set(page.tags) and "://" not in outside_images
    # Per run: latency (histogram + CDF) and windows for 3 single-stream runs, offline
    # completions for one; per benchmark: accuracy and the comparison across SUTs.
    assert len(page.images) == 3 * 2 + 1 + 2
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        height, width = decode_png(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert 200 <= height <= 400 and 500 <= width <= 1200, (height, width)
    for cell in ("digits01", "onnxruntime-cpu", "single-stream", "offline", "INVALID"):
        assert cell in page.text  # whole table cells
    assert "top1 10 vs target 90 (fail)" in page.text


def test_png_format_cli(runs, tmp_path):
    out = tmp_path / "pngs"
    proc = subprocess.run([sys.executable, "-m", "tinyharness.cli", "report", str(runs), "--format",
                           "png", "--output", str(out)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert len(files) == 9 and all(f.suffix == ".png" for f in files)
    assert any("comparison" in f.name for f in files) and any("accuracy" in f.name for f in files)
    for f in files:
        assert decode_png(f.read_bytes())[0] >= 200
