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

from .errors import UsageError, canonical, did_you_mean


def option(help: str, parse: Callable[[str], Any] = str, default: Any = None) -> Any:
    """A config field: ``help`` for listings, ``parse`` turns the string into the value (raising
    ValueError with what it expects, ``"expected ..."`` or ``"must be ..."``, when it cannot)."""
    return field(default=default, metadata={"help": help, "parse": parse})


# -- parsers ----------------------------------------------------------------------------------------
# Every numeric parser rejects what is not finite and bounds what it accepts, so that no option can
# ask a runtime for a million threads or a serial link for an infinite timeout. An option with a
# narrower meaningful range declares it with int_range/float_range. Numeric parsers are marked
# ``typed``: str(value) parses back to the value, so a config built with typed values (the Python
# API) is checked by the same parser (SUTConfig.__post_init__). Each parser says what it expects
# (``parse.expects``), and its ValueError says only that: never Python's own conversion message.
MAX_INT = 2**63 - 1  # any int option: it must fit the int64 a runtime or numpy takes
MAX_FLOAT = 1e9  # any float option (seconds: 31 years)
THREADS_PER_CORE = 4  # thread-like options (threads, lanes, streams, requests): 4 x the cores
FLAG_TRUE, FLAG_FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    parse.typed = True  # type: ignore[attr-defined]
    return parse


