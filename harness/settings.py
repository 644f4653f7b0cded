"""Test settings: what a run is asked to do, resolved against the benchmark's rule set.

Every value that departs from the rule set is recorded as an override and makes the result INVALID
(with the reason), the way MLPerf treats a run that does not follow the official settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .benchmark import Benchmark


class Choice(str, Enum):
    """A closed set of names; the value is what the command line and the logs use."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, text: "str | Choice"):
        try:
            return cls(text)
        except ValueError:
            raise UsageError(f"unknown {cls.__name__.lower()} {text!r}; use one of "
                             f"{', '.join(m.value for m in cls)}") from None


class Scenario(Choice):
    SINGLE_STREAM = "single-stream"
    OFFLINE = "offline"


class Mode(Choice):
    PERFORMANCE = "performance"
    ACCURACY = "accuracy"
    ALL = "all"


@dataclass(frozen=True)
class TestSettings:
    scenario: Scenario
    mode: Mode
    min_duration_s: float
    min_query_count: int
    windows: int
    window_min_s: float
    seed: int
    max_duration_s: float = 0.0  # 0 = unlimited; a guard against a runaway SUT
    offline_expected_qps: float | None = None  # samples/s; None = calibrate with a short probe
    overrides: tuple[str, ...] = field(default=())
    repeat: int = 1  # performance passes in one invocation (each a full LoadGen run)

    __test__ = False  # not a pytest test class, despite the name

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenario", Scenario.parse(self.scenario))
        object.__setattr__(self, "mode", Mode.parse(self.mode))
        if self.min_duration_s < 0 or self.min_query_count < 1:
            raise UsageError("--min-duration must be >= 0 and --min-queries >= 1")
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise UsageError(f"--repeat must be a whole number >= 1, not {self.repeat!r}")
        if self.offline_expected_qps is not None and self.offline_expected_qps <= 0:
            raise UsageError("--expected-qps must be > 0")

    @classmethod
    def resolve(cls, benchmark: "Benchmark", scenario: Scenario | str, mode: Mode | str, seed: int,
                min_duration_s: float | None = None, min_query_count: int | None = None,
                offline_expected_qps: float | None = None, repeat: int = 1) -> "TestSettings":
        scenario, mode = Scenario.parse(scenario), Mode.parse(mode)
        rules = benchmark.rules_for(scenario)
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
        if scenario is Scenario.SINGLE_STREAM and shortened and min_duration_s < window_s:
            # A shortened run shortens its MLPerf Tiny windows too (and is INVALID anyway).
            window_s = max(min_duration_s / windows, 0.01)
            overrides.append(f"window duration shortened to {window_s:g} s "
                             f"(rule set {benchmark.id} requires {benchmark.single_stream.window_min_s:g} s)")
        return cls(scenario=scenario, mode=mode, min_duration_s=duration, min_query_count=count,
                   windows=windows, window_min_s=window_s, seed=seed,
                   offline_expected_qps=offline_expected_qps, overrides=tuple(overrides),
                   repeat=repeat)

    @property
    def runs_performance(self) -> bool:
        return self.mode in (Mode.PERFORMANCE, Mode.ALL)

    @property
    def runs_accuracy(self) -> bool:
        return self.mode in (Mode.ACCURACY, Mode.ALL)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(scenario=self.scenario.value, mode=self.mode.value, overrides=list(self.overrides))
        return out
