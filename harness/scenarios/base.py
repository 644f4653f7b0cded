"""The one interface of every pass over the QSL: ``Pass.run(sut, qsl) -> Measurement``.

A pass issues queries to an already loaded SUT, times them, and returns typed sections and the
rules they broke (:class:`~tinyharness.results.Measurement`); it never writes files. What it needs
from the run (settings, seeds, the benchmark, progress, the detail log) comes in a :class:`Context`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from ..benchmark import Benchmark
    from ..progress import Progress
    from ..qsl import QSL, Seeds
    from ..results import Measurement
    from ..settings import TestSettings
    from ..sut import SUT


@dataclass(frozen=True)
class Context:
    settings: "TestSettings"
    seeds: "Seeds"
    benchmark: "Benchmark"
    progress: "Progress"
    event: Callable[[str, Any], None]  # one detail-log event (key, value)


class Pass(abc.ABC):
    """One pass over the QSL."""

    name: ClassVar[str]

    def __init__(self, context: Context) -> None:
        self.ctx = context

    @abc.abstractmethod
    def run(self, sut: "SUT", qsl: "QSL") -> "Measurement":
        """Issue the pass's queries to ``sut`` (loaded) and return what was measured."""


def load_performance_set(qsl: "QSL", ctx: Context) -> list["np.ndarray"]:
    """The performance sample set, loaded (untimed), as LoadGen chooses it: seeded shuffle, first
    ``performance_sample_count`` of the scenario's rules."""
    rules = ctx.benchmark.rules_for(ctx.settings.scenario)
    chosen = qsl.performance_set(rules.performance_sample_count or qsl.total_count, ctx.seeds)
    qsl.load(chosen)
    ctx.event("loaded_qsl_set", [int(i) for i in chosen])
    ctx.event("generic_message", "Starting performance mode")
    return [qsl.sample(int(i)) for i in chosen]
