"""The built-in anomaly-detection metric: MLPerf Tiny's ROC AUC over files (ad01's quality metric)."""

from __future__ import annotations

from .. import scoring
from .base import ANOMALY, Metric, MetricValue


def _auc(outputs, labels, *, groups, **_) -> MetricValue:
    try:
        return MetricValue(scoring.file_auc(labels, outputs, groups),
                           detail={"files": int(groups.max()) + 1 if len(groups) else 0})
    except ValueError as exc:  # one class of file only: the AUC does not exist
        return MetricValue(None, str(exc))


METRICS = (
    Metric("auc", "ROC AUC over files, each scored by its windows' mean reconstruction error, "
           "anomalous files the positive class (exact rank form, ties counting one half)",
           ANOMALY, True, _auc),
)
