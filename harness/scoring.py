"""Quality metrics: top-1 for the classifiers, anomaly score and ROC AUC for AD (MLPerf Tiny's).

AD: per-window score = mean over the window of (dequantized output - float input)^2, with the
original float input (not its quantized copy); per-file score = mean of its windows' scores;
AUC over files, anomaly (label 1) as the positive class: the Mann-Whitney U statistic over
n_pos x n_neg, tied scores sharing their average rank (a tie counts one half), which is exactly the
area under the ROC curve that scikit-learn's roc_auc_score computes (tests/harness/test_scoring.py
checks it against scikit-learn where that is installed; the harness does not need it).

Classifiers: beside top-1, the MLCommons runner prints a one-vs-rest AUC of the outputs
(:func:`multiclass_roc_auc`), which submission packages repeat. The further quality metrics of
:mod:`tinyharness.metrics` (top-k, the confusion matrix, macro F1) are computed here too: one home
for every formula, the metric plugins only wrap them.
"""

from __future__ import annotations

import numpy as np

from .sut import TensorSpec


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.quantized:
        return (values.astype(np.float64) - spec.zero_point) * spec.scale
    return values.astype(np.float64)


def top1_percent(outputs: np.ndarray, labels: np.ndarray) -> float:
    # argmax is unchanged by the (monotonic) dequantization, so raw outputs serve
    predictions = outputs.reshape(len(outputs), -1).argmax(axis=1)
    return float(np.mean(predictions == labels) * 100.0)


