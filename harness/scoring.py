"""Quality metrics: top-1 for the classifiers, anomaly score and ROC AUC for AD (MLPerf Tiny's).

AD: per-window score = mean over the window of (dequantized output - float input)^2, with the
original float input (not its quantized copy); per-file score = mean of its windows' scores;
AUC = scikit-learn's roc_auc_score over files, anomaly (label 1) as the positive class.
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


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        raise ValueError("AUC needs both normal and anomalous files")
    return float(roc_auc_score(labels, scores))
