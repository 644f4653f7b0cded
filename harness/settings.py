"""Test settings: what a run is asked to do, resolved against the benchmark's rule set.

Every value that departs from the rule set is recorded as an override and makes the result INVALID
(with the reason), the way MLPerf treats a run that does not follow the official settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .benchmark import Benchmark
from .errors import UsageError
from .sut import SCENARIOS

MODES = ("performance", "accuracy", "all")


@dataclass(frozen=True)
class TestSettings:
    scenario: str
    mode: str
    min_duration_s: float
    min_query_count: int
    windows: int
    window_min_s: float
    seed: int
    max_duration_s: float = 0.0  # 0 = unlimited; a guard against a runaway SUT
    offline_expected_qps: float | None = None  # samples/s; None = calibrate with a short probe
    overrides: tuple[str, ...] = field(default=())

    __test__ = False  # not a pytest test class, despite the name

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}; use one of {', '.join(SCENARIOS)}")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.min_duration_s < 0 or self.min_query_count < 1:
            raise UsageError("--min-duration must be >= 0 and --min-queries >= 1")
        if self.offline_expected_qps is not None and self.offline_expected_qps <= 0:
            raise UsageError("--expected-qps must be > 0")

    @classmethod
    def resolve(cls, benchmark: Benchmark, scenario: str, mode: str, seed: int,
                min_duration_s: float | None = None, min_query_count: int | None = None,
                offline_expected_qps: float | None = None) -> "TestSettings":
        rules = benchmark.single_stream if scenario == "single-stream" else benchmark.offline
        overrides = []
        duration, count = rules.min_duration_s, rules.min_query_count
        if min_duration_s is not None and min_duration_s != duration:
            if min_duration_s < duration:
                overrides.append(f"min_duration overridden to {min_duration_s:g} s "
                                 f"(rule set {benchmark.id} requires {duration:g} s)")
            duration = min_duration_s
        if min_query_count is not None and min_query_count != count:
            if min_query_count < count:
                overrides.append(f"min_query_count overridden to {min_query_count} "
                                 f"(rule set {benchmark.id} requires {count})")
            count = min_query_count
        windows, window_s = benchmark.single_stream.windows, benchmark.single_stream.window_min_s
        shortened = min_duration_s is not None and min_duration_s < rules.min_duration_s
        if scenario == "single-stream" and shortened and min_duration_s < window_s:
            # A shortened run shortens its MLPerf Tiny windows too (and is INVALID anyway).
            window_s = max(min_duration_s / windows, 0.01)
            overrides.append(f"window duration shortened to {window_s:g} s "
                             f"(rule set {benchmark.id} requires {benchmark.single_stream.window_min_s:g} s)")
        return cls(scenario=scenario, mode=mode, min_duration_s=duration, min_query_count=count,
                   windows=windows, window_min_s=window_s, seed=seed,
                   offline_expected_qps=offline_expected_qps, overrides=tuple(overrides))

    @property
    def runs_performance(self) -> bool:
        return self.mode in ("performance", "all")

    @property
    def runs_accuracy(self) -> bool:
        return self.mode in ("accuracy", "all")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["overrides"] = list(self.overrides)
        return out
