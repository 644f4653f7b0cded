"""A SUT's options as a typed, frozen dataclass: each field is one ``--sut-option key=value``.

Declare fields with :func:`option` (the help text and the parser from string); validate across
fields in ``__post_init__`` by raising :class:`~tinyharness.errors.UsageError`. The runner parses
the command line's strings once, before the run directory exists, and logs ``to_dict()``::

    @dataclass(frozen=True)
    class MyConfig(HostConfig):
        precision: str = option("f32 (default) or f16", choice("f32", "f16"), "f32")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import UsageError


def option(help: str, parse: Callable[[str], Any] = str, default: Any = None) -> Any:
    """A config field: ``help`` for listings and errors, ``parse`` turns the string into the value
    (raising ValueError with a short reason when it cannot)."""
    return field(default=default, metadata={"help": help, "parse": parse})


# -- parsers ----------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
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
                                 "offline)", positive_int)
