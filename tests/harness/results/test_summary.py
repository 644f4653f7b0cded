"""RunSummary: what the runner writes reads back unchanged; schema-1 files read, upgrade to schema 2
and render as they did; anything else is a one-line UsageError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import DeviceFake, registered
from tinyharness.errors import UsageError
from tinyharness.progress import Progress
from tinyharness.results import SCHEMA_VERSION, ReasonCode, RunSummary, render
from tinyharness.runner import Run, RunRequest
from tinyharness.schemas import errors

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SCHEMA1 = sorted(FIXTURES.glob("*/summary.json"))
RUNS = [("null", "single-stream", "all"), ("null", "offline", "all"), ("fake-device", "single-stream",
                                                                        "performance")]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[tuple[str, str, str], tuple[RunSummary, dict]]:
    """Short runs of this version: the summary returned and the summary.json written."""
    out, found = tmp_path_factory.mktemp("runs"), {}
    with registered(DeviceFake):
        for sut, scenario, mode in RUNS:
            request = RunRequest(sut=sut, scenario=scenario, mode=mode, output=out, min_duration_s=0.05)
            summary, run_dir = Run(request).execute(Progress(enabled=False))
            found[sut, scenario, mode] = summary, json.loads((run_dir.path / "summary.json").read_text())
    return found


@pytest.mark.parametrize("run", RUNS, ids="-".join)
def test_a_written_summary_reads_back_unchanged(written, run):
    summary, document = written[run]
    assert document["schema_version"] == SCHEMA_VERSION == 2
    assert summary.to_dict() == document
    assert RunSummary.from_dict(document).to_dict() == document
    assert errors(document, "summary") == []


def test_written_reasons_are_code_and_message(written):
    summary, document = written["null", "single-stream", "all"]
    # 0.05 s overrides the rule set's duration and window length; the null SUT misses the target
    codes = [r["code"] for r in document["invalid_reasons"]]
    assert codes[:2] == ["override", "override"] and "accuracy-target" in codes
    assert document["invalid_reasons"][0]["message"].startswith("min_duration overridden to 0.05 s")
    assert document["valid"] is False and summary.valid is False


@pytest.mark.parametrize("path", SCHEMA1, ids=lambda p: p.parent.name)
def test_schema1_fixture_reads_and_upgrades(path):
    document = json.loads(path.read_text())
    assert document.get("schema_version", 1) == 1
    summary = RunSummary.from_dict(document, str(path))
    assert [r.message for r in summary.invalid_reasons] == document["invalid_reasons"]
    upgraded = summary.to_dict()
    assert upgraded["schema_version"] == 2
    assert all(set(r) == {"code", "message"} for r in upgraded["invalid_reasons"])
    assert errors(upgraded, "summary") == []
    assert RunSummary.from_dict(upgraded).to_dict() == upgraded


def test_schema1_reasons_get_their_codes():
    offline = next(p for p in SCHEMA1 if "offline" in p.parent.name)
    summary = RunSummary.from_dict(json.loads(offline.read_text()))
    assert [r.code for r in summary.invalid_reasons] == [ReasonCode.OVERRIDE, ReasonCode.MIN_DURATION]


@pytest.mark.parametrize("path", SCHEMA1, ids=lambda p: p.parent.name)
def test_schema1_fixture_renders_its_own_summary_txt(path):
    summary = RunSummary.from_dict(json.loads(path.read_text()))
    assert render.text(summary) == (path.parent / "summary.txt").read_text()


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: [d], "not a run summary"),
    (lambda d: "summary", "not a run summary"),
    (lambda d: dict(d, schema_version=3), "schema_version 3"),
    (lambda d: dict(d, valid="yes"), '"valid"'),
    (lambda d: dict(d, settings=3), '"settings"'),
    (lambda d: {k: v for k, v in d.items() if k != "benchmark"}, '"benchmark"'),
], ids=["list", "string", "future-version", "wrong-type", "wrong-section", "missing-key"])
def test_anything_else_is_a_one_line_usage_error(change, words):
    document = change(json.loads(SCHEMA1[0].read_text()))
    with pytest.raises(UsageError) as info:
        RunSummary.from_dict(document, "runs/x/summary.json")
    message = str(info.value)
    assert message.startswith("runs/x/summary.json: ") and words in message
    assert "\n" not in message
