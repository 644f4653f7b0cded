"""End to end: a digits01 accuracy run on onnxruntime-cpu reports the classification metrics in
summary.json (schema-valid, read back), summary.txt (the confusion matrix as a table) and the
report (a confusion heatmap); a kws01 run (slow, shared MLPerf Tiny data) reports its own.

The expected figures: digits01's float model gets 354 of its 360 files right (top-1 98.33 %, the
reference figure); macro F1 and top-5 are checked against scikit-learn over the run's own
accuracy.json."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tinyharness.progress import Progress
from tinyharness.results.summary import RunSummary
from tinyharness.runner import Run, RunRequest
from tinyharness.schemas import errors

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="onnxruntime not installed (pip install 'tinyharness[onnxruntime]')")


def accuracy_run(tmp_path, benchmark: str, **request):
    run = Run(RunRequest(benchmark=benchmark, sut="onnxruntime-cpu", mode="accuracy",
                         output=tmp_path, **request))
    summary, run_dir = run.execute(Progress(enabled=False))
    return summary, run_dir.path


def outputs_of(run_dir) -> tuple[np.ndarray, np.ndarray]:
    """(labels, outputs) from accuracy.json: each response's data is its raw output bytes."""
    log = json.loads((run_dir / "accuracy.json").read_text())
    dtype = np.dtype(json.loads((run_dir / "summary.json").read_text())["accuracy"]["output"]["dtype"])
    rows = [np.frombuffer(bytes.fromhex(e["data"]), dtype=dtype.newbyteorder("<")) for e in log]
    return np.array([e["label"] for e in log]), np.array(rows)


@pytest.fixture(scope="module")
def digits01(tmp_path_factory):
    return accuracy_run(tmp_path_factory.mktemp("digits01"), "digits01")


def test_digits01_summary_json_has_top1_top5_macro_f1_and_the_confusion_matrix(digits01):
    _, run_dir = digits01
    document = json.loads((run_dir / "summary.json").read_text())
    assert errors(document, "summary") == []
    acc = document["accuracy"]
    metrics = acc["metrics"]
    assert list(metrics) == ["top1", "top5", "macro_f1", "confusion"]
    assert round(acc["value"], 2) == round(metrics["top1"]["value"], 2) == 98.33  # the reference figure
    matrix = np.array(metrics["confusion"]["detail"]["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 360 and np.trace(matrix) == 354
    assert metrics["confusion"]["detail"]["labels"] == [str(k) for k in range(10)]
    assert matrix.sum(axis=1).tolist() == np.bincount(outputs_of(run_dir)[0], minlength=10).tolist()


def test_digits01_figures_agree_with_scikit_learn(digits01):
    sklearn = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    _, run_dir = digits01
    labels, outputs = outputs_of(run_dir)
    predictions = outputs.argmax(axis=1)
    metrics = json.loads((run_dir / "summary.json").read_text())["accuracy"]["metrics"]
    assert metrics["macro_f1"]["value"] == pytest.approx(
        100 * sklearn.f1_score(labels, predictions, average="macro"), abs=1e-6)
    assert metrics["top5"]["value"] == pytest.approx(
        100 * sklearn.top_k_accuracy_score(labels, outputs, k=5, labels=range(10)), abs=1e-6)
    assert metrics["confusion"]["detail"]["matrix"] == sklearn.confusion_matrix(labels, predictions).tolist()


def test_digits01_summary_reads_back_and_shows_the_metrics(digits01):
    summary, run_dir = digits01
    again = RunSummary.from_dict(json.loads((run_dir / "summary.json").read_text()))
    assert again.accuracy == summary.accuracy
    text = (run_dir / "summary.txt").read_text()
    assert f"top5      : {summary.accuracy.metrics['top5'].value:.2f} %\n" in text
    assert "macro_f1  : " in text and "true \\ predicted" in text
    table = text.split("true \\ predicted", 1)[1].splitlines()
    assert len([line for line in table[1:11] if line.strip()]) == 10  # one row per class


def test_a_summary_without_metrics_still_reads(digits01):
    _, run_dir = digits01
    document = json.loads((run_dir / "summary.json").read_text())
    del document["accuracy"]["metrics"], document["settings"]["metrics"]  # as written before them
    assert errors(document, "summary") == []
    assert RunSummary.from_dict(document).accuracy.metrics == {}


def test_the_report_draws_the_confusion_matrix(digits01, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (pip install 'tinyharness[report]')")
    from tinyharness.report import make_report

    _, run_dir = digits01
    written = make_report([run_dir], tmp_path / "png", fmt="png")
    confusion = [p for p in written if p.name.endswith("_confusion.png")]
    assert len(confusion) == 1 and confusion[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = make_report([run_dir], tmp_path / "report.html")[0].read_text()
    assert 'alt="01_digits01_onnxruntime-cpu_single-stream_confusion"' in page
    assert "Quality metrics: top1 98.33 %; top5 " in page


@pytest.mark.slow
def test_kws01_reports_its_metrics(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYHARNESS_MODEL_MIRROR", f"{shared_data / 'models'}:{shared_data / 'models_onnx'}")
    summary, run_dir = accuracy_run(tmp_path, "kws01", dataset=shared_data / "datasets",
                                    metrics=("auc_ovr",))
    metrics = summary.accuracy.metrics
    assert list(metrics) == ["top1", "top5", "macro_f1", "confusion", "auc_ovr"]
    assert metrics["top1"].value == summary.accuracy.value == 90.2  # MLPerf Tiny's reference int8 model
    matrix = np.array(metrics["confusion"].detail["matrix"])
    assert matrix.shape == (12, 12) and matrix.sum() == 1000 and np.trace(matrix) == 902
    assert metrics["confusion"].detail["labels"][-2:] == ["silence", "unknown"]
    assert metrics["top5"].value > metrics["top1"].value
    sklearn = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    labels, outputs = outputs_of(run_dir)
    assert metrics["macro_f1"].value == pytest.approx(
        100 * sklearn.f1_score(labels, outputs.argmax(axis=1), average="macro"), abs=1e-6)
    assert "unknown" in (run_dir / "summary.txt").read_text().split("true \\ predicted", 1)[1]
