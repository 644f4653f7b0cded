"""The sections of a run summary, one dataclass each, in summary.json's own units and key names.

Each section builds itself from raw measurements (``from_*``) and states the rules it breaks
(``reasons``); :mod:`.summary` puts them together and (de)serialises them. Nothing here times or
runs anything.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from .reasons import Reason, ReasonCode


def _r(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


# -- single-stream ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Latency:
    """Per-query latency statistics in microseconds (LoadGen's percentile rule, integer mean)."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p97: float
    p99: float
    p999: float
    max: float
    p90_early_stopping: float | None  # None: too few queries for the estimate
    # False past latencies.EXACT_LIMIT queries: percentiles from a histogram, at most 0.1 % high
    exact: bool = True

    @classmethod
    def from_ns(cls, latencies_ns) -> "Latency":
        from ..stats import LatencyStats

        s = LatencyStats.from_ns(latencies_ns)
        us = lambda ns: _r(ns / 1000.0)  # noqa: E731
        p = s.percentiles_ns
        return cls(s.count, us(s.min_ns), us(s.mean_ns), us(p[0.50]), us(p[0.90]), us(p[0.95]),
                   us(p[0.97]), us(p[0.99]), us(p[0.999]), us(s.max_ns),
                   None if s.early.estimate_ns is None else us(s.early.estimate_ns), s.exact)


@dataclass(frozen=True)
class EarlyStoppingResult:
    percentile: float
    confidence: float
    met: bool
    min_queries: int
    discarded: int

    @classmethod
    def from_ns(cls, latencies_ns) -> "EarlyStoppingResult":
        from ..stats import early_stopping_rank

        rank, needed, discarded = early_stopping_rank(len(latencies_ns), 0.90, 0.99)
        return cls(0.90, 0.99, rank is not None, needed, discarded)


@dataclass(frozen=True)
class QPS:
    with_overhead: float  # LoadGen: (count - 1) / issue time of the last query
    without_overhead: float  # LoadGen: 1 / mean latency


@dataclass(frozen=True)
class Performance:
    """How long the single-stream run lasted against its minimums."""

    queries: int
    duration_s: float
    min_duration_met: bool
    min_queries_met: bool


# -- MLPerf Tiny windows ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ShortRun:
    """An attempt at a window that came out shorter than the rules ask (then re-run longer)."""

    inferences: int
    runtime_s: float


@dataclass(frozen=True)
class Window:
    """One MLPerf Tiny performance window: one sample inferred N times back to back."""

    sample_index: int
    file: str
    inferences: int
    runtime_s: float
    throughput_ips: float
    attempts: int
    short_runs: list[ShortRun] = field(default_factory=list)  # the attempts before this one

    @classmethod
    def measured(cls, sample_index: int, file: str, inferences: int, elapsed_ns: int,
                 short_runs: Sequence[ShortRun] = ()) -> "Window":
        runtime_s = elapsed_ns / 1e9
        return cls(sample_index, file, inferences, _r(runtime_s, 6),
                   _r(inferences / runtime_s if runtime_s > 0 else 0.0), len(short_runs) + 1,
                   list(short_runs))


@dataclass(frozen=True)
class Startup:
    """What a run costs before its first measured query, as benchmark_app reports it: loading
    (reading, compiling, building the model) and the first inference after it (lazy
    initialisation, first-touch allocation), neither inside any reported figure."""

    load_s: float
    first_inference_us: float | None  # None: the run made none (a SUT that cannot infer alone)


@dataclass(frozen=True)
class Windows:
    throughput_ips: list[float]
    median_throughput_ips: float
    latency_us: float | None  # 1 / median throughput (schema 2 stored it in ms as latency_ms)
    window_min_s: float
    details: list[Window]

    @classmethod
    def from_windows(cls, windows: Sequence[Window], window_min_s: float) -> "Windows":
        throughputs = [w.throughput_ips for w in windows]
        median = statistics.median(throughputs) if throughputs else 0.0
        return cls(throughputs, _r(median), _r(1e6 / median, 6) if median else None,
                   window_min_s, list(windows))

    def reasons(self, required: int) -> list[Reason]:
        out = []
        if len(self.details) != required:
            out.append(Reason(ReasonCode.WINDOW_COUNT, f"{len(self.details)} performance windows, "
                              f"the rules require {required}"))
        for number, w in enumerate(self.details, start=1):
            if w.runtime_s < self.window_min_s:
                out.append(Reason(ReasonCode.WINDOW_DURATION, f"window {number} ran {w.runtime_s:.3f} s, "
                                  f"needs at least {self.window_min_s:g} s"))
        return out


# -- offline ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShortQuery:
    """An offline query that completed before the minimum duration (then re-sized and re-run)."""

    samples: int
    duration_s: float
    expected_qps: float


@dataclass(frozen=True)
class Offline:
    samples: int
    duration_s: float
    expected_qps: float
    expected_qps_source: str  # "given" (--expected-qps), "probe", or "recalibrated" after a short query
    min_duration_met: bool
    min_queries_met: bool
    attempts: int = 1
    short_runs: list[ShortQuery] = field(default_factory=list)  # the queries before this one


# -- accuracy --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tensor:
    """A model input or output as logged (batch 1): shape, dtype and quantization."""

    name: str
    shape: list[int]
    dtype: str
    scale: float = 0.0  # 0.0: not quantized
    zero_point: int = 0

    @classmethod
    def of(cls, spec: Any) -> "Tensor":
        return cls(spec.name, list(spec.shape), spec.dtype, spec.scale, spec.zero_point)


@dataclass(frozen=True)
class MetricResult:
    """One quality metric of the accuracy pass (:mod:`tinyharness.metrics`), reported beside the
    rule set's metric; it never decides VALID."""

    value: float | None  # None: undefined for this run (``reason`` says why), or no single number
    unit: str  # "%" or "" (a fraction, a count)
    higher_is_better: bool | None  # None: the metric does not say (an Evaluate module)
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the confusion matrix, per-class values

    @property
    def shown(self) -> str:
        """'98.33 %', '0.9812', or 'n/a (why)'."""
        if self.value is None:
            return f"n/a ({self.reason})" if self.reason else "n/a"
        if self.unit == "%":
            return f"{self.value:.2f} %"
        return f"{self.value:.4f} {self.unit}".rstrip()


@dataclass(frozen=True)
class Accuracy:
    metric: str  # "top1" (percent) or "auc": the rule set's quality metric, which decides VALID
    value: float | None  # None: the metric is undefined (AUC over one class)
    target: float
    passed: bool
    count: int  # responses (AD: windows)
    files: int  # label rows
    output: Tensor
    metrics: dict[str, MetricResult] = field(default_factory=dict)  # name -> value, in order computed

    @property
    def shown(self) -> str:
        """The value as people read it: 'top-1 90.20 %', 'AUC 0.8620', 'auc undefined'."""
        if self.value is None:
            return f"{self.metric} undefined"
        return f"top-1 {self.value:.2f} %" if self.metric == "top1" else f"AUC {self.value:.4f}"

    def reasons(self) -> list[Reason]:
        if self.value is None:
            return [Reason(ReasonCode.ACCURACY_UNDEFINED, "AUC is undefined: the label file lists only "
                           "one class of file; it needs both normal and anomalous files")]
        if self.passed:
            return []
        shown = f"{self.value:.2f} % top-1" if self.metric == "top1" else f"AUC {self.value:.4f}"
        prefix = "accuracy " if self.metric == "top1" else ""
        return [Reason(ReasonCode.ACCURACY_TARGET, f"{prefix}{shown} is below the target {self.target:g}")]


# -- repetitions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Repetition:
    """One of ``--repeat K`` performance passes, in headline figures; its per-query values are
    the ``queries`` entries of latencies.npy after those of the repetitions before it."""

    index: int
    queries: int
    p50_us: float | None
    p90_us: float | None
    p90_early_stopping_us: float | None
    throughput_ips: float | None  # offline samples/s, or the median window throughput
    duration_s: float
    reasons: list[Reason] = field(default_factory=list)


def _max_over_min(values: list[float]) -> float | None:
    return _r(max(values) / min(values), 4) if len(values) > 1 and min(values) > 0 else None


def _cv(values: list[float]) -> float | None:
    if len(values) < 2 or statistics.fmean(values) <= 0:
        return None
    return _r(statistics.stdev(values) / statistics.fmean(values), 4)


@dataclass(frozen=True)
class Spread:
    """How far the repetitions of one invocation disagree: the run-to-run noise of this SUT on
    this machine, which no single run's percentiles can show."""

    p50_max_over_min: float | None
    p90_max_over_min: float | None
    throughput_max_over_min: float | None
    p50_cv: float | None
    throughput_cv: float | None

    @classmethod
    def of(cls, runs: Sequence[Repetition]) -> "Spread":
        p50 = [r.p50_us for r in runs if r.p50_us is not None]
        p90 = [r.p90_us for r in runs if r.p90_us is not None]
        ips = [r.throughput_ips for r in runs if r.throughput_ips is not None]
        return cls(_max_over_min(p50), _max_over_min(p90), _max_over_min(ips), _cv(p50), _cv(ips))


@dataclass(frozen=True)
class Repetitions:
    count: int
    runs: list[Repetition]
    spread: Spread

    @classmethod
    def of(cls, runs: Sequence[Repetition]) -> "Repetitions":
        return cls(len(runs), list(runs), Spread.of(runs))


# -- provenance ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SUTInfo:
    """What the SUT said about itself after loading (``SUT.describe``) and its run counters."""

    name: str
    runtime: str
    runtime_version: str
    device: str
    model_format: str
    precision: str
    inference_precision: str
    threads: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    run_stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class System:
    """The host and the runtime as run: enough to reproduce and compare the result."""

    harness_version: str
    harness_git_revision: str | None
    python: str
    os: str
    cpu_model: str
    runtime: str
    runtime_version: str
    device: str
    precision: str
    inference_precision: str
    threads: int | None
    sut: SUTInfo
    python_implementation: str | None = None
    numpy: str | None = None
    machine: str | None = None
    cpu_count: int | None = None
    argv: list[str] = field(default_factory=list)
    cpu_features: list[str] | None = None  # harness.system.ISA_FLAGS the host has; None: unknown


@dataclass(frozen=True)
class Model:
    path: str
    sha256: str | None  # None: the model is on a device
    format: str
    size: int | None
    found_in: str  # "--model", "embedded", "mirror", "cache", "download" or "device"
    reference: str | None  # the rule set's model file this is (name and sha256 match)

    @property
    def on_device(self) -> bool:
        return self.found_in == "device"


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    path: str
    sha256: str
    count: int


@dataclass(frozen=True)
class Settings:
    """The effective test settings and seeds of the run, and the SUT's configuration."""

    scenario: str
    mode: str
    min_duration_s: float
    min_query_count: int
    windows: int
    window_min_s: float
    seed: int
    qsl_rng_seed: int
    sample_index_rng_seed: int
    performance_sample_count: int
    rules: str
    overrides: list[str] = field(default_factory=list)
    sut_options: dict[str, str] = field(default_factory=dict)  # as given on the command line
    sut_config: dict[str, Any] | None = None  # as parsed by the SUT's config (schema 2)
    max_duration_s: float = 0.0
    offline_expected_qps: float | None = None
    repeat: int = 1  # performance passes in the invocation (--repeat)
    metrics: list[str] = field(default_factory=list)  # --metric, as given
