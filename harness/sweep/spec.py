"""What a sweep runs: its cells (one ``tinyharness run`` each) and the spec that lists them.

A cell is identified by a hash of what it runs (not of its timeout), so the same matrix read twice
gives the same cell ids and the same sweep id: that is what resuming keys on. The TOML format is in
docs/sweeps.md; :func:`load_spec` reads it, :func:`spec_from_document` builds a spec from the same
document built some other way (the command's flags).
"""

from __future__ import annotations

import hashlib
import json
import math
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError

SCENARIOS = ("single-stream", "offline")
MODES = ("performance", "accuracy", "all")
DEFAULT_TIMEOUT_S = 1800.0


def _digest(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Cell:
    """One ``tinyharness run``: a benchmark on a SUT with options, in one scenario and mode."""

    benchmark: str
    sut: str
    scenario: str = "single-stream"
    mode: str = "all"
    model: str | None = None
    sut_options: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs, values as strings
    board: str | None = None  # a DUT board id: the cell runs where that board is attached
    run_args: tuple[str, ...] = ()  # further `tinyharness run` flags
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        for name in ("benchmark", "sut"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise UsageError(f"a sweep cell needs a {name}, got {getattr(self, name)!r}")
        if self.scenario not in SCENARIOS:
            raise UsageError(f"scenario {self.scenario!r} is not one of {', '.join(SCENARIOS)}")
        if self.mode not in MODES:
            raise UsageError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        timeout = float(self.timeout_s)
        if not math.isfinite(timeout) or timeout <= 0:
            raise UsageError(f"timeout_s {self.timeout_s!r} is not a positive number of seconds")
        options = dict(self.sut_options.items() if isinstance(self.sut_options, Mapping)
                       else self.sut_options)
        object.__setattr__(self, "sut_options", tuple(sorted((str(k), str(v)) for k, v in options.items())))
        object.__setattr__(self, "run_args", tuple(str(a) for a in self.run_args))
        object.__setattr__(self, "timeout_s", timeout)

    @property
    def id(self) -> str:
        """sha256 of the canonical JSON of every field but ``timeout_s``, first 12 hex digits."""
        document = self.to_dict()
        del document["timeout_s"]
        return _digest(document)

    @property
    def timed(self) -> bool:
        """Whether the cell needs a host timing slot: it measures performance with the host's
        clock. An unknown SUT counts as host-timed (never risk two timed runs on one host)."""
        if self.mode == "accuracy":
            return False
        from ..plugins import registry
        from ..sut import Timing

        try:
            return registry().get(self.sut).timing == Timing.HOST
        except UsageError:
            return True

    def resources(self) -> dict[str, float]:
        """What the cell holds while it runs (the engine's custom resources)."""
        held: dict[str, float] = {}
        if self.timed:
            held["timing"] = 1
        if self.board:
            held[f"board:{self.board}"] = 1
        return held

    def argv(self, output: Path, port: str | None = None) -> list[str]:
        """The ``tinyharness`` arguments (without the program, from ``run`` on); ``port`` is
        where the cell's board is attached on the machine that runs it."""
        args = ["run", "--benchmark", self.benchmark, "--sut", self.sut, "--scenario", self.scenario,
                "--mode", self.mode]
        if self.model is not None:
            args += ["--model", self.model]
        for key, value in self.sut_options:
            args += ["--sut-option", f"{key}={value}"]
        if self.board and port is not None:
            args += ["--sut-option", f"port={port}"]
        return [*args, *self.run_args, "--json", "--quiet", "--output", str(output)]

    def options_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.sut_options)

    def label(self) -> str:
        """Short, for progress lines: ``digits01 onnxruntime-cpu threads=2 offline``."""
        parts = [self.benchmark, self.sut, self.options_text(), self.scenario]
        if self.mode != "all":
            parts.append(self.mode)
        if self.model is not None:
            parts.append(Path(self.model).name)
        if self.board:
            parts.append(f"@{self.board}")
        return " ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return {"benchmark": self.benchmark, "sut": self.sut, "scenario": self.scenario,
                "mode": self.mode, "model": self.model, "sut_options": dict(self.sut_options),
                "board": self.board, "run_args": list(self.run_args), "timeout_s": self.timeout_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Cell":
        known = {"benchmark", "sut", "scenario", "mode", "model", "sut_options", "board",
                 "run_args", "timeout_s"}
        fields = {k: v for k, v in d.items() if k in known}
        fields["sut_options"] = tuple(dict(fields.get("sut_options") or {}).items())
        fields["run_args"] = tuple(fields.get("run_args") or ())
        return cls(**fields)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    cells: tuple[Cell, ...]
    boards: Mapping[str, str] = field(default_factory=dict, hash=False)  # board id -> serial port

    def __post_init__(self) -> None:
        if not self.cells:
            raise UsageError(f"sweep {self.name!r} has no cells: its matrix is empty")
        ids = [c.id for c in self.cells]
        if len(set(ids)) != len(ids):
            raise UsageError(f"sweep {self.name!r} lists one cell twice")
        object.__setattr__(self, "cells", tuple(self.cells))
        object.__setattr__(self, "boards", dict(self.boards))

    @property
    def id(self) -> str:
        """sha256 of the name and the sorted cell ids: the same spec always has the same id."""
        return _digest([self.name, sorted(c.id for c in self.cells)])

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "boards": dict(self.boards),
                "cells": [{**c.to_dict(), "id": c.id} for c in self.cells]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepSpec":
        return cls(str(d["name"]), tuple(Cell.from_dict(c) for c in d["cells"]), dict(d.get("boards") or {}))


# -- reading the TOML ------------------------------------------------------------------------------
MAX_SPEC_BYTES = 1 << 20


def load_spec(path: Path, *, run: Mapping[str, Any] | None = None,
              timeout_s: float | None = None) -> SweepSpec:
    """The sweep of a TOML file, validated by rules/sweep.schema.json and against the installed
    SUTs and benchmarks; each problem is a one-line UsageError naming the file and the key.
    ``run`` entries replace the file's ``[run]`` ones, ``timeout_s`` its timeout (the command's
    flags)."""
    path = Path(path)
    document = read_document(path)
    if run:
        document["run"] = {**(document.get("run") or {}), **run}
    if timeout_s is not None:
        document["timeout_s"] = timeout_s
    try:
        return spec_from_document(document, default_name=path.stem, base=path.parent)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


def read_document(path: Path) -> dict[str, Any]:
    """A TOML file as a dict (bounded read); unreadable TOML is a one-line UsageError."""
    import sys

    from ..fileio import read_bounded

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    data = read_bounded(Path(path), MAX_SPEC_BYTES, "sweep spec")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text; a sweep spec is a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None


def spec_from_document(document: Mapping[str, Any], *, default_name: str = "sweep",
                       base: Path | None = None) -> SweepSpec:
    """A spec from the TOML's document (or the same built from flags); relative model and
    dataset paths are taken from ``base`` (the spec's folder)."""
    from . import matrix

    check_schema(document)
    cells = [Cell(**fields) for fields in matrix.expand(document, base or Path.cwd(), DEFAULT_TIMEOUT_S)]
    first = {c.id: c for c in reversed(cells)}  # of cells alike, the first one made stays
    return SweepSpec(str(document.get("name") or default_name),
                     tuple(c for c in cells if first[c.id] is c), dict(document.get("boards") or {}))


def check_schema(document: Any) -> None:
    """rules/sweep.schema.json, the most relevant violation as one line naming the key."""
    from jsonschema.exceptions import relevance

    from ..schemas import _validator

    if isinstance(document, Mapping) and isinstance(document.get("run"), Mapping) \
            and "output" in document["run"]:
        raise UsageError("run.output: not allowed in a sweep; give --output to 'tinyharness sweep'")
    errors = list(_validator("sweep").iter_errors(document))
    if not errors:
        return
    error = max(errors, key=relevance)
    while error.validator in ("oneOf", "anyOf"):  # the branch of the value's own type says why
        fitting = _fitting(error)
        if not fitting:
            break
        error = max(fitting, key=relevance)
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message, shown = error.message, repr(error.instance)
    if message.startswith(shown):  # a long list said in a few items
        message = reprlib.repr(error.instance) + message[len(shown):]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        from ..errors import did_you_mean

        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if extra and allowed:
            message = (f"unknown key {extra[0]!r}{did_you_mean(extra[0], allowed)}; "
                       f"allowed: {', '.join(allowed)}")
    elif error.validator == "enum":
        from ..errors import did_you_mean

        choices = [str(c) for c in error.validator_value]
        message = (f"{error.instance!r} is not one of {', '.join(choices)}"
                   f"{did_you_mean(str(error.instance), choices)}")
    elif error.validator == "oneOf":
        message = f"{reprlib.repr(error.instance)} is not a valid value here"
    if len(message) > 300:
        message = message[:299] + "…"
    raise UsageError(f"{where}: {message}")


def _fitting(error) -> list:
    """The errors of the oneOf branches whose type the value has (the others only say that it
    is not of their type)."""
    branches: dict = {}
    for e in error.context or ():
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    return [e for found in branches.values()
            if not any(e.validator == "type" and not e.relative_path for e in found) for e in found]
