"""Quality metrics as plugins: what the accuracy pass reports beside the rule set's own metric.

The rule set's quality metric (``rules/benchmarks/*.json`` ``quality``: top-1 or AUC) alone
decides VALID; the metrics here are reported in summary.json's ``accuracy.metrics`` and in
summary.txt. Plugins add metrics through the ``register_metrics`` hook
(:mod:`tinyharness.hookspecs`); :mod:`.builtin` registers top1, top5, macro_f1, confusion,
auc_ovr (classification) and auc (anomaly) the same way, and ``evaluate:PATH``
(:mod:`.evaluate_adapter`) wraps a local Hugging Face Evaluate module.
"""

from .base import ANOMALY, CLASSIFICATION, KINDS, Metric, MetricValue

__all__ = ["ANOMALY", "CLASSIFICATION", "KINDS", "Metric", "MetricValue"]
