"""The harness's own cost per query, measured with the null SUT at the start of every run."""

from __future__ import annotations

import time
from pathlib import Path

from .scenarios.single_stream import run_queries
from .settings import Scenario


def measure_overhead(scenario: Scenario, repeats: int = 5) -> float | None:
    """Microseconds per query: the issue-to-issue period of the single-stream loop driving the
    null SUT, or the per-sample cost of an offline query to it. None when no ``null`` SUT is
    registered (a ``TINYHARNESS_PLUGINS`` list without it)."""
    import numpy as np

    from .plugins import registry

    null = registry().suts.get("null")
    if null is None:
        return None
    sut = null(scenario)
    sut.load(Path("null.onnx"))
    samples = [np.zeros(1, dtype=np.float32)] * 16
    periods = []
    for r in range(repeats):
        if scenario is Scenario.SINGLE_STREAM:
            run = run_queries(sut, samples, r, min_duration_s=0.02, min_query_count=1)
            periods.append((run.end_ns - run.start_ns) / run.count / 1e3)
        else:
            completions = np.zeros(20000, dtype=np.int64)
            start = time.perf_counter_ns()
            sut.issue_offline(samples * 1250, completions)
            periods.append((time.perf_counter_ns() - start) / len(completions) / 1e3)
    return round(float(np.median(periods)), 4)
