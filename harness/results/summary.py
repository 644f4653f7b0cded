"""The run model: :class:`RunSummary` is summary.json as types, :class:`Measurement` what a pass adds.

People read it through :mod:`.render` (summary.txt, Markdown); MLPerf Tiny packages through
:mod:`tinyharness.submission.result_lines` (the lines the MLCommons checker parses).

Schema 2 stores each invalid reason as ``{code, message}`` and the SUT's parsed configuration
(``settings.sut_config``); schema-1 files (reasons as strings, no ``schema_version`` in the
oldest) are read and upgraded, so every reader (compare, report, package, check) sees one shape.
Schema 3 keeps one unit per kind, named in every key (latencies in us, durations in s: the
windows' ``latency_ms`` became ``latency_us``) and adds ``startup`` (load and first inference).
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
                       Performance, Repetition, Repetitions, Settings, Startup, System, Windows)

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


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
    startup: Startup | None = None  # schema 3
    system: System
    model: Model
    dataset: DatasetInfo
    files: dict[str, str] = field(default_factory=dict)

    # summary.json's key order: what the run was and its verdict, then what it measured, then
    # where it ran (dataclass inheritance would put the sections first)
    KEYS = ("schema_version", "benchmark", "sut", "scenario", "mode", "valid", "invalid_reasons",
            "errors", "started", "finished", "settings", *SECTIONS, "repetitions",
            "harness_overhead_us", "startup", "system", "model", "dataset", "files")

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
        """A summary of schema 1, 2 or 3 as types; anything else (a wrong type anywhere, a missing
        field, NaN or infinity where a number belongs) is a one-line UsageError naming ``where``
        and the field."""
        import dacite

        if not isinstance(document, dict):
            raise UsageError(f"{where}: not a run summary (a JSON object)")
        version = document.get("schema_version", 1)
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise UsageError(f"{where}: schema_version {_short(version)} is not one this tinyharness "
                             f"reads ({', '.join(map(str, READABLE_VERSIONS))}); upgrade tinyharness")
        bad = _non_finite(document)
        if bad is not None:
            raise UsageError(f"{where}: field {_field(bad[0])} is {bad[1]}, not a finite number; not a "
                             "summary tinyharness wrote")
        try:
            summary = dacite.from_dict(cls, _upgrade(document, version), config=_config())
        except dacite.MissingValueError as exc:
            raise UsageError(f"{where}: not a tinyharness run summary: field {_field(exc.field_path or '')} is "
                             "missing") from None
        except dacite.WrongTypeError as exc:
            path, expected, value = _misfit(exc.field_path or "", exc.field_type, document)
            raise UsageError(f"{where}: not a tinyharness run summary: field {_field(path)} should be "
                             f"{expected}, not {_kind(value)}") from None
        except (dacite.DaciteError, TypeError, ValueError, AttributeError, KeyError, IndexError,
                RecursionError) as exc:
            found = _locate(cls, document, "")
            if found is None:
                raise UsageError(f"{where}: not a tinyharness run summary "
                                 f"({_short(str(exc), 100)})") from None
            path, expected, value = found
            raise UsageError(f"{where}: not a tinyharness run summary: field {_field(path)} should be "
                             f"{expected}, not {_kind(value)}") from None
        summary.schema_version = SCHEMA_VERSION
        return summary


# -- why a document is not a summary, in JSON's words ----------------------------------------------

def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a value an error message quotes: one line, about ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _field(path: str) -> str:
    """A field's path in double quotes, escaped to one line (a key may hold anything)."""
    import json

    text = json.dumps(path)
    return text if len(text) <= 120 else text[:117] + '..."'


