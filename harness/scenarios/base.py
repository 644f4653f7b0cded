"""The one interface of every pass over the QSL: ``Pass.run(sut, qsl) -> Measurement``.

A pass issues queries to an already loaded SUT, times them, and returns typed sections and the
rules they broke (:class:`~tinyharness.results.Measurement`); it never writes files. What it needs
from the run (settings, seeds, the benchmark, progress, the detail log) comes in a :class:`Context`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..results import Reason, ReasonCode

WARMUP = 10  # untimed inferences before a timed run (a window's, a repetition's)

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


def minimum_reasons(duration_s: float, count: int, min_duration_s: float, min_count: int, *,
                    last: str, unit: str, hint: str = "") -> list[Reason]:
    """LoadGen's two minimums of a performance run: its duration (measured to ``last``, e.g. the
    last query's issue) and its count of ``unit`` (queries, samples)."""
    out = []
    if duration_s < min_duration_s:
        out.append(Reason(ReasonCode.MIN_DURATION, f"min duration not met: {last} at {duration_s:.3f} s, "
                          f"needs {min_duration_s:g} s{hint}"))
    if count < min_count:
        out.append(Reason(ReasonCode.MIN_QUERIES, f"min {unit[:-1]} count not met: {count} {unit}, "
                          f"needs {min_count}"))
    return out


def warm_up(sut: "SUT", sample: "np.ndarray", inferences: int = WARMUP) -> None:
    """Untimed inferences before a timed run, so that every repetition of ``--repeat`` starts
    from the same warm state (caches, lazy initialisation, the CPU's clock)."""
    sut.prepare(sample)
    for _ in range(inferences):
        sut.infer()
