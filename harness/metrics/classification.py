"""The built-in classification metrics: top-1, top-5, macro F1, the confusion matrix and the
runner's one-vs-rest AUC. Each wraps a formula of :mod:`tinyharness.scoring`; percentages are
0..100 (as top-1 everywhere in tinyharness), the AUC a fraction 0..1."""

from __future__ import annotations

import numpy as np

from .. import scoring
from .base import CLASSIFICATION, Metric, MetricValue


def _rows(outputs: np.ndarray) -> np.ndarray:
    return np.asarray(outputs).reshape(len(outputs), -1)


def _top1(outputs, labels, **_) -> MetricValue:
    return MetricValue(scoring.top1_percent(outputs, labels))


def _top5(outputs, labels, **_) -> MetricValue:
    classes = _rows(outputs).shape[1]
    if classes <= 5:  # every label is in the top 5: the figure would say nothing
        return MetricValue(None, f"top-5 needs more than 5 classes; the outputs have {classes}")
    return MetricValue(scoring.top_k_percent(outputs, labels, 5))


def _matrix(outputs, labels) -> np.ndarray:
    rows = _rows(outputs)
    return scoring.confusion_matrix(labels, rows.argmax(axis=1), rows.shape[1])


def _names(classes: tuple[str, ...], count: int) -> list[str]:
    """The class names of ``count`` outputs: the benchmark's, else their indices."""
    return list(classes) if len(classes) == count else [str(k) for k in range(count)]


def _macro_f1(outputs, labels, *, classes=(), **_) -> MetricValue:
    matrix = _matrix(outputs, labels)
    f1 = scoring.per_class_f1(matrix)
    names = _names(classes, len(f1))
    detail = {"per_class": {n: (None if np.isnan(v) else round(float(v) * 100.0, 6))
                            for n, v in zip(names, f1)},
              "classes_scored": int(np.count_nonzero(~np.isnan(f1)))}
    try:
        return MetricValue(scoring.macro_f1(matrix) * 100.0, detail=detail)
    except ValueError as exc:
        return MetricValue(None, str(exc), detail)


def _confusion(outputs, labels, *, classes=(), **_) -> MetricValue:
    matrix = _matrix(outputs, labels)
    return MetricValue(None, "a matrix, not one number (see detail.matrix)",
                       {"labels": _names(classes, len(matrix)), "rows": "true label",
                        "columns": "predicted label", "matrix": matrix.tolist()})


def _auc_ovr(outputs, labels, *, spec, **_) -> MetricValue:
    try:  # the runner normalizes probabilities: the dequantized outputs, not int8 codes
        return MetricValue(scoring.multiclass_roc_auc(labels, scoring.dequantize(_rows(outputs), spec)))
    except ValueError as exc:
        return MetricValue(None, str(exc))


METRICS = (
    Metric("top1", "top-1 accuracy: the highest output is the label", CLASSIFICATION, True, _top1, "%"),
    Metric("top5", "top-5 accuracy: the label is among the five highest outputs (ties broken as "
           "argmax does, lower class first); undefined with 5 classes or fewer", CLASSIFICATION,
           True, _top5, "%"),
    Metric("macro_f1", "macro-averaged F1 over the classes that are a label or a prediction "
           "(scikit-learn's f1_score average='macro'); detail: each class's F1",
           CLASSIFICATION, True, _macro_f1, "%"),
    Metric("confusion", "the confusion matrix, rows the true label and columns the predicted one "
           "(detail only: value is null)", CLASSIFICATION, True, _confusion),
    Metric("auc_ovr", "one-vs-rest macro ROC AUC of the dequantized outputs, each row normalized "
           "to sum 1: the AUC the MLCommons runner prints beside top-1", CLASSIFICATION, True,
           _auc_ovr),
)
