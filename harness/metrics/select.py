"""Which metrics an accuracy pass computes: the defaults of the benchmark's kind, then each
``--metric`` in the order given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..errors import UsageError
from .base import ANOMALY, CLASSIFICATION, Metric, kind_of

if TYPE_CHECKING:
    from ..benchmark import Benchmark

# Cheap, and what a classifier's accuracy run is read for; AD's one metric is its quality metric.
DEFAULTS = {CLASSIFICATION: ("top1", "top5", "macro_f1", "confusion"), ANOMALY: ("auc",)}


def resolve(benchmark: "Benchmark", requested: Sequence[str] = (), runs_accuracy: bool = True
            ) -> tuple[Metric, ...]:
    """The metrics of ``benchmark``'s accuracy pass, each once: :data:`DEFAULTS` for its kind and
    ``requested`` (``--metric`` names, or ``evaluate:PATH``). A one-line UsageError for an unknown
    name (with the closest ones), a metric of the other kind, or ``--metric`` without an accuracy
    pass. Without an accuracy pass and without ``--metric``: none."""
    if not runs_accuracy:
        if requested:
            raise UsageError(f"--metric {requested[0]} needs the accuracy pass; use --mode accuracy "
                             "or --mode all")
        return ()
    from ..plugins import metric_registry

    kind, registry = kind_of(benchmark), metric_registry()
    chosen: dict[str, Metric] = {}
    for name in (*DEFAULTS[kind], *(str(n).strip() for n in requested)):
        if name.startswith("evaluate:"):
            from .evaluate_adapter import evaluate_metric

            metric = evaluate_metric(name)
        else:
            metric = registry.get(name)
        if metric.kind != kind:
            raise UsageError(f"metric {name!r} applies to {metric.kind} benchmarks; {benchmark.id} is "
                             f"a{'n' * (kind == ANOMALY)} {kind} benchmark (its metrics: "
                             f"{', '.join(registry.names(kind))})")
        if metric.name in chosen and chosen[metric.name] is not metric:
            raise UsageError(f"two --metric modules are both named {metric.name!r}; rename one "
                             "folder or script")
        chosen.setdefault(metric.name, metric)
    return tuple(chosen.values())
