"""Test settings: what a run is asked to do, resolved against the benchmark's rule set.

Every value that departs from the rule set is recorded as an override and makes the result INVALID
(with the reason), the way MLPerf treats a run that does not follow the official settings.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .benchmark import Benchmark


# -- bounds ----------------------------------------------------------------------------------------
# Every number a run is sized by is checked here, for the command line and for API users alike, so
# that a value out of range is a one-line UsageError before anything is allocated or started.
MAX_DURATION_S = 86_400.0  # --min-duration: one day (MLPerf's official runs ask for 600 s)
MAX_EXPECTED_QPS = 1e9  # --expected-qps: samples/s, ~800x the fastest offline rate measured
MAX_SEED = 2**63 - 1  # --seed: any non-negative int64 (Seeds derives two 32-bit seeds from it)
MAX_REPEAT = 100  # --repeat: each repetition keeps its latencies (8 B each) until the run ends
# Samples in one offline query, and queries a single-stream run is asked for (--min-queries).
# The offline pass holds 16 B per sample of its query while it runs (an 8 B list reference to the
# loaded sample, up to 1 B more of the list's slack, and an 8 B int64 completion stamp, made
# relative in place and kept as the pass's latencies): 2 GiB at this bound. Single-stream
# preallocates 8 B per asked query (16 B with the runtime's own latency): 1 to 2 GiB. The bound
# admits 1.1 x 10 s x 12 M samples/s, ten times the fastest offline rate measured for LoadGen.
MAX_QUERY_SAMPLES = 1 << 27
LOADGEN_MARGIN = 1.1  # LoadGen's offline N = max(min count, floor(1.1 x min duration x rate))


def offline_samples(min_query_count: int, min_duration_s: float, expected_qps: float) -> int:
    """LoadGen's offline query size N, unbounded (finite inputs)."""
    return max(min_query_count, math.floor(LOADGEN_MARGIN * min_duration_s * expected_qps))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(value: Any, option: str, low: int, high: int, what: str) -> int:
    """``value`` as an int within [low, high], or a one-line UsageError naming the option."""
    if _is_real(value) and math.isfinite(value) and float(value).is_integer() and low <= value <= high:
        return int(value)
    raise UsageError(f"{option} must be a whole number from {low} to {high} ({what}), not {value!r}")


def _number(value: Any, option: str, low: float, high: float, what: str, *,
            above_low: bool = False) -> float:
    """``value`` as a finite float within [low, high] (or (low, high]), or a one-line UsageError."""
    if _is_real(value) and math.isfinite(value) and (value > low if above_low else value >= low) \
            and value <= high:
        return float(value)
    bound = f"above {low:g}" if above_low else f"from {low:g}"
    raise UsageError(f"{option} must be a finite number {bound} to {high:g} ({what}), not {value!r}")


def check_duration(value: Any) -> float:
    return _number(value, "--min-duration", 0.0, MAX_DURATION_S, "seconds; at most one day")


def check_query_count(value: Any) -> int:
    return _whole(value, "--min-queries", 1, MAX_QUERY_SAMPLES,
                  "queries, offline samples: the most one run holds in memory")


def check_expected_qps(value: Any) -> float:
    return _number(value, "--expected-qps", 0.0, MAX_EXPECTED_QPS, "samples per second",
                   above_low=True)


def check_seed(value: Any) -> int:
    return _whole(value, "--seed", 0, MAX_SEED, "a non-negative 64-bit integer")


def check_repeat(value: Any) -> int:
    return _whole(value, "--repeat", 1, MAX_REPEAT, "performance passes in one run")


def check_offline_query(min_query_count: int, min_duration_s: float, expected_qps: float,
                        bound: int = MAX_QUERY_SAMPLES) -> None:
    """A given ``--expected-qps`` must size an offline query within ``bound`` samples: LoadGen
    honours a given rate exactly, so one beyond the bound is refused, never silently capped."""
    n = offline_samples(min_query_count, min_duration_s, expected_qps)
    if n > bound:
        most = math.floor(bound / (LOADGEN_MARGIN * min_duration_s))
        raise UsageError(f"--expected-qps {expected_qps:g} with a {min_duration_s:g} s minimum "
                         f"duration sizes an offline query of {n} samples, more than the "
                         f"{bound} one run holds; give --expected-qps {most} or less "
                         "(or a shorter --min-duration)")


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
        """Every value within its bounds (see MAX_*), however the settings were built."""
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        put("scenario", Scenario.parse(self.scenario))
        put("mode", Mode.parse(self.mode))
        put("min_duration_s", check_duration(self.min_duration_s))
        put("min_query_count", check_query_count(self.min_query_count))
        put("seed", check_seed(self.seed))
        put("repeat", check_repeat(self.repeat))
        put("windows", _whole(self.windows, "windows", 1, 1000, "performance windows"))
        put("window_min_s", _number(self.window_min_s, "window duration", 0.0, MAX_DURATION_S,
                                    "seconds", above_low=True))
        put("max_duration_s", _number(self.max_duration_s, "max duration", 0.0, MAX_DURATION_S,
                                      "seconds; 0 = unlimited"))
        if self.offline_expected_qps is not None:
            put("offline_expected_qps", check_expected_qps(self.offline_expected_qps))
            if self.scenario is Scenario.OFFLINE:
                check_offline_query(self.min_query_count, self.min_duration_s,
                                    self.offline_expected_qps)

    @classmethod
    def resolve(cls, benchmark: "Benchmark", scenario: Scenario | str, mode: Mode | str, seed: int,
                min_duration_s: float | None = None, min_query_count: int | None = None,
                offline_expected_qps: float | None = None, repeat: int = 1) -> "TestSettings":
        scenario, mode = Scenario.parse(scenario), Mode.parse(mode)
        # the values as given, checked before any arithmetic on them (and again, merged with the
        # rule set's, when the settings are built)
        seed, repeat = check_seed(seed), check_repeat(repeat)
        if min_duration_s is not None:
            min_duration_s = check_duration(min_duration_s)
        if min_query_count is not None:
            min_query_count = check_query_count(min_query_count)
        if offline_expected_qps is not None:
            offline_expected_qps = check_expected_qps(offline_expected_qps)
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