def _expecting(expects: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    parse.expects = expects  # type: ignore[attr-defined]
    return parse


def _whole(text: str, expects: str, low: int, high: int) -> int:
    """``text`` as an int within [low, high], else ValueError("expected ...")."""
    try:
        value = int(str(text).strip())
    except (ValueError, TypeError, OverflowError):  # not a number, or beyond int()'s digit limit
        value = None
    if value is None or not low <= value <= high:
        raise ValueError(f"expected {expects}")
    return value


def _real(text: str, expects: str, low: float, high: float, above_low: bool = False) -> float:
    """``text`` as a finite float within [low, high] (``above_low``: (low, high])."""
    try:
        value = float(str(text).strip())
    except (ValueError, TypeError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and (value > low if above_low else value >= low) and value <= high):
        raise ValueError(f"expected {expects}")
    return value


def int_range(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """A whole number within [low, high]; ``why`` explains the bound in the error."""
    expects = f"an integer from {low} to {high}{why}"
    return _typed(_expecting(expects, lambda text: _whole(text, expects, low, high)))


def float_range(low: float, high: float, *, above_low: bool = False, why: str = "") -> Callable[[str], float]:
    """A finite number within [low, high] (``above_low``: (low, high]); ``why`` explains the bound."""
    bound = f"above {low:g}" if above_low else f"from {low:g}"
    expects = f"a finite number {bound} to {high:g}{why}"
    return _typed(_expecting(expects, lambda text: _real(text, expects, low, high, above_low)))


@_typed
def positive_int(text: str) -> int:
    return _whole(text, positive_int.expects, 1, MAX_INT)


@_typed
def non_negative_int(text: str) -> int:
    return _whole(text, non_negative_int.expects, 0, MAX_INT)


@_typed
def positive_float(text: str) -> float:
    return _real(text, positive_float.expects, 0.0, MAX_FLOAT, above_low=True)


positive_int.expects = f"an integer from 1 to {MAX_INT}"  # type: ignore[attr-defined]
non_negative_int.expects = f"an integer from 0 to {MAX_INT}"  # type: ignore[attr-defined]
positive_float.expects = f"a finite number above 0 to {MAX_FLOAT:g}"  # type: ignore[attr-defined]


def max_threads() -> int:
    """The most threads (or lanes, streams, requests) an option may ask for: THREADS_PER_CORE x
    the CPU cores. More only contend for the cores; a hundred thousand hang the runtime's pool."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


@_typed
def thread_count(text: str) -> int:
    """A positive count of threads (or parallel lanes, streams, requests) within max_threads()."""
    most = max_threads()
    return _whole(text, f"an integer from 1 to {most} ({THREADS_PER_CORE} x the "
                  f"{os.cpu_count() or 1} CPU cores)", 1, most)


thread_count.expects = f"an integer from 1 to {THREADS_PER_CORE} x the CPU cores"  # type: ignore[attr-defined]


def flag(text: str) -> bool:
    """1 or 0, in any case also true/false, yes/no, on/off."""
    word = str(text).strip().lower()
    if word not in FLAG_TRUE + FLAG_FALSE:
        raise ValueError(f"expected {flag.expects}")
    return word in FLAG_TRUE


flag.expects = "0 or 1 (or true/false, yes/no, on/off)"  # type: ignore[attr-defined]


def choice(*allowed: str) -> Callable[[str], str]:
    """One of ``allowed``, in any case (given back as ``allowed`` spells it)."""
    expects = f"one of {', '.join(allowed)}"

    def parse(text: str) -> str:
        found = canonical(str(text).strip(), allowed)
        if found is None:
            raise ValueError(f"expected {expects}{did_you_mean(text, allowed)}")
        return found
    return _expecting(expects, parse)


# Python's own messages for a failed conversion ("invalid literal for int() with base 10: 'two'"):
# a plugin's parser that lets one through gets "expected <its type>" in its place.
_CONVERSION = ("invalid literal for", "could not convert", "exceeds the limit", "cannot convert",
               "int too large", "float too large", "math domain error", "too many digits")
_BY_TYPE = (("bool", "0 or 1"), ("int", "an integer"), ("float", "a number"))


def _reason(f: dataclasses.Field, exc: Exception) -> str:
    """What a bad value of ``f`` should have been, for the user: the parser's own words (its
    "must be ..." said as "expected ..."), never a Python conversion message."""
    parse = f.metadata.get("parse", str)
    text = " ".join(str(exc).split())
    if text.startswith("must be "):
        return "expected " + text.removeprefix("must be ")
    if text and not text.lower().startswith(_CONVERSION) and isinstance(exc, ValueError):
        return text
    expects = getattr(parse, "expects", None)
    if expects is None:
        declared = str(f.type)
        expects = next((what for name, what in _BY_TYPE if name in declared), "a valid value")
    return f"expected {expects}"


def _shown(text: str) -> str:
    """A value as an error message quotes it: as typed when printable, else its repr; at most
    about 60 characters."""
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def bad_value(f: dataclasses.Field, text: str, exc: Exception) -> UsageError:
    """The one-line error for a bad ``--sut-option KEY=VALUE``: the option, the value, what it
    expects."""
    return UsageError(f"--sut-option {f.name}={_shown(text)}: {_reason(f, exc)}")


def _key(text: str) -> str:
    """An option key as looked up: any case, '-' for '_' (infer-timeout is infer_timeout)."""
    return text.strip().casefold().replace("-", "_")


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
            except (ValueError, ArithmeticError) as exc:
                raise bad_value(f, text, exc) from None

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def parse(cls, raw: Mapping[str, str], sut: str = "this SUT") -> "SUTConfig":
        """The config from ``key=value`` strings; unknown keys and bad values are UsageErrors that
        name the option and what it accepts. A key matches in any case and with '-' for '_'."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        by_key = {_key(name): name for name in fields}
        named: dict[str, str] = {}  # field name -> the key as given
        unknown = []
        for key in raw:
            name = key if key in fields else by_key.get(_key(key))
            if name is None:
                unknown.append(key)
            elif name in named:
                raise UsageError(f"--sut-option {name} is given twice ({named[name]}="
                                 f"{_shown(raw[named[name]])}, {key}={_shown(raw[key])})")
            else:
                named[name] = key
        if unknown:
            accepted = ", ".join(sorted(fields)) or "none"
            shown = ", ".join(f"{_shown(k)}{_near(k, fields)}" for k in sorted(unknown))
            raise UsageError(f"SUT {sut!r} does not accept option(s) {shown}; accepted: {accepted}")
        values = {}
        for name, key in named.items():
            f, text = fields[name], raw[key]
            try:
                values[name] = f.metadata.get("parse", str)(text)
            except (ValueError, ArithmeticError) as exc:
                raise bad_value(f, text, exc) from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _near(key: str, fields) -> str:
    """`` (did you mean 'threads'?)`` for an unknown key, else ``""``."""
    return did_you_mean(key.replace("-", "_"), sorted(fields))


@dataclass(frozen=True)
class HostConfig(SUTConfig):
    """What every host SUT accepts."""

    threads: int | None = option("intra-op threads (default: 1 for single-stream, all cores for "
                                 "offline; at most 4 x the cores)", thread_count)
