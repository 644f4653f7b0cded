"""A sweep document's matrix as cells: the product of its lists, less the ``[[exclude]]`` partial
matches, plus the ``[[include]]`` cells (GitHub Actions' rules), each checked against the installed
SUTs and benchmarks before anything runs.

An option or a board applies only to the SUTs that accept it (``threads`` to host runtimes, a board
to SUTs that take a ``port``): the other SUTs' cells are made without it, and the duplicates that
leaves are dropped, so ``sut = ["null", "onnxruntime-cpu"]`` with ``threads = [1, 2]`` is three cells.
"""

from __future__ import annotations

import dataclasses
import math
from itertools import product
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError, canonical, did_you_mean

AXES = ("benchmark", "sut", "scenario", "mode", "model", "board")
RUN_DEFAULTS: dict[str, Any] = {"benchmark": "digits01", "scenario": "single-stream", "mode": "all",
                                "model": None, "board": None}
RUN_FLAGS = {"min_duration": "--min-duration", "min_queries": "--min-queries", "dataset": "--dataset",
             "seed": "--seed", "repeat": "--repeat", "query_timeout": "--query-timeout",
             "expected_qps": "--expected-qps", "metric": "--metric"}
MAX_CELLS = 10_000
PORT = "port"  # the option a DUT SUT takes its serial port in; a cell's board fills it


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """An option value as ``--sut-option`` takes it (TOML's true is 'true', 0.5 is '0.5')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _key(text: str) -> str:
    """An option key as SUT configs match it: any case, '-' for '_'."""
    return str(text).strip().casefold().replace("-", "_")


class _Names:
    """The installed SUTs and the benchmark rule sets, looked up once per document."""

    def __init__(self, base: Path) -> None:
        from ..benchmark import load_benchmarks
        from ..plugins import registry

        self.base, self.registry = base, registry()
        self.benchmarks = sorted(load_benchmarks())

    def sut(self, name: str, where: str) -> str:
        try:
            return self.registry.get(name).name
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None

    def benchmark(self, name: str, where: str) -> str:
        found = canonical(name, self.benchmarks)
        if found is None:
            raise UsageError(f"{where}: unknown benchmark {name!r}{did_you_mean(name, self.benchmarks)}; "
                             f"known: {', '.join(self.benchmarks)} (see 'tinyharness benchmarks')")
        return found

    def path(self, text: str, where: str, folder: bool = False) -> str:
        path = Path(text).expanduser()
        path = path if path.is_absolute() else self.base / path
        if not (path.is_dir() if folder else path.exists()):
            raise UsageError(f"{where}: no {'folder' if folder else 'file'} {path}")
        return str(path.resolve())

    def value(self, axis: str, value: str, where: str) -> str:
        if axis == "sut":
            return self.sut(value, where)
        if axis == "benchmark":
            return self.benchmark(value, where)
        return self.path(value, where) if axis == "model" else value

    def options(self, sut: str) -> dict[str, str]:
        """The options ``sut`` accepts: matching key -> field name."""
        config = self.registry.get(sut).config_class
        return {_key(f.name): f.name for f in dataclasses.fields(config)}


def expand(document: Mapping[str, Any], base: Path, default_timeout_s: float) -> list[dict[str, Any]]:
    """Every cell of the document as ``Cell`` fields, in matrix order then include order (the
    duplicates the options that do not apply leave are for the caller to drop, by cell id)."""
    matrix, includes = document.get("matrix") or {}, document.get("include") or []
    if not matrix and not includes:
        raise UsageError("matrix: empty; list at least one SUT under [matrix] (sut = [...]) or "
                         "add an [[include]]")
    names = _Names(base)
    timeout = float(document.get("timeout_s", default_timeout_s))
    run_args = run_arguments(document.get("run") or {}, names)
    axes = _axes(matrix, names) if matrix else {}
    cells = _product(document, axes, names, timeout, run_args) if matrix else []
    for i, entry in enumerate(includes):
        cells.append(_include(entry, f"include.{i}", axes, names, timeout, run_args))
    return cells


def run_arguments(run: Mapping[str, Any], names: _Names) -> tuple[str, ...]:
    """``[run]`` as ``tinyharness run`` flags."""
    args: list[str] = []
    for key, flag in RUN_FLAGS.items():
        if key not in run:
            continue
        for value in _listed(run[key]):
            text = names.path(value, f"run.{key}", folder=True) if key == "dataset" else _text(value)
            args += [flag, text]
    return tuple(args)


def _axes(matrix: Mapping[str, Any], names: _Names) -> dict[str, list]:
    if "sut" not in matrix:
        raise UsageError("matrix.sut: missing; name at least one SUT (see 'tinyharness suts')")
    axes = {axis: [names.value(axis, v, f"matrix.{axis}") for v in _listed(matrix[axis])]
            if axis in matrix else [RUN_DEFAULTS[axis]] for axis in AXES}
    options: dict[str, list[str]] = {}
    for key, values in (matrix.get("sut_options") or {}).items():
        options[_option_key(key, axes["sut"], names)] = [_text(v) for v in _listed(values)]
    if matrix.get("board") and not any(PORT in names.options(s) for s in axes["sut"]):
        raise UsageError(f"matrix.board: no SUT of the sweep takes a {PORT} ({', '.join(axes['sut'])}); "
                         "boards are for DUT SUTs such as serial")
    total = math.prod(len(v) for v in [*axes.values(), *options.values()])
    if total > MAX_CELLS:
        raise UsageError(f"matrix: {total:,} combinations, more than the {MAX_CELLS:,} a sweep may have; "
                         "split it into several sweeps")
    return {**axes, **{f"sut_options.{k}": v for k, v in options.items()}}


def _option_key(key: str, suts: list[str], names: _Names) -> str:
    """The field name of option ``key`` for the first SUT of the sweep that accepts it."""
    for sut in suts:
        found = names.options(sut).get(_key(key))
        if found is not None:
            return found
    known = sorted({name for sut in suts for name in names.options(sut).values()})
    raise UsageError(f"matrix.sut_options.{key}: no SUT of the sweep accepts it"
                     f"{did_you_mean(key, known)}; they accept: {', '.join(known) or 'no options'}")


def _product(document, axes: dict[str, list], names: _Names, timeout: float,
             run_args: tuple[str, ...]) -> list[dict[str, Any]]:
    excludes = [_exclude(e, f"exclude.{i}", names) for i, e in enumerate(document.get("exclude") or [])]
    keys, cells, checked = list(axes), [], {}
    for combo in product(*axes.values()):
        raw = dict(zip(keys, combo))
        if any(_matches(ex, raw) for ex in excludes):
            continue
        fields = {axis: raw[axis] for axis in AXES}
        options = {k.partition(".")[2]: v for k, v in raw.items() if k.startswith("sut_options.")}
        cells.append(_cell(fields, options, names, timeout, run_args, "matrix", checked, strict=False))
    return cells


def _exclude(entry: Mapping[str, Any], where: str, names: _Names) -> dict[str, set]:
    """An exclude as {axis or 'sut_options.<key>': the values it matches}."""
    found = {axis: {names.value(axis, v, f"{where}.{axis}") for v in _listed(entry[axis])}
             for axis in AXES if axis in entry}
    for key, values in (entry.get("sut_options") or {}).items():
        found[f"sut_options.{_key(key)}"] = {_text(v) for v in _listed(values)}
    return found


def _matches(exclude: dict[str, set], raw: dict[str, Any]) -> bool:
    by_key = {(f"sut_options.{_key(k.partition('.')[2])}" if k.startswith("sut_options.") else k): v
              for k, v in raw.items()}
    return all(by_key.get(k, object()) in values for k, values in exclude.items())


def _cell(fields: dict[str, Any], options: dict[str, str], names: _Names, timeout: float,
          run_args: tuple[str, ...], where: str, checked: dict, strict: bool) -> dict[str, Any]:
    """The cell of one combination, keeping only the options (and board) its SUT accepts; with
    ``strict`` (an include), an option the SUT does not accept is an error."""
    sut = fields["sut"]
    accepted = names.options(sut)
    if not strict:
        options = {k: v for k, v in options.items() if _key(k) in accepted}
        fields = {**fields, "board": fields["board"] if PORT in accepted else None}
    elif fields["board"] and PORT not in accepted:
        raise UsageError(f"{where}.board: SUT {sut!r} takes no {PORT}; boards are for DUT SUTs")
    if fields["board"] and any(_key(k) == PORT for k in options):
        raise UsageError(f"{where}.sut_options.{PORT}: a cell with a board gets its port from "
                         "[boards] (or the cluster node); leave it out")
    key = (sut, tuple(sorted(options.items())), bool(fields["board"]))
    if key not in checked:
        # a board cell's port comes from where the board is attached: check with a stand-in
        given = {**options, PORT: "board-port"} if fields["board"] else options
        try:
            names.registry.get(sut).config_class.parse(given, sut)
        except UsageError as exc:
            raise UsageError(f"{where}.sut_options: {exc}") from None
        checked[key] = True
    return {**fields, "sut_options": tuple(options.items()), "run_args": run_args, "timeout_s": timeout}


def _include(entry: Mapping[str, Any], where: str, axes: dict[str, list], names: _Names,
             timeout: float, run_args: tuple[str, ...]) -> dict[str, Any]:
    """An include: its own values, else the matrix's where it has one value, else run's defaults."""
    fields: dict[str, Any] = {}
    for axis in AXES:
        if axis in entry:
            fields[axis] = names.value(axis, entry[axis], f"{where}.{axis}")
        elif len(axes.get(axis, ())) == 1:
            fields[axis] = axes[axis][0]
        elif axis == "sut":
            raise UsageError(f"{where}.sut: missing; an include names its SUT unless the matrix has one")
        else:
            fields[axis] = RUN_DEFAULTS[axis]
    accepted = names.options(fields["sut"])
    options = {k.partition(".")[2]: v[0] for k, v in axes.items()
               if k.startswith("sut_options.") and len(v) == 1 and _key(k.partition(".")[2]) in accepted}
    options.update({accepted.get(_key(k), k): _text(v) for k, v in (entry.get("sut_options") or {}).items()})
    return _cell(fields, options, names, float(entry.get("timeout_s", timeout)), run_args, where,
                 {}, strict=True)
