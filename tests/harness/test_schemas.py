"""The JSON schemas in rules/ and the benchmark rule sets that must follow them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tinyharness.benchmark import Benchmark, get_benchmark, load_benchmarks
from tinyharness.errors import UsageError
from tinyharness.schemas import SchemaError, errors, validate

RULES = Path(__file__).resolve().parents[2] / "rules"
SCHEMAS = sorted(RULES.glob("*.schema.json"))
RULE_SETS = sorted((RULES / "benchmarks").glob("*.json"))


def test_the_expected_schemas_exist():
    names = {p.name for p in SCHEMAS}
    assert {"benchmark.schema.json", "status.schema.json", "detail_line.schema.json",
            "summary.schema.json", "accuracy.schema.json"} <= names
    assert RULE_SETS, "no rule sets in rules/benchmarks"


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path):
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(path.name)


@pytest.mark.parametrize("path", RULE_SETS, ids=lambda p: p.name)
def test_rule_set_validates_and_loads(path):
    raw = json.loads(path.read_text())
    schema = json.loads((RULES / "benchmark.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(raw)
    bench = Benchmark.from_file(path)
    assert bench.id == raw["id"] == path.stem
    assert bench.single_stream.min_query_count == raw["single_stream"]["min_query_count"]
    assert bench.offline.min_duration_s == raw["offline"]["min_duration_s"]
    assert bench.sample_shape == tuple(raw["dataset"]["sample_shape"])
    # every transform named is one the QSL knows
    assert {t["kind"] for t in bench.transform.values()} <= {
        "identity", "minus128", "float", "scale", "dequantize", "quantize"}
    # exactly one default model per format, and each model's store path is inside its folder
    formats = [m.format for m in bench.models if m.default]
    assert len(formats) == len(set(formats)) >= 1


def test_load_benchmarks_finds_every_rule_set_and_the_default():
    found = load_benchmarks()
    assert set(found) == {p.stem for p in RULE_SETS}
    assert get_benchmark(None).id == "digits01"
    with pytest.raises(UsageError, match="no-such-bench"):
        get_benchmark("no-such-bench")


def _valid_rule_set() -> dict:
    return json.loads((RULES / "benchmarks" / "digits01.json").read_text())


@pytest.mark.parametrize("missing", ["offline", "quality", "dataset", "single_stream", "labels"])
def test_rule_set_missing_a_key_is_a_usage_error(tmp_path, missing):
    raw = _valid_rule_set()
    del raw[missing]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UsageError) as info:
        Benchmark.from_file(path)
    assert missing in str(info.value)
    assert "broken.json" in str(info.value)


@pytest.mark.parametrize(("section", "key", "value"), [
    ("single_stream", "min_query_count", 0),
    ("single_stream", "window_min_s", 0),
    ("offline", "min_duration_s", -1),
    ("offline", "extra_setting", 5),
    ("dataset", "sample_dtype", "float64"),
    ("quality", "metric", "top5"),
])
def test_rule_set_with_a_bad_value_is_a_usage_error(tmp_path, section, key, value):
    raw = _valid_rule_set()
    raw[section][key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UsageError, match="benchmark.schema.json"):
        Benchmark.from_file(path)


def test_rule_set_that_is_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{ not json")
    with pytest.raises(UsageError, match="cannot read rule set"):
        Benchmark.from_file(path)
    with pytest.raises(UsageError, match="cannot read rule set"):
        Benchmark.from_file(tmp_path / "absent.json")


def test_validate_raises_usage_error_for_input_and_schema_error_for_output():
    bad = {"state": "weird", "error": None, "time": "t", "files": []}
    with pytest.raises(UsageError, match="status.schema.json"):
        validate(bad, "status")
    with pytest.raises(SchemaError, match="status.schema.json"):
        validate(bad, "status", user_input=False)
    validate({"state": "done", "error": None, "time": "t", "files": []}, "status")


def test_errors_lists_every_violation_with_its_path():
    bad = {"state": "weird", "error": 3, "time": "t", "files": [1]}
    found = errors(bad, "status")
    assert len(found) == 3
    assert any(line.startswith("state:") for line in found)
    assert any(line.startswith("error:") for line in found)
    assert any(line.startswith("files/0:") for line in found)
    assert errors({"state": "done", "error": None, "time": "t", "files": []}, "status") == []
    with pytest.raises(UsageError, match=r"and 2 more"):
        validate(bad, "status")


def test_accuracy_schema_requires_upper_case_hex():
    assert errors([{"seq_id": 0, "qsl_idx": 3, "data": "0AFF"}], "accuracy") == []
    assert errors([{"seq_id": 0, "qsl_idx": 3, "data": "0aff"}], "accuracy") != []
    assert errors([{"seq_id": 0, "qsl_idx": 3, "data": "0AF"}], "accuracy") != []


def test_new_summary_sections_are_checked():
    """repetitions, stability, runtime_latency_us: present and well formed, or refused."""
    import json
    from pathlib import Path

    from tinyharness.schemas import errors

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"
    base = json.loads(next(fixture.glob("*_onnxruntime-cpu_*")).joinpath("summary.json").read_text())
    run = {"index": 1, "queries": 10, "p50_us": 5.0, "p90_us": 6.0, "p90_early_stopping_us": 6.1,
           "throughput_ips": 1000.0, "duration_s": 0.1, "reasons": []}
    spread = {"p50_max_over_min": 1.0, "p90_max_over_min": 1.0, "throughput_max_over_min": 1.0,
              "p50_cv": 0.0, "throughput_cv": 0.0}
    good = {"count": 2, "runs": [run, run | {"index": 2}], "spread": spread}
    assert errors(base | {"repetitions": good}, "summary") == []
    assert errors(base | {"repetitions": good | {"runs": [run]}}, "summary")  # one is no repetition
    assert errors(base | {"repetitions": good | {"spread": spread | {"p50_cv": -1}}}, "summary")
    bad_reason = run | {"reasons": ["a plain string"]}
    assert errors(base | {"repetitions": good | {"runs": [run, bad_reason]}}, "summary")
    lat = {"count": 3, "min": 1.0, "mean": 2.0, "p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0}
    assert errors(base | {"runtime_latency_us": lat}, "summary") == []
    assert errors(base | {"runtime_latency_us": {"count": 3}}, "summary")
    assert errors(base | {"stability": {"unstable": True}}, "summary")  # every figure is required
    assert errors(base | {"unknown_section": 1}, "summary")
