"""Runs that did not finish: a run directory whose status.json says it failed, was interrupted or
is still "running", or that has no summary.json. Readers leave it out with a one-line warning; a
report still lists it (:func:`tinyharness.results.read.load_runs`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..fileio import loads_json


@dataclass
class SkippedRun:
    """A run directory with nothing to measure in it: status.json says the run failed, was
    interrupted or never finished, or it has no summary.json. Readers leave it out with a warning;
    a report still lists it. What the run was comes from its (partial) summary where one reads,
    else from the directory's name, else "?"."""

    path: str
    state: str  # status.json's state ("failed", "interrupted", "running", "done"), or "unreadable"
    reason: str  # status.json's error, or what is missing
    benchmark: str = "?"
    sut: str = "?"
    scenario: str = "?"
    mode: str = ""  # "" when unknown
    started: str | None = None  # ISO time, when the partial summary has it
    position: int = 0  # the usable runs load_runs returns before this one
    label: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.benchmark, self.scenario

    @property
    def warning(self) -> str:
        path = re.sub(r"[\x00-\x1f\x7f]", "?", self.path)  # a folder named with a newline
        return f"skipped {path} (status: {self.state}): {self.reason}"



RUN_FILES = ("summary.json", "status.json", "partial_summary.json")  # any of them: a run directory
_DIR_NAME = re.compile(r"\d{8}-\d{6}(?:-[0-9a-f]{6})?_([^_]+)_([^_]+)_([^_]+?)(?:-\d+)?")


def _one_line(text: Any, limit: int = 300) -> str:
    """Text from a file as one line of a message: control characters and runs of spaces as one
    space, ``limit`` characters at most."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", str(text)[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _state(data: bytes | None, where: str) -> tuple[str, str]:
    """(state, reason) from status.json's bytes; ("done", "") for a run that finished, and for
    a run with no status.json (runs written before status.json existed)."""
    if data is None:
        return "done", ""
    try:
        document = loads_json(data, where)
    except UsageError as exc:
        return "unreadable", _one_line(exc)
    state = document.get("state") if isinstance(document, dict) else None
    if not isinstance(state, str) or not state:
        return "unreadable", f"{where} names no state"
    error = document.get("error")
    if isinstance(error, str) and error.strip():
        return _one_line(state, 40), _one_line(error)
    return _one_line(state, 40), {"running": "the run never finished (killed, or still running?)",
                                  "done": ""}.get(state, "no error recorded")


def _skipped(path: str, name: str, state: str, reason: str, summaries: list[bytes]) -> SkippedRun:
    """What is known of an unfinished run: the first (partial) summary that reads as an object
    gives its benchmark, SUT, scenario, mode and start; the directory's name the first three."""
    run = SkippedRun(path, state, reason)
    if match := _DIR_NAME.fullmatch(name):
        run.benchmark, run.sut, run.scenario = match.groups()
    for data in summaries:
        try:
            document = loads_json(data, path)
        except UsageError:
            continue
        if isinstance(document, dict):
            for field in ("benchmark", "sut", "scenario", "mode", "started"):
                if isinstance(value := document.get(field), str) and value:
                    setattr(run, field, _one_line(value, 80))
            break
    return run


def entry(path: str, name: str, files: dict[str, bytes], read):
    """A run directory's files (name -> bytes of status.json and the (partial) summaries) as a
    run (``read()`` makes it), or as a skipped run when it did not finish."""
    state, reason = _state(files.get("status.json"), f"{path}/status.json")
    if state == "done":
        if "summary.json" in files:
            return read()
        reason = "no summary.json" + (" (only a partial_summary.json)" if "partial_summary.json"
                                      in files else "")
        state = state if "status.json" in files else "no status.json"
    return _skipped(path, name, state, reason,
                    [files[n] for n in ("partial_summary.json", "summary.json") if n in files])
