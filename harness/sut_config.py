"""A SUT's options as a typed, frozen dataclass: each field is one ``--sut-option key=value``.

Declare fields with :func:`option` (the help text and the parser from string: bounded numeric
parsers below, ``thread_count`` for anything that starts threads); validate across fields in
``__post_init__`` by raising :class:`~tinyharness.errors.UsageError`, after calling
``super().__post_init__()`` (which holds typed values to their parsers' bounds). The runner parses
the command line's strings once, before the run directory exists, and logs ``to_dict()``::

    @dataclass(frozen=True)
    class MyConfig(HostConfig):
        precision: str = option("f32 (default) or f16", choice("f32", "f16"), "f32")
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import UsageError


def option(help: str, parse: Callable[[str], Any] = str, default: Any = None) -> Any:
    """A config field: ``help`` for listings and errors, ``parse`` turns the string into the value
    (raising ValueError with a short reason when it cannot)."""
    return field(default=default, metadata={"help": help, "parse": parse})


# -- parsers ----------------------------------------------------------------------------------------
# Every numeric parser rejects what is not finite and bounds what it accepts, so that no option can
# ask a runtime for a million threads or a serial link for an infinite timeout. An option with a
# narrower meaningful range declares it with int_range/float_range. Numeric parsers are marked
# ``typed``: str(value) parses back to the value, so a config built with typed values (the Python
# API) is checked by the same parser (SUTConfig.__post_init__).
MAX_INT = 2**63 - 1  # any int option: it must fit the int64 a runtime or numpy takes
MAX_FLOAT = 1e9  # any float option (seconds: 31 years)
THREADS_PER_CORE = 4  # thread-like options (threads, lanes, streams, requests): 4 x the cores


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    parse.typed = True  # type: ignore[attr-defined]
    return parse


def int_range(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """A whole number within [low, high]; ``why`` explains the bound in the error."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}{why}")
        return value
    return _typed(parse)


def float_range(low: float, high: float, *, above_low: bool = False, why: str = "") -> Callable[[str], float]:
    """A finite number within [low, high] (``above_low``: (low, high]); ``why`` explains the bound."""
    def parse(text: str) -> float:
        value = float(text)
        inside = value > low if above_low else value >= low
        if not (math.isfinite(value) and inside and value <= high):
            bound = f"above {low:g}" if above_low else f"from {low:g}"
            raise ValueError(f"must be a finite number {bound} to {high:g}{why}")
        return value
    return _typed(parse)


@_typed
def positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_INT:
        raise ValueError("must be a positive integer" + ("" if value < 1 else f" up to {MAX_INT}"))
    return value


@_typed
def non_negative_int(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_INT:
        raise ValueError("must be >= 0" + ("" if value < 0 else f" and at most {MAX_INT}"))
    return value


@_typed
def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 < value <= MAX_FLOAT):
        raise ValueError(f"must be a positive number, finite and at most {MAX_FLOAT:g}")
    return value


def max_threads() -> int:
    """The most threads (or lanes, streams, requests) an option may ask for: THREADS_PER_CORE x
    the CPU cores. More only contend for the cores; a hundred thousand hang the runtime's pool."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


@_typed
def thread_count(text: str) -> int:
    """A positive count of threads (or parallel lanes, streams, requests) within max_threads()."""
    value = int(text)
    most = max_threads()
    if not 1 <= value <= most:
        raise ValueError(f"must be a whole number from 1 to {most} ({THREADS_PER_CORE} x the "
                         f"{os.cpu_count() or 1} CPU cores)")
    return value


def flag(text: str) -> bool:
    if text.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError("must be 0 or 1")
    return text.lower() in ("1", "true", "yes")


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text
    return parse


# -- configs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SUTConfig:
    """A SUT without options."""

    def __post_init__(self) -> None:
        """A config built with typed values (the Python API, not ``parse``) is held to the same
        numeric bounds: each value of a ``typed`` parser's field goes through that parser."""
        for f in dataclasses.fields(self):
            parse, value = f.metadata.get("parse"), getattr(self, f.name)
            if value is None or not getattr(parse, "typed", False):
                continue
            text = repr(value) if isinstance(value, float) else str(value)
            try:
                object.__setattr__(self, f.name, parse(text))
            except ValueError as exc:
                raise UsageError(f"--sut-option {f.name}={text}: {exc} "
                                 f"({f.metadata.get('help', '')})") from None

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def parse(cls, raw: Mapping[str, str], sut: str = "this SUT") -> "SUTConfig":
        """The config from ``key=value`` strings; unknown keys and bad values are UsageErrors that
        name the option and what it accepts."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            accepted = ", ".join(sorted(fields)) or "none"
            raise UsageError(f"SUT {sut!r} does not accept option(s) {', '.join(unknown)}; "
                             f"accepted: {accepted}")
        values = {}
        for key, text in raw.items():
            meta = fields[key].metadata
            try:
                values[key] = meta.get("parse", str)(text)
            except ValueError as exc:
                raise UsageError(f"--sut-option {key}={text}: {exc} ({meta.get('help', '')})") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class HostConfig(SUTConfig):
    """What every host SUT accepts."""

    threads: int | None = option("intra-op threads (default: 1 for single-stream, all cores for "
                                 "offline; at most 4 x the cores)", thread_count)
