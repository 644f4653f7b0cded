"""The run model: :class:`RunSummary` is summary.json as types, :class:`Measurement` what a pass adds.

People read it through :mod:`.render` (summary.txt, Markdown); MLPerf Tiny packages through
:mod:`tinyharness.submission.result_lines` (the lines the MLCommons checker parses).

Schema 2 stores each invalid reason as ``{code, message}`` and the SUT's parsed configuration
(``settings.sut_config``); schema-1 files (reasons as strings, no ``schema_version`` in the
oldest) are read and upgraded, so every reader (compare, report, package, check) sees one shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import UsageError
from .reasons import Reason
from .stability import Stability
from .sections import (QPS, Accuracy, DatasetInfo, EarlyStoppingResult, Latency, Model, Offline,
                       Performance, Repetition, Repetitions, Settings, System, Windows)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(kw_only=True)
class Sections:
    """The measured sections of a run; each pass fills some of them."""

    latency_us: Latency | None = None
    early_stopping: EarlyStoppingResult | None = None
    qps: QPS | None = None
    performance: Performance | None = None
    windows: Windows | None = None
    throughput_ips: float | None = None
    offline: Offline | None = None
    accuracy: Accuracy | None = None
    stability: Stability | None = None  # how steady the performance pass was (never a reason)
    # the runtime's own per-query figure (OpenVINO's InferRequest.latency), beside latency_us
    runtime_latency_us: Latency | None = None


SECTIONS = tuple(f.name for f in dataclasses.fields(Sections))


@dataclass(kw_only=True)
class Measurement(Sections):
    """What one pass over the QSL adds to a run: sections, the rules it broke, and what to store
    beside the summary (``latencies.npy``, ``accuracy.json``)."""

    reasons: list[Reason] = field(default_factory=list)
    latencies_ns: Any = None  # numpy int64: per-query latencies, or offline completion times
    accuracy_log: list[dict[str, Any]] | None = None

    def repetition(self, index: int) -> Repetition:
        """This performance pass as repetition ``index`` of ``--repeat``."""
        lat, win, off = self.latency_us, self.windows, self.offline
        if off is not None:
            duration, ips = off.duration_s, self.throughput_ips
        elif self.performance is not None:
            duration, ips = self.performance.duration_s, win.median_throughput_ips if win else None
        else:  # device-timed: the windows alone
            duration = round(sum(w.runtime_s for w in win.details), 6) if win else 0.0
            ips = win.median_throughput_ips if win else None
        return Repetition(index, 0 if self.latencies_ns is None else len(self.latencies_ns),
                          lat.p50 if lat else None, lat.p90 if lat else None,
                          lat.p90_early_stopping if lat else None, ips, duration, list(self.reasons))


@dataclass(kw_only=True)
class RunSummary(Sections):
    """One run: what was asked, what ran, what was measured, and whether it is VALID."""

    schema_version: int = SCHEMA_VERSION
    benchmark: str
    sut: str
    scenario: str
    mode: str
    valid: bool = False
    invalid_reasons: list[Reason] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: str
    finished: str | None = None
    settings: Settings
    repetitions: Repetitions | None = None  # --repeat K > 1; the sections above are repetition 1
    harness_overhead_us: float | None = None
    system: System
    model: Model
    dataset: DatasetInfo
    files: dict[str, str] = field(default_factory=dict)

    # summary.json's key order: what the run was and its verdict, then what it measured, then
    # where it ran (dataclass inheritance would put the sections first)
    KEYS = ("schema_version", "benchmark", "sut", "scenario", "mode", "valid", "invalid_reasons",
            "errors", "started", "finished", "settings", *SECTIONS, "repetitions",
            "harness_overhead_us", "system", "model", "dataset", "files")

    # -- building ---------------------------------------------------------------------------------
    def add(self, measured: Measurement) -> None:
        """Merge a pass's sections and reasons (a section a pass leaves as None is kept)."""
        for name in SECTIONS:
            value = getattr(measured, name)
            if value is not None:
                setattr(self, name, value)
        self.invalid_reasons += measured.reasons

    def conclude(self) -> None:
        self.valid = not self.invalid_reasons and not self.errors

    # -- questions readers ask --------------------------------------------------------------------
    @property
    def key(self) -> tuple[str, str]:
        """What runs are paired by: (benchmark, scenario)."""
        return (self.benchmark, self.scenario)

    @property
    def tests(self) -> tuple[str, ...]:
        """The MLPerf Tiny tests this run provides: accuracy, performance or both."""
        return ("accuracy", "performance") if self.mode == "all" else (self.mode,)

    def blocking_reasons(self, division: str = "closed") -> list[str]:
        """Why this run cannot stand as a result in ``division``: its invalid reasons and errors,
        less those about the quality target in the open division (which accepts any accuracy)."""
        reasons = [r for r in self.invalid_reasons if not (division == "open" and r.code.is_accuracy)]
        return [r.message for r in reasons] + list(self.errors)

    @property
    def offline_throughput_ips(self) -> float | None:
        return self.throughput_ips if self.offline is not None else None

    # -- (de)serialising --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        plain = dataclasses.asdict(self, dict_factory=_plain)
        return {key: plain[key] for key in self.KEYS}

    @classmethod
    def from_dict(cls, document: Any, where: str = "summary.json") -> "RunSummary":
        """A summary of schema 1 or 2 as types; a one-line UsageError naming ``where`` otherwise."""
        import dacite

        if not isinstance(document, dict):
            raise UsageError(f"{where}: not a run summary (a JSON object)")
        version = document.get("schema_version", 1)
        if version not in READABLE_VERSIONS:
            raise UsageError(f"{where}: schema_version {version!r} is not one this tinyharness reads "
                             f"({', '.join(map(str, READABLE_VERSIONS))}); upgrade tinyharness")
        try:
            summary = dacite.from_dict(cls, dict(document), config=_config())
        except (dacite.DaciteError, TypeError, ValueError) as exc:
            raise UsageError(f"{where}: not a tinyharness run summary: {exc}") from None
        summary.schema_version = SCHEMA_VERSION
        return summary


def _config():
    import dacite

    return dacite.Config(type_hooks={Reason: Reason.from_value, float: _number}, strict=False)


def _number(value: Any) -> Any:
    """JSON has one number type: an integral float may arrive as an int."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in items}
