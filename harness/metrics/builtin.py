"""The built-in quality metrics, registered through the same hook as a third-party plugin's.

The entry point ``metrics = "tinyharness.metrics.builtin"`` names this module; it stays light
(``tinyharness --help`` imports it): the metrics themselves, and numpy, are imported when
``register_metrics`` is called. :func:`tinyharness.plugins.metric_registry` registers it also
where that entry point is not loaded: the accuracy pass always reports the built-ins.
"""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_metrics(register) -> None:
    from . import anomaly, classification

    for metric in (*classification.METRICS, *anomaly.METRICS):
        register(metric)
