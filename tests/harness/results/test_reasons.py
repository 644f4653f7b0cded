"""Invalid reasons: codes for schema-1 messages, the schema-2 form, and what each division blocks on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyharness.results import Reason, ReasonCode, RunSummary

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"


@pytest.mark.parametrize(("message", "code"), [
    ("min_duration overridden to 0.05 s (rule set digits01 requires 3 s)", ReasonCode.OVERRIDE),
    ("min_query_count overridden to 10 (rule set kws01 requires 1024)", ReasonCode.OVERRIDE),
    ("window duration shortened to 0.01 s (rule set digits01 requires 1 s)", ReasonCode.OVERRIDE),
    ("min duration not met: last query issued at 0.040 s, needs 0.05 s", ReasonCode.MIN_DURATION),
    ("min query count not met: 10 queries, needs 1024", ReasonCode.MIN_QUERIES),
    ("min sample count not met: 10, needs 1024", ReasonCode.MIN_QUERIES),
    ("early stopping not met: 20 queries, needs at least 64 for a p90 estimate (44 more)",
     ReasonCode.EARLY_STOPPING),
    ("3 performance windows, the rules require 5", ReasonCode.WINDOW_COUNT),
    ("window 2 ran 0.500 s, needs at least 1 s", ReasonCode.WINDOW_DURATION),
    ("accuracy 15.56 % top-1 is below the target 90", ReasonCode.ACCURACY_TARGET),
    ("AUC 0.8000 is below the target 0.85", ReasonCode.ACCURACY_TARGET),
    ("AUC is undefined: the label file lists only one class of file", ReasonCode.ACCURACY_UNDEFINED),
    ("the DUT rebooted twice", ReasonCode.OTHER),
    ("note: min duration not met", ReasonCode.OTHER),  # the wording must start the message
])
def test_legacy_messages_are_classified(message, code):
    assert Reason.from_value(message) == Reason(code, message)


def test_schema2_reasons_read_as_written_and_unknown_codes_as_other():
    written = {"code": "early-stopping", "message": "early stopping not met"}
    assert Reason.from_value(written) == Reason(ReasonCode.EARLY_STOPPING, "early stopping not met")
    assert Reason.from_value({"code": "from-the-future", "message": "m"}) == Reason(ReasonCode.OTHER, "m")
    assert str(Reason.from_value(written)) == "early stopping not met"


def test_only_the_accuracy_codes_are_about_the_quality_target():
    assert {c for c in ReasonCode if c.is_accuracy} == {ReasonCode.ACCURACY_TARGET,
                                                          ReasonCode.ACCURACY_UNDEFINED}


def summary_with(reasons: list, errors: list[str]) -> RunSummary:
    path = next(FIXTURE.glob("*kws01*/summary.json"))
    return RunSummary.from_dict(dict(json.loads(path.read_text()), invalid_reasons=reasons, errors=errors))


def test_the_open_division_drops_only_the_accuracy_reasons():
    summary = summary_with([
        "min_duration overridden to 1 s (rule set kws01 requires 10 s)",
        "accuracy 80.00 % top-1 is below the target 90",
        {"code": "accuracy-undefined", "message": "AUC is undefined"},
        {"code": "window-duration", "message": "window 1 ran 0.5 s"},
    ], errors=["the DUT stopped answering"])
    assert summary.blocking_reasons("closed") == [
        "min_duration overridden to 1 s (rule set kws01 requires 10 s)",
        "accuracy 80.00 % top-1 is below the target 90", "AUC is undefined", "window 1 ran 0.5 s",
        "the DUT stopped answering"]
    assert summary.blocking_reasons() == summary.blocking_reasons("closed")
    assert summary.blocking_reasons("open") == [
        "min_duration overridden to 1 s (rule set kws01 requires 10 s)", "window 1 ran 0.5 s",
        "the DUT stopped answering"]


def test_a_valid_run_blocks_nowhere():
    summary = summary_with([], [])
    assert summary.blocking_reasons("closed") == summary.blocking_reasons("open") == []