def _kind(value: Any) -> str:
    """A JSON value as a message names it: 'the string "fast"', 'a list', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {_short(value)}"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else "a value"


def _non_finite(document: Any) -> tuple[str, str] | None:
    """(path, 'NaN' or 'infinite') of the first float that is not finite (json reads NaN,
    Infinity and 1e999; tinyharness writes none), else None."""
    import math

    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path, "NaN" if node != node else "infinite"
        if isinstance(node, dict):
            stack += [(f"{path}.{k}" if path else str(k), v) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(f"{path}[{i}]", v) for i, v in enumerate(node)]
    return None


def _options(tp: Any) -> tuple[Any, ...] | None:
    """The members of a Union (``X | None``), or None when ``tp`` is not one."""
    import types
    import typing

    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else None


def _expected(tp: Any) -> str:
    """A type as JSON names it: 'a number', 'an object or null', 'a list'."""
    import typing

    options = _options(tp)
    if options is not None:
        return " or ".join(dict.fromkeys(_expected(o) for o in options))
    origin = typing.get_origin(tp) or tp
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a number",
             str: "a string", list: "a list", dict: "an object", Any: "any value",
             Reason: "an object or a string"}
    return names.get(origin, "an object")  # a dataclass (or Reason: an object or a string)


def _fits(tp: Any, value: Any) -> bool:
    """Whether ``value``'s JSON kind can be ``tp`` (the contents of lists and objects aside)."""
    import dataclasses
    import typing

    options = _options(tp)
    if options is not None:
        return any(_fits(o, value) for o in options)
    origin = typing.get_origin(tp) or tp
    if origin is Any:
        return True
    if origin is Reason:
        return isinstance(value, (str, dict))
    if origin is type(None):
        return value is None
    if origin in (int, float):
        return isinstance(value, (int, float) if origin is float else int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(origin):
        return isinstance(value, dict)
    return isinstance(value, origin)


def _value_at(document: Any, path: str) -> Any:
    node = document
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _misfit(path: str, tp: Any, document: Any) -> tuple[str, str, Any]:
    """(path, expected, value) of what dacite refused at ``path``: the list item itself when
    the field is a list whose items do not fit."""
    import typing

    value = _value_at(document, path)
    item = typing.get_args(tp)[:1] if typing.get_origin(tp) is list else ()
    if item and isinstance(value, list):
        for index, element in enumerate(value):
            if not _fits(item[0], element):
                return f"{path}[{index}]", _expected(item[0]), element
    return path, _expected(tp), value


def _locate(tp: Any, value: Any, path: str) -> tuple[str, str, Any] | None:
    """The first (path, expected, value) under ``value`` whose kind cannot be its field's (a list
    where an object belongs, an object where a list does, ...), or None."""
    import dataclasses
    import typing

    if not _fits(tp, value):
        return path, _expected(tp), value
    options = _options(tp)
    if options is not None:
        real = [o for o in options if o is not type(None)]
        return _locate(real[0], value, path) if len(real) == 1 and value is not None else None
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin) and origin is not Reason:
        hints = typing.get_type_hints(origin)
        for f in dataclasses.fields(origin):
            if f.name in value:
                found = _locate(hints[f.name], value[f.name], f"{path}.{f.name}" if path else f.name)
                if found is not None:
                    return found
    elif origin is list and typing.get_args(tp):
        for index, element in enumerate(value):
            found = _locate(typing.get_args(tp)[0], element, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _config():
    import dacite

    return dacite.Config(type_hooks={Reason: _reason, float: _number}, strict=False)


def _upgrade(document: dict, version: int) -> dict:
    """Schema 1 and 2 stored the windows' latency in ms (``windows.latency_ms``); schema 3 keeps
    one unit per kind, every latency in us."""
    document = dict(document)
    windows = document.get("windows")
    if version < 3 and isinstance(windows, dict) and "latency_ms" in windows:
        windows = dict(windows)
        ms = windows.pop("latency_ms")
        windows["latency_us"] = round(ms * 1000.0, 6) if isinstance(ms, (int, float)) and not isinstance(
            ms, bool) else ms
        document["windows"] = windows
    return document


def _reason(value: Any) -> Reason:
    """A reason as summary.json stores it: ``{code, message}`` (schema 2) or a string (schema 1);
    anything else (a number, a list) is no reason (TypeError, named by :func:`_locate`)."""
    if not isinstance(value, (str, dict)):
        raise TypeError(f"a reason is an object or a string, not {type(value).__name__}")
    return Reason.from_value(value)


def _number(value: Any) -> Any:
    """JSON has one number type: an integral float may arrive as an int."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _plain(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in items}
