"""Accuracy pass: every sample once in label-file order, scored against the target, and logged in
LoadGen's accuracy-log form."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from fakes import SCORES, FakeSUT
from tinyharness.dataset import Dataset
from tinyharness.errors import RunFailed
from tinyharness.progress import Progress
from tinyharness.qsl import QSL, Seeds
from tinyharness.results import ReasonCode
from tinyharness.scenarios.accuracy import AccuracyPass, AccuracyRun, accuracy_log, run_accuracy, score
from tinyharness.scenarios.base import Context
from tinyharness.schemas import errors
from tinyharness.settings import TestSettings
from tinyharness.sut import TensorSpec

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
    bench = types.SimpleNamespace(id="acc", metric="top1", target=90.0, labels=tuple("0123456789"))
    ctx = Context(settings, Seeds.from_seed(0), bench, Progress(False), lambda k, v: events.append(k))
    measured = AccuracyPass(ctx).run(FakeSUT(), qsl)
    assert measured.accuracy.value == 70.0 and len(measured.accuracy_log) == 10
    # the classification defaults beside the rule set's metric; 7 of 10 on the diagonal
    metrics = measured.accuracy.metrics
    assert list(metrics) == ["top1", "top5", "macro_f1", "confusion"] and metrics["top1"].value == 70.0
    assert sum(map(sum, metrics["confusion"].detail["matrix"])) == 10
    assert [r.code for r in measured.reasons] == [ReasonCode.ACCURACY_TARGET]
    assert measured.latency_us is None and measured.windows is None
    assert events == ["generic_message", "accuracy_result"]


# -- every output checked against the SUT's output spec (#3) ----------------------------------------

class Returns(FakeSUT):
    """A FakeSUT whose output for one sample (``bad``, a QSL index) is ``value``; for the others it
    is ``good(y)`` (default: the right output)."""

    def __init__(self, bad: int, value, good=None, spec=SCORES) -> None:
        super().__init__()
        self.bad, self.value, self.good, self.spec, self.calls = bad, value, good, spec, 0

    def output_spec(self) -> TensorSpec:
        return self.spec

    def output(self):
        self.calls += 1
        if self.calls - 1 == self.bad:
            return self.value() if callable(self.value) else self.value
        return self.good(self.y) if self.good else self.y.copy()


NAN_AT_4 = np.array([[0, 0, 0, 0, np.nan, 0, 0, 0, 0, 1]], dtype=np.float32)


@pytest.mark.parametrize(("value", "came"), [
    (np.zeros(17, np.float32), "17 values"),  # the issue's case: 17 values for a 12-value output
    (np.zeros((1, 9), np.float32), "9 values"),  # short
    (np.zeros((2, 5), np.float32), "an output of shape [2, 5]"),  # 2-D, the right count
    (NAN_AT_4, "a non-finite value (nan at position 4)"),
    (np.full((1, 10), np.inf, np.float32), "a non-finite value (inf at position 0)"),
    (np.array(["cat"] * 10), "strings"),
    (np.array([object()] * 10), "object values (not numbers)"),
    (np.zeros((1, 10), np.float64), "float64 values"),  # not the spec's dtype
    (None, "None"),
    ([[1.0, 2.0], [3.0]], "a list that is not an array"),  # ragged
])
def test_an_output_that_does_not_match_the_spec_fails_the_run_naming_the_sample(qsl, value, came):
    sut = Returns(3, value)
    with pytest.raises(RunFailed) as info:
        run_accuracy(sut, qsl)
    assert str(info.value) == (f"SUT 'fake' returned {came} for sample 3; its output spec is "
                               "float32[1, 10] (output() must return one output of that dtype and "
                               "shape, all finite)")
    assert sut.calls == 4  # stopped at the bad sample


def test_the_issue_case_a_12_class_output_given_17_values(qsl):
    spec = TensorSpec("scores", (1, 12), "float32")
    good = lambda y: np.concatenate([y, np.zeros((1, 2), np.float32)], axis=1)  # noqa: E731
    with pytest.raises(RunFailed, match=r"returned 17 values for sample 3; its output spec is "
                                        r"float32\[1, 12\]"):
        run_accuracy(Returns(3, np.zeros(17, np.float32), good, spec), qsl)


@pytest.mark.parametrize("reshape", [(10,), (1, 10), (10, 1), (1, 1, 10)])
def test_batch_1_dimensions_may_be_present_or_not(qsl, reshape):
    # scoring reads each output flat: [1, 10], [10] and [10, 1] hold the same ten values
    sut = Returns(-1, None, good=lambda y: y.reshape(reshape).copy())
    run = run_accuracy(sut, qsl)
    assert run.outputs.shape == (10, 10) and run.outputs.dtype == np.float32
    assert run.outputs.argmax(axis=1).tolist() == list(range(10))


def test_quantized_integer_outputs_need_no_finiteness_and_keep_their_dtype(qsl):
    spec = TensorSpec("scores", (1, 10), "int8", 0.00390625, -128)
    sut = Returns(-1, None, good=lambda y: (y * 127).astype(np.int8), spec=spec)
    run = run_accuracy(sut, qsl)
    assert run.outputs.dtype == np.int8 and run.outputs.argmax(axis=1).tolist() == list(range(10))
    with pytest.raises(RunFailed, match="returned float32 values for sample 0"):
        run_accuracy(Returns(0, np.zeros((1, 10), np.float32), spec=spec), qsl)


def test_a_sut_that_hands_out_its_own_buffer_still_gets_every_output_scored(qsl):
    # output() returning the SUT's buffer, not a copy: rows that kept views all read the last output
    sut = Returns(-1, None, good=lambda y: y)
    run = run_accuracy(sut, qsl)
    assert run.outputs.argmax(axis=1).tolist() == list(range(10))
    assert score(run, "top1", 50.0, SCORES).value == 70.0


def test_a_spec_that_declares_nothing_holds_later_outputs_to_the_first(qsl):
    undeclared = TensorSpec("any", (), "")
    run = run_accuracy(Returns(-1, None, spec=undeclared), qsl)
    assert run.outputs.shape == (10, 10)
    with pytest.raises(RunFailed, match=r"returned 11 values for sample 5; its output spec is any\[\]"):
        run_accuracy(Returns(5, np.zeros(11, np.float32), spec=undeclared), qsl)


@pytest.mark.parametrize("spec", [TensorSpec("y", (1, 0), "float32"), TensorSpec("y", (1, -1), "float32"),
                                  TensorSpec("y", (1, 10), "str"), TensorSpec("y", (1, 10), "nonsense")])
def test_a_spec_that_cannot_be_checked_fails_before_any_inference(qsl, spec):
    sut = Returns(-1, None, spec=spec)
    with pytest.raises(RunFailed, match="SUT 'fake' declares output"):
        run_accuracy(sut, qsl)
    assert sut.infer_calls == 0


def test_the_accuracy_pass_fails_on_a_nan_output_instead_of_scoring_it(qsl):
    settings = TestSettings("single-stream", "accuracy", 0.0, 1, 5, 0.01, 0)
    bench = types.SimpleNamespace(id="acc", metric="top1", target=0.0, labels=tuple("0123456789"))
    ctx = Context(settings, Seeds.from_seed(0), bench, Progress(False), lambda k, v: None)
    with pytest.raises(RunFailed, match="non-finite value"):
        AccuracyPass(ctx).run(Returns(9, NAN_AT_4), qsl)


def test_an_ad_output_that_cannot_reconstruct_its_window_fails_the_run(qsl):
    # each window of this dataset has 2 values; the SUT's 10-value output (its spec's) cannot be
    # compared with it
    with pytest.raises(RunFailed, match=r"^SUT 'fake' returned 10 values for window 0, which has 2; "
                                        r"an AD output must reconstruct its input window"):
        run_accuracy(FakeSUT(), qsl, score_with=SCORES)
