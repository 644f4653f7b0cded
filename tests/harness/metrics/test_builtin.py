"""The built-in quality metrics (tinyharness.metrics.classification / .anomaly) on small cases
worked out by hand, and against scikit-learn (the oracle, a dev dependency) on random ones; and
the accuracy pass's measure(): what it records when a metric misbehaves."""

from __future__ import annotations

import numpy as np
import pytest

from tinyharness import scoring
from tinyharness.metrics import Metric, MetricValue
from tinyharness.metrics.anomaly import METRICS as ANOMALY_METRICS
from tinyharness.metrics.classification import METRICS as CLASSIFICATION_METRICS
from tinyharness.scenarios.accuracy import AccuracyRun, measure
from tinyharness.sut import TensorSpec

BUILTIN = {m.name: m for m in (*CLASSIFICATION_METRICS, *ANOMALY_METRICS)}
FLOAT6 = TensorSpec("out", (1, 6), "float32")
NAMES6 = ("a", "b", "c", "d", "e", "f")


def compute(name: str, outputs, labels, spec=FLOAT6, groups=None, classes=NAMES6) -> MetricValue:
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    return BUILTIN[name].compute(outputs, labels, spec=spec, groups=groups, classes=classes)


# Four files, six classes. Row r's outputs rank the classes (highest first):
#   row 0: 0 > 1 > 2 > 3 > 4 > 5, label 0 -> rank 0: top-1 and top-5
#   row 1: 5 > 4 > 3 > 2 > 1 > 0, label 1 -> rank 4: top-5 only
#   row 2: 5 > 4 > 3 > 2 > 1 > 0, label 0 -> rank 5: neither
#   row 3: 2 > ...              , label 2 -> rank 0: top-1 and top-5
# top-1 = 2/4 = 50 %, top-5 = 3/4 = 75 %.
OUTPUTS = np.array([[6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6],
                    [0, 0, 9, 0, 0, 0]], dtype=np.float32)
LABELS = np.array([0, 1, 0, 2])


def test_top1_and_top5_by_hand():
    assert compute("top1", OUTPUTS, LABELS).value == 50.0
    assert compute("top5", OUTPUTS, LABELS).value == 75.0


def test_top5_breaks_ties_as_argmax_does_so_top_k_1_is_top1():
    # every output equal: class k's rank is k (lower classes first, as argmax picks class 0)
    flat = np.zeros((6, 6), dtype=np.int8)
    labels = np.arange(6)
    assert scoring.top_k_percent(flat, labels, 5) == pytest.approx(500 / 6)  # classes 0..4 of 6
    top1 = scoring.top1_percent(flat, labels)
    assert scoring.top_k_percent(flat, labels, 1) == top1 == pytest.approx(100 / 6)


def test_top5_is_undefined_with_five_classes_or_fewer():
    got = compute("top5", np.eye(5), np.arange(5))
    assert got.value is None and got.reason == "top-5 needs more than 5 classes; the outputs have 5"


# labels      [0, 0, 1, 1, 2], predictions [0, 1, 1, 1, 0], four classes (class 3 never appears):
#   confusion (rows true, columns predicted) = [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
#   F1 = 2TP / (2TP + FP + FN): class 0: 2 / (2 + 1 + 1) = 0.5; class 1: 4 / (4 + 1 + 0) = 0.8;
#   class 2: 0 / (0 + 0 + 1) = 0; class 3: neither a label nor a prediction, left out.
#   macro F1 = (0.5 + 0.8 + 0) / 3 = 43.333... %
F1_LABELS = np.array([0, 0, 1, 1, 2])
F1_OUTPUTS = np.eye(4, dtype=np.float32)[[0, 1, 1, 1, 0]]
F1_NAMES = ("w", "x", "y", "z")


def test_macro_f1_by_hand_leaves_out_a_class_that_never_appears():
    got = compute("macro_f1", F1_OUTPUTS, F1_LABELS, classes=F1_NAMES)
    assert got.value == pytest.approx(130 / 3)
    assert got.detail["per_class"] == {"w": 50.0, "x": 80.0, "y": 0.0, "z": None}
    assert got.detail["classes_scored"] == 3


def test_confusion_by_hand_rows_true_columns_predicted():
    got = compute("confusion", F1_OUTPUTS, F1_LABELS, classes=F1_NAMES)
    assert got.value is None and "matrix" in got.reason  # a matrix, no single value: documented
    assert got.detail == {"labels": ["w", "x", "y", "z"], "rows": "true label", "columns": "predicted label",
                          "matrix": [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]}


def test_confusion_names_classes_by_index_when_the_names_do_not_fit():
    got = compute("confusion", F1_OUTPUTS, F1_LABELS, classes=("only", "two"))
    assert got.detail["labels"] == ["0", "1", "2", "3"]


def test_a_label_outside_the_outputs_is_a_value_error_not_a_wrong_matrix():
    with pytest.raises(ValueError, match="label outside the 4 classes"):
        scoring.confusion_matrix([0, 4], [0, 1], 4)


# Four files of windows: file 0 normal (0.1, 0.3: mean 0.2), file 1 anomalous (0.5, 0.7: 0.6),
# file 2 normal (0.4), file 3 anomalous (0.3). Anomalous above normal in 3 of the 4 pairs
# (0.6 > 0.2, 0.6 > 0.4, 0.3 > 0.2; 0.3 < 0.4): AUC 0.75.
def test_ad_auc_by_hand_over_files_from_window_means():
    scores = np.array([0.1, 0.3, 0.5, 0.7, 0.4, 0.3])
    labels = np.array([0, 0, 1, 1, 0, 1])
    groups = np.array([0, 0, 1, 1, 2, 3])
    got = compute("auc", scores, labels, groups=groups, spec=TensorSpec("out", (1, 640), "float32"))
    assert got.value == 0.75 and got.detail == {"files": 4}


