"""Quality metrics: top-1 for the classifiers, anomaly score and ROC AUC for AD (MLPerf Tiny's).

AD: per-window score = mean over the window of (dequantized output - float input)^2, with the
original float input (not its quantized copy); per-file score = mean of its windows' scores;
AUC over files, anomaly (label 1) as the positive class: the Mann-Whitney U statistic over
n_pos x n_neg, tied scores sharing their average rank (a tie counts one half), which is exactly the
area under the ROC curve that scikit-learn's roc_auc_score computes (tests/harness/test_scoring.py
checks it against scikit-learn where that is installed; the harness does not need it).
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


def window_score(output: np.ndarray, raw_input: np.ndarray, spec: TensorSpec) -> float:
    """Mean squared reconstruction error of one AD window."""
    y = dequantize(np.asarray(output).reshape(-1), spec)
    x = np.asarray(raw_input, dtype=np.float64).reshape(-1)
    return float(np.mean((y - x) ** 2))


def group_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per group id 0..G-1 (AD: the windows of each file)."""
    sums = np.bincount(groups, weights=values)
    return sums / np.bincount(groups)


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
