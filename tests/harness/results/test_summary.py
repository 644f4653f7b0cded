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
    assert document["schema_version"] == SCHEMA_VERSION == 3
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
    assert upgraded["schema_version"] == 3
    assert all(set(r) == {"code", "message"} for r in upgraded["invalid_reasons"])
    assert errors(upgraded, "summary") == []
    assert RunSummary.from_dict(upgraded).to_dict() == upgraded


def test_schema2_windows_latency_in_ms_reads_as_us():
    serial = next(p for p in SCHEMA1 if "serial" in p.parent.name)
    document = json.loads(serial.read_text())
    ms = document["windows"]["latency_ms"]
    upgraded = RunSummary.from_dict(document).to_dict()
    assert "latency_ms" not in upgraded["windows"]
    assert upgraded["windows"]["latency_us"] == pytest.approx(ms * 1000.0, abs=1e-6)


def test_every_latency_key_names_us_and_every_duration_s(written):
    """One unit per kind, named in every key: no ms anywhere in what a run writes."""
    def keys(value, path=""):
        if isinstance(value, dict):
            for k, v in value.items():
                yield f"{path}.{k}"
                yield from keys(v, f"{path}.{k}")
        elif isinstance(value, list):
            for v in value:
                yield from keys(v, f"{path}[]")
    for _, document in written.values():
        found = set(keys(document))
        assert not [k for k in found if k.endswith("_ms") or "latency_ms" in k], found
        assert {k for k in found if "latency" in k.rsplit(".", 1)[-1]} <= {
            ".latency_us", ".windows.latency_us", ".runtime_latency_us", ".stability.latency_cv",
            ".stability.latency_iqr_us"}


def test_summary_txt_lists_the_test_parameters_load_and_first_inference(written):
    summary, document = written["null", "single-stream", "all"]
    assert document["startup"]["load_s"] >= 0 and document["startup"]["first_inference_us"] > 0
    text = render.text(summary)
    assert "Test parameters used" in text
    for line in ("min_duration (s)          : 0.05", "min_query_count           : 100",
                 "windows                   : 5 of >= 0.01 s",
                 f"load time (s)             : {document['startup']['load_s']:.3f}",
                 f"first inference (us)      : {document['startup']['first_inference_us']:.3f}"):
        assert line in text.splitlines(), line


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
    (lambda d: dict(d, schema_version=4), "schema_version 4"),
    (lambda d: dict(d, valid="yes"), '"valid"'),
    (lambda d: dict(d, settings=3), '"settings"'),
    (lambda d: {k: v for k, v in d.items() if k != "benchmark"}, '"benchmark"'),
    # issue defect 15: dacite's own errors named no field, or quoted a value over two lines
    (lambda d: dict(d, invalid_reasons={"a": 1}), 'field "invalid_reasons" should be a list, not an object'),
    (lambda d: dict(d, latency_us=[1, 2]), 'field "latency_us" should be an object or null, not a list'),
    (lambda d: dict(d, sut="two\nlines" * 1000, benchmark=7), 'field "benchmark" should be a string, '
                                                              "not the number 7"),
    (lambda d: dict(d, latency_us=dict(d["latency_us"], p50="fast\nslow")),
     "field \"latency_us.p50\" should be a number, not the string 'fast\\nslow'"),
    (lambda d: dict(d, windows=dict(d["windows"], throughput_ips=[1.0, "x" * 5000])),
     'field "windows.throughput_ips[1]" should be a number, not the string \'xxxx'),
    (lambda d: dict(d, system=dict(d["system"], argv={"x": 1})), 'field "system.argv" should be a list'),
    (lambda d: dict(d, latency_us=dict(d["latency_us"], p90=float("nan"))),
     'field "latency_us.p90" is NaN, not a finite number'),
    (lambda d: dict(d, throughput_ips=float("inf")), 'field "throughput_ips" is infinite'),
    (lambda d: dict(d, schema_version=True), "schema_version True is not one"),
    (lambda d: dict(d, invalid_reasons=[1, 2]), 'field "invalid_reasons[0]" should be an object or a '
                                                "string, not the number 1"),
], ids=["list", "string", "future-version", "wrong-type", "wrong-section", "missing-key",
        "dict-for-list", "list-for-object", "long-value", "newline-in-value", "list-item", "nested-list",
        "nan", "infinity", "boolean-version", "number-reasons"])
def test_anything_else_is_a_one_line_usage_error(change, words):
    document = change(json.loads(SCHEMA1[0].read_text()))
    with pytest.raises(UsageError) as info:
        RunSummary.from_dict(document, "runs/x/summary.json")
    message = str(info.value)
    assert message.startswith("runs/x/summary.json: ") and words in message
    assert "\n" not in message and len(message) < 400