def top_k_percent(outputs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percent of rows whose label is among the ``k`` highest outputs. Ties rank as argmax breaks
    them (the lower class first), so ``k=1`` is :func:`top1_percent` exactly: a label's rank is the
    count of classes scoring above it plus those scoring the same at a lower index."""
    rows = np.asarray(outputs).reshape(len(outputs), -1)
    labels = np.asarray(labels).reshape(-1)
    own = rows[np.arange(len(rows)), labels][:, None]
    lower = np.arange(rows.shape[1])[None, :] < labels[:, None]
    rank = (rows > own).sum(axis=1) + ((rows == own) & lower).sum(axis=1)
    return float(np.mean(rank < k) * 100.0)


def confusion_matrix(labels, predictions, classes: int) -> np.ndarray:
    """``classes`` x ``classes`` counts, rows the true label, columns the predicted one (as
    scikit-learn's confusion_matrix with ``labels=range(classes)``). ValueError for a label or
    prediction outside 0..classes-1."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    for name, values in (("label", labels), ("prediction", predictions)):
        if len(values) and (values.min() < 0 or values.max() >= classes):
            raise ValueError(f"a {name} outside the {classes} classes 0..{classes - 1}")
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def per_class_f1(matrix: np.ndarray) -> np.ndarray:
    """Each class's F1 from a confusion matrix, ``2 TP / (2 TP + FP + FN)``; NaN for a class that
    is neither a label nor a prediction (it has no F1)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # (TP + FP) + (TP + FN)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def macro_f1(matrix: np.ndarray) -> float:
    """The mean F1 over the classes that are a label or a prediction at least once, as
    scikit-learn's ``f1_score(average="macro")`` (its labels: those present); a fraction 0..1.
    ValueError for an empty matrix."""
    f1 = per_class_f1(matrix)
    if np.isnan(f1).all():
        raise ValueError("F1 needs at least one labelled file")
    return float(np.nanmean(f1))


def window_score(output: np.ndarray, raw_input: np.ndarray, spec: TensorSpec) -> float:
    """Mean squared reconstruction error of one AD window."""
    y = dequantize(np.asarray(output).reshape(-1), spec)
    x = np.asarray(raw_input, dtype=np.float64).reshape(-1)
    return float(np.mean((y - x) ** 2))


def group_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per group id 0..G-1 (AD: the windows of each file)."""
    sums = np.bincount(groups, weights=values)
    return sums / np.bincount(groups)


def file_auc(window_labels, window_scores, groups) -> float:
    """AD's AUC: over files, each scored by the mean of its windows' scores and labelled by its
    windows' label (``groups``: the file id 0..F-1 of each window). ValueError as :func:`roc_auc`."""
    groups = np.asarray(groups).reshape(-1)
    file_labels = np.zeros(int(groups.max()) + 1, dtype=int)
    file_labels[groups] = np.asarray(window_labels).reshape(-1)
    return roc_auc(file_labels, group_means(np.asarray(window_scores, dtype=np.float64), groups))


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve of ``scores`` for the binary ``labels`` (the larger label, 1, is the
    positive class): P(a positive scores above a negative) + P(tie) / 2, from average ranks,
    ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``. Computed in integers (twice the rank sum)
    and divided once, so the only rounding is that division. ValueError for one class only, more
    than two classes, lengths that differ, or a score that is not a finite number."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"AUC needs one score per label ({len(labels)} labels, {len(scores)} scores)")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("AUC needs both normal and anomalous files")
    if len(classes) > 2:
        raise ValueError(f"AUC needs two classes, not {len(classes)}")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"AUC needs numeric scores, not {scores.dtype}")
    if scores.dtype.kind == "f" and not np.isfinite(scores).all():
        raise ValueError("AUC needs finite scores (a NaN or an infinity was given)")
    positive = labels == classes[1]
    # Average ranks of tied groups, doubled to stay integral: a group of c values after b smaller
    # ones holds ranks b+1 .. b+c, their mean doubled is 2b + c + 1.
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    before = np.concatenate(([0], np.cumsum(counts)[:-1]))
    twice_rank = (2 * before + counts + 1).astype(np.int64)
    n_pos = int(positive.sum())
    n_neg = len(labels) - n_pos
    twice_u = int(twice_rank[group.reshape(-1)[positive]].sum()) - n_pos * (n_pos + 1)
    return twice_u / (2 * n_pos * n_neg)


def multiclass_roc_auc(labels, outputs) -> float:
    """The AUC the MLCommons runner prints beside a classifier's top-1 (mlcommons/tiny
    benchmark/runner/main.py, ``summarize_result``): each file's output row divided by its sum
    (the runner's ``normalize_probabilities``, Python's ``sum`` left to right); then, with two
    columns, the binary AUC of column 1 with label 1 positive (``roc_auc_score(y, p[:, 1])``), and
    with more, one-vs-rest macro averaged: the mean over classes k of the binary AUC of column k
    with label k positive (``roc_auc_score(y, p, multi_class="ovr")``). Each binary AUC is
    :func:`roc_auc`'s exact rank form.

    ``labels``: one class 0..C-1 per file; ``outputs``: one row of C >= 2 values per file (one
    inference per file, as the runner's accuracy script runs). ValueError where the runner has no
    AUC either: a class without files (scikit-learn refuses it), a row that sums to 0, lengths that
    differ, a value that is not a finite number."""
    labels = np.asarray(labels).reshape(-1)
    outputs = np.asarray(outputs)
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise ValueError(f"a classifier's AUC needs one row of at least two outputs per file, "
                         f"not an array of shape {outputs.shape}")
    if outputs.shape[0] != len(labels):
        raise ValueError(f"AUC needs one output row per label ({len(labels)} labels, "
                         f"{outputs.shape[0]} rows)")
    if outputs.dtype.kind not in "biuf" or labels.dtype.kind not in "iu":
        raise ValueError(f"AUC needs integer labels and numeric outputs, not {labels.dtype} and "
                         f"{outputs.dtype}")
    outputs = outputs.astype(np.float64)
    if not np.isfinite(outputs).all():
        raise ValueError("AUC needs finite outputs (a NaN or an infinity was given)")
    classes = outputs.shape[1]
    present = np.unique(labels)
    if len(present) and (present[0] < 0 or present[-1] >= classes):
        raise ValueError(f"labels must be classes 0..{classes - 1} of the {classes} outputs")
    if len(present) != classes:
        raise ValueError(f"AUC over {classes} classes needs files of every class; the labels hold "
                         f"{len(present)}")
    totals = np.array([sum(row) for row in outputs.tolist()])  # as the runner sums: in order
    if (totals == 0).any():
        raise ValueError("a file's outputs sum to 0: they cannot be normalized to probabilities")
    rows = outputs / totals[:, None]
    if classes == 2:
        return roc_auc(labels, rows[:, 1])
    return float(np.mean([roc_auc(labels == k, rows[:, k]) for k in range(classes)]))