def test_ad_auc_over_one_class_is_undefined_with_the_reason():
    got = compute("auc", np.array([0.1, 0.2]), np.array([0, 0]), groups=np.array([0, 1]))
    assert got.value is None and got.reason == "AUC needs both normal and anomalous files"


def test_auc_ovr_reads_dequantized_outputs():
    # int8 codes -128..127 of a softmax (scale 1/256, zero point -128): normalized as codes, rows
    # with negative sums would invert the ranking; dequantized they are probabilities.
    spec = TensorSpec("out", (1, 3), "int8", scale=1 / 256, zero_point=-128)
    codes = np.array([[100, -120, -120], [-120, 90, -100], [-128, -110, 120], [80, -100, -110]],
                     dtype=np.int8)
    labels = np.array([0, 1, 2, 0])
    expected = scoring.multiclass_roc_auc(labels, scoring.dequantize(codes, spec))
    assert compute("auc_ovr", codes, labels, spec=spec, classes=("a", "b", "c")).value == expected == 1.0


# -- against scikit-learn --------------------------------------------------------------------------
sklearn = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed "
                              "(pip install 'tinyharness[dev]')")


@pytest.mark.parametrize("seed", range(25))
def test_against_scikit_learn_on_random_classifiers(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(6, 13))
    n = int(rng.integers(5, 200))
    labels = rng.integers(0, classes, n)
    outputs = rng.random((n, classes)).astype(np.float32)  # continuous: no ties
    outputs[np.arange(n), labels] += rng.random(n).astype(np.float32)  # better than chance
    names = tuple(str(k) for k in range(classes))
    predictions = outputs.argmax(axis=1)
    matrix = compute("confusion", outputs, labels, classes=names).detail["matrix"]
    assert matrix == sklearn.confusion_matrix(labels, predictions, labels=range(classes)).tolist()
    assert compute("macro_f1", outputs, labels, classes=names).value == pytest.approx(
        100 * sklearn.f1_score(labels, predictions, average="macro"), abs=1e-9)
    assert compute("top5", outputs, labels, classes=names).value == pytest.approx(
        100 * sklearn.top_k_accuracy_score(labels, outputs, k=5, labels=range(classes)), abs=1e-9)
    assert compute("top1", outputs, labels, classes=names).value == pytest.approx(
        100 * sklearn.accuracy_score(labels, predictions), abs=1e-9)


# -- measure(): the accuracy pass's record of each metric ----------------------------------------
def _run() -> AccuracyRun:
    return AccuracyRun(np.arange(5), F1_OUTPUTS.copy(), F1_LABELS.copy(), np.arange(5))


def _metric(name, function) -> Metric:
    return Metric(name, "a test metric", "classification", True, function)


def test_measure_records_each_metric_in_order_rounded():
    got = measure([BUILTIN["macro_f1"], BUILTIN["top1"]], _run(), "classification",
                  TensorSpec("out", (1, 4), "float32"), F1_NAMES)
    assert list(got) == ["macro_f1", "top1"]
    assert got["macro_f1"].value == 43.333333 and got["macro_f1"].unit == "%"  # 130/3, 6 digits
    assert got["top1"].value == 60.0 and got["top1"].reason is None  # 3 of 5 on the diagonal


@pytest.mark.parametrize("function, problem", [
    (lambda *a, **k: 1 / 0, "raised ZeroDivisionError: division by zero"),
    (lambda *a, **k: 0.5, "returned a float, not a MetricValue"),
    (lambda *a, **k: MetricValue(float("nan")), "returned the value nan, not a finite number or None"),
    (lambda *a, **k: MetricValue(True), "returned the value True, not a finite number or None"),
    (lambda *a, **k: MetricValue(1.0, detail=[1, 2]), "returned a detail of type list, not a dict"),
    (lambda *a, **k: MetricValue(None, reason=404), "returned a reason of type int, not a string"),
])
def test_a_misbehaving_metric_is_recorded_undefined_with_why_and_the_run_goes_on(function, problem):
    warned = []
    got = measure([_metric("broken", function), BUILTIN["top1"]], _run(), "classification",
                  TensorSpec("out", (1, 4), "float32"), F1_NAMES, warned.append)
    assert got["broken"].value is None and got["broken"].reason == problem
    assert warned == [f"metric 'broken' {problem}"]
    assert got["top1"].value == 60.0  # the next metric is computed all the same


def test_a_metric_cannot_change_the_outputs_the_next_one_reads():
    def scribble(outputs, labels, **_):
        outputs[:] = 0
        return MetricValue(1.0)

    run = _run()
    got = measure([_metric("scribble", scribble), BUILTIN["top1"]], run, "classification",
                  TensorSpec("out", (1, 4), "float32"), F1_NAMES)
    assert got["scribble"].reason.startswith("raised ValueError: assignment destination is read-only")
    assert got["top1"].value == 60.0 and run.outputs.any()


def test_details_become_json_numbers_and_nan_null():
    def numpy_detail(*_, **__):
        return MetricValue(np.float32(0.5), detail={"per_class": np.array([0.25, np.nan]), "n": np.int64(3)})

    got = measure([_metric("numpyish", numpy_detail)], _run(), "classification",
                  TensorSpec("out", (1, 4), "float32"), F1_NAMES)["numpyish"]
    assert got.value == 0.5 and type(got.value) is float
    assert got.detail == {"per_class": [0.25, None], "n": 3} and type(got.detail["n"]) is int
