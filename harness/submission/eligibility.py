"""Which runs can stand as MLPerf Tiny results: the one set of rules that ``tinyharness package``
refuses runs by and ``tinyharness check`` reports embedded runs by.

Each rule broken is ``(rule, message)``; the rule is the checker's violation name, the message a
sentence without the run's name (each caller says where).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING

from .layout import SHORT

if TYPE_CHECKING:
    from ..results.summary import RunSummary

SCENARIO = "single-stream"  # MLPerf Tiny measures one query at a time


def problems(summary: "RunSummary", division: str) -> list[tuple[str, str]]:
    """Every reason ``summary``'s run cannot provide results in ``division`` ("closed"/"open")."""
    found: list[tuple[str, str]] = []
    if summary.benchmark not in SHORT:
        found.append(("benchmark", f"{summary.benchmark} is not an MLPerf Tiny benchmark (digits01 is the "
                      f"embedded quick start); only {', '.join(SHORT)} runs are MLPerf Tiny results"))
    if summary.scenario != SCENARIO:
        found.append(("run-invalid", f"a run of the {summary.scenario} scenario; MLPerf Tiny results "
                                     f"come from {SCENARIO} runs"))
    found += _validity(summary, division)
    model = summary.model
    if division == "closed" and not model.on_device and not model.reference:
        found.append(("closed-model", f"{PurePath(model.path).name} is not one of the rule set's "
                                      "reference models; the closed division requires one"))
    if division == "closed" and model.on_device:
        found += _device_model(summary)
    if division == "closed":
        found += _unverified(summary) + _emulated(summary)
    found += _measured(summary)
    return found


def _device_model(summary: "RunSummary") -> list[tuple[str, str]]:
    """A model on a device is identified by the model file its firmware was built from, named for
    the run (serial: ``--sut-option model_file=PATH``) and hashed: its sha256 must be one of the
    rule set's reference models of the benchmark (checked against the rule set, not the run's own
    ``reference``). The open division takes any firmware."""
    from ..benchmark import load_benchmarks

    model = summary.model
    if model.sha256 is None:
        return [("closed-model", "the model on the device is not identified (sha256 n/a); name the "
                 "reference model file its firmware was built from (serial: --sut-option "
                 "model_file=PATH) and run again: the closed division requires a reference model")]
    bench = load_benchmarks().get(summary.benchmark)
    if bench is None:
        return []  # not an MLPerf Tiny benchmark: the 'benchmark' rule says so
    if not any(entry.sha256 == model.sha256 for entry in bench.models):
        return [("closed-model", f"the device's model {PurePath(model.path).name} (sha256 "
                 f"{model.sha256[:16]}...) is not one of the {bench.id} rule set's reference models; "
                 "the closed division requires one (flash a reference model and name its file)")]
    return []


def _unverified(summary: "RunSummary") -> list[tuple[str, str]]:
    """A serial run that opted out of reading its uploads back (``--sut-option verify=0``): a hex
    digit flipped on the wire is still valid hex, so its inputs, and so its results, are unchecked.
    The run's SUT configuration records the choice (schema 2; schema-1 runs record none)."""
    config = summary.settings.sut_config or {}
    if summary.sut == "serial" and config.get("verify") is False:
        return [("closed-unverified", "the serial run did not verify its sample uploads "
                 "(--sut-option verify=0); the closed division requires each upload read back "
                 "from the device (verify=1, the default)")]
    return []


def _emulated(summary: "RunSummary") -> list[tuple[str, str]]:
    """A run on an emulated board (the qemu SUT records ``emulated: true``): its latency is an
    emulator's virtual time, an instruction count, not a measurement of hardware."""
    extra = summary.system.sut.extra if summary.system is not None else {}
    if isinstance(extra, dict) and extra.get("emulated") is True:
        return [("closed-emulated", "the run is on an emulated board (QEMU virtual time, not "
                 "cycle-accurate); the closed division requires hardware: package it in the open "
                 "division")]
    return []


def _validity(summary: "RunSummary", division: str) -> list[tuple[str, str]]:
    """The run's own verdict; the open division accepts an accuracy below the target (the run
    model decides which reasons those are, by code)."""
    blocking = summary.blocking_reasons(division)
    if blocking:
        return [("run-invalid", f"the run is INVALID: {blocking[0]}")]
    if not summary.valid and not summary.invalid_reasons:  # no reason at all: not a runner's summary
        return [("run-invalid", "the run is INVALID and summary.json gives no reason")]
    return []


def _measured(summary: "RunSummary") -> list[tuple[str, str]]:
    """The values the result lines are made of (an undefined AUC passes the open division's
    verdict, but there is no number to report)."""
    found = []
    if "accuracy" in summary.tests and (summary.accuracy is None or summary.accuracy.value is None):
        found.append(("result-missing", "the run measured no accuracy value for its accuracy test"))
    if "performance" in summary.tests and summary.windows is None:
        found.append(("result-missing", "the run measured no performance windows for its performance test"))
    return found
