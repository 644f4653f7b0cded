"""Accuracy pass: every sample once in label-file order, scored against the target, and logged in
LoadGen's accuracy-log form."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from fakes import SCORES, FakeSUT
from tinyharness.dataset import Dataset
from tinyharness.progress import Progress
from tinyharness.qsl import QSL, Seeds
from tinyharness.results import ReasonCode
from tinyharness.scenarios.accuracy import AccuracyPass, AccuracyRun, accuracy_log, run_accuracy, score
from tinyharness.scenarios.base import Context
from tinyharness.schemas import errors
from tinyharness.settings import TestSettings

ONE_HOT_0 = "0000803F" + "00000000" * 9  # float32 1.0 little-endian, then nine zeros


@pytest.fixture
def qsl(tmp_path: Path) -> QSL:
    """Ten samples [i, 0]; FakeSUT predicts sum % 10 = i; the labels of samples 7, 8, 9 are off by one."""
    folder = tmp_path / "acc"
    folder.mkdir()
    rows = []
    for i in range(10):
        (folder / f"s{i}.bin").write_bytes(bytes([i, 0]))
        rows.append(f"s{i}.bin,10,{i if i < 7 else (i + 1) % 10}\n")
    (folder / "y_labels.csv").write_text("".join(rows))
    return QSL(Dataset.open(folder, "acc", "y_labels.csv", (2,), "uint8"), "identity", FakeSUT().input_spec())


def test_every_sample_once_in_label_file_order(qsl):
    sut = FakeSUT()
    run = run_accuracy(sut, qsl)
    assert run.indices.tolist() == list(range(10)) and sut.infer_calls == 10
    assert run.outputs.argmax(axis=1).tolist() == list(range(10))
    assert run.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 9, 0]
    assert run.groups.tolist() == list(range(10)) and run.scores is None
    assert qsl.loaded == {}  # one sample at a time, none left loaded


def test_top1_score_against_the_target(qsl):
    run = run_accuracy(FakeSUT(), qsl)
    passed = score(run, "top1", 50.0, SCORES)
    assert (passed.value, passed.passed, passed.count, passed.files) == (70.0, True, 10, 10)
    assert passed.reasons() == []
    failed = score(run, "top1", 90.0, SCORES)
    assert not failed.passed
    assert [(r.code, r.message) for r in failed.reasons()] == [
        (ReasonCode.ACCURACY_TARGET, "accuracy 70.00 % top-1 is below the target 90")]


def test_auc_over_file_means_and_undefined_over_one_class():
    # files 0, 1 normal, 2, 3 anomalous; window means 1.5, 3.5, 2.5, 5: one pair misordered -> 3/4
    run = AccuracyRun(np.arange(8), np.zeros((8, 1)), np.array([0, 0, 0, 0, 1, 1, 1, 1]),
                      np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.array([1, 2, 3, 4, 2, 3, 5, 5.0]))
    auc = score(run, "auc", 0.7, SCORES)
    assert (auc.value, auc.passed, auc.files, auc.shown) == (0.75, True, 4, "AUC 0.7500")
    one_class = AccuracyRun(run.indices, run.outputs, np.zeros(8, int), run.groups, run.scores)
    undefined = score(one_class, "auc", 0.7, SCORES)
    assert undefined.value is None and not undefined.passed
    assert [r.code for r in undefined.reasons()] == [ReasonCode.ACCURACY_UNDEFINED]


def test_accuracy_log_is_loadgens_form(qsl):
    run = run_accuracy(FakeSUT(), qsl)
    log = accuracy_log(run, qsl)
    assert errors(log, "accuracy") == []
    assert log[0] == {"seq_id": 0, "qsl_idx": 0, "data": ONE_HOT_0, "file": "s0.bin", "label": 0,
                      "prediction": 0}
    assert [e["prediction"] for e in log] == list(range(10))


def test_accuracy_pass_returns_the_section_the_reasons_and_the_log(qsl):
    events = []
    settings = TestSettings("single-stream", "accuracy", 0.0, 1, 5, 0.01, 0)
    bench = types.SimpleNamespace(metric="top1", target=90.0)
    ctx = Context(settings, Seeds.from_seed(0), bench, Progress(False), lambda k, v: events.append(k))
    measured = AccuracyPass(ctx).run(FakeSUT(), qsl)
    assert measured.accuracy.value == 70.0 and len(measured.accuracy_log) == 10
    assert [r.code for r in measured.reasons] == [ReasonCode.ACCURACY_TARGET]
    assert measured.latency_us is None and measured.windows is None
    assert events == ["generic_message", "accuracy_result"]
