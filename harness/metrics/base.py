"""What a quality metric is: :class:`Metric` (a name, what it applies to, a compute function) and
:class:`MetricValue` (what one computation gives).

Light on purpose (no numpy at import): the built-in metrics' entry point imports it, and
``tinyharness --help`` imports every entry point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np

    from ..benchmark import Benchmark
    from ..sut import TensorSpec

CLASSIFICATION, ANOMALY = "classification", "anomaly"
KINDS = (CLASSIFICATION, ANOMALY)
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a registered name: a summary.json key and a CLI word


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be registered (None: it can): ``:`` is kept for ``evaluate:PATH``."""
    if isinstance(name, str) and NAME.match(name):
        return None
    return f"metric name {name!r} must be lower case letters, digits and '_' (at most 40, a letter first)"


def kind_of(benchmark: "Benchmark") -> str:
    """The kind of a benchmark's outputs: "anomaly" for an AUC-scored autoencoder (ad01), else
    "classification" (one output per label)."""
    return ANOMALY if benchmark.metric == "auc" else CLASSIFICATION


@dataclass(frozen=True)
class MetricValue:
    """One metric over one accuracy pass.

    ``value``: a finite number, or None where the metric is undefined for this run (then
    ``reason`` says why, in a few words) or is no single number (the confusion matrix).
    ``detail``: anything JSON can hold (lists of lists, per-class values, counts), stored as it is
    in summary.json; numpy values are converted, NaN and infinities become null."""

    value: float | None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# compute(outputs, labels, *, spec, groups, classes) -> MetricValue; see Metric.compute
Compute = Callable[..., MetricValue]


@dataclass(frozen=True)
class Metric:
    """A quality metric a plugin registers (``register_metrics``) and ``tinyharness run --metric
    NAME`` asks for.

    ``name``: lower case, digits and ``_`` (at most 40) to be registered, unique among all
    plugins (the registry checks; ``evaluate:NAME`` is the Evaluate adapter's); ``kind``:
    "classification" or "anomaly", the benchmarks it applies to; ``unit``: "%" for a percentage,
    "" for a fraction or a count; ``higher_is_better``: which way is better, None where unknown
    (an Evaluate module does not say). ``function`` does the work, called as :meth:`compute` is."""

    name: str
    description: str
    kind: str
    higher_is_better: bool | None
    function: Compute
    unit: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"metric name {self.name!r} is not a non-empty string")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not callable(self.function):
            raise ValueError(f"metric {self.name!r}: function is not callable")

    def compute(self, outputs: "np.ndarray", labels: "np.ndarray", *, spec: "TensorSpec",
                groups: "np.ndarray", classes: tuple[str, ...]) -> MetricValue:
        """The metric over one accuracy pass, one row per response in issue order.

        classification: ``outputs`` (N, C), the raw outputs in the SUT's output dtype (dequantize
        with ``tinyharness.scoring.dequantize(outputs, spec)`` where the values matter, not only
        their order); ``labels`` (N,) the classes 0..C-1; ``groups`` (N,) the label-file row of
        each response (0..N-1: one response per file); ``classes`` the benchmark's class names,
        index = label. anomaly: ``outputs`` (N,) float64, each window's anomaly score (the mean
        squared reconstruction error); ``labels`` (N,) each window's file label (1 anomalous);
        ``groups`` (N,) each window's file 0..F-1 (score files by their windows' mean).

        Must not change its inputs. A metric that does not exist for this run returns
        ``MetricValue(None, reason)`` rather than raising; an exception is recorded as the
        metric's reason (the run and its verdict stand). Keyword arguments may be added in later
        versions: a function should accept ``**_``."""
        return self.function(outputs, labels, spec=spec, groups=groups, classes=classes)
