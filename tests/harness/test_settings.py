"""TestSettings.resolve: overrides of the rule set and the INVALID reasons they produce."""

from __future__ import annotations

import json
import math

import pytest

from tinyharness.benchmark import Benchmark
from tinyharness.errors import UsageError
from tinyharness.settings import Mode, Scenario, TestSettings

RULES = {
    "id": "rs01",
    "title": "rule set for settings tests",
    "task": "test",
    "store_dir": "rs01",
    "labels": ["a", "b"],
    "dataset": {"id": "rs01", "path": "rs01", "label_file": "y_labels.csv",
                "sample_shape": [2], "sample_dtype": "uint8"},
    "transform": {"uint8": "identity"},
    "models": [{"file": "rs01.onnx", "format": "onnx", "precision": "float32", "default": True,
                "sha256": "0" * 64, "size": 1}],
    "quality": {"metric": "top1", "target": 50.0},
    "single_stream": {"min_duration_s": 10.0, "min_query_count": 200, "windows": 5, "window_min_s": 2.0},
    "offline": {"min_duration_s": 8.0, "min_query_count": 1024},
}


def make_benchmark(tmp_path, **changes) -> Benchmark:
    raw = json.loads(json.dumps(RULES))
    for key, value in changes.items():
        raw[key] = value
    path = tmp_path / f"{raw['id']}.json"
    path.write_text(json.dumps(raw))
    return Benchmark.from_file(path)


@pytest.fixture
def bench(tmp_path) -> Benchmark:
    return make_benchmark(tmp_path)


def test_rule_set_values_without_overrides(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", seed=3)
    assert (s.min_duration_s, s.min_query_count, s.windows, s.window_min_s) == (10.0, 200, 5, 2.0)
    assert s.overrides == ()
    assert s.seed == 3
    o = TestSettings.resolve(bench, "offline", "performance", seed=0)
    assert (o.min_duration_s, o.min_query_count) == (8.0, 1024)
    assert o.overrides == ()


def test_values_equal_to_the_rule_set_are_not_overrides(bench):
    s = TestSettings.resolve(bench, "single-stream", "all", 0, min_duration_s=10.0, min_query_count=200)
    assert s.overrides == ()


def test_shorter_duration_is_an_override_naming_the_setting(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, min_duration_s=5.0)
    assert s.min_duration_s == 5.0
    assert len(s.overrides) == 1
    reason = s.overrides[0]
    assert "min_duration" in reason
    assert "5" in reason and "10" in reason and "rs01" in reason
    assert s.window_min_s == 2.0  # 5 s still fits the 2 s windows


def test_fewer_queries_is_an_override_naming_the_setting(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, min_query_count=50)
    assert s.min_query_count == 50
    assert len(s.overrides) == 1
    assert "min_query_count" in s.overrides[0]
    assert "50" in s.overrides[0] and "200" in s.overrides[0]


def test_offline_fewer_samples_is_an_override(bench):
    s = TestSettings.resolve(bench, "offline", "performance", 0, min_query_count=100)
    assert s.min_query_count == 100
    assert len(s.overrides) == 1
    assert "min_query_count" in s.overrides[0] and "1024" in s.overrides[0]


def test_duration_shorter_than_a_window_shortens_the_windows(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, min_duration_s=1.0)
    assert s.min_duration_s == 1.0
    assert s.window_min_s == pytest.approx(0.2)  # 1 s / 5 windows
    assert len(s.overrides) == 2
    assert any("min_duration" in r for r in s.overrides)
    assert any("window" in r and "2" in r for r in s.overrides)


def test_window_shortening_has_a_floor(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, min_duration_s=0.0)
    assert s.min_duration_s == 0.0
    assert s.window_min_s == pytest.approx(0.01)


def test_stricter_settings_produce_no_reasons(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, min_duration_s=20.0,
                             min_query_count=5000)
    assert (s.min_duration_s, s.min_query_count) == (20.0, 5000)
    assert s.overrides == ()
    o = TestSettings.resolve(bench, "offline", "performance", 0, min_duration_s=9.0, min_query_count=2048)
    assert (o.min_duration_s, o.min_query_count) == (9.0, 2048)
    assert o.overrides == ()


def test_offline_duration_above_its_rule_is_not_an_override(tmp_path):
    bench = make_benchmark(tmp_path, offline={"min_duration_s": 1.0, "min_query_count": 1024})
    o = TestSettings.resolve(bench, "offline", "performance", 0, min_duration_s=1.5)
    assert o.min_duration_s == 1.5
    assert o.overrides == ()


def test_expected_qps_is_carried(bench):
    o = TestSettings.resolve(bench, "offline", "performance", 0, offline_expected_qps=1234.5)
    assert o.offline_expected_qps == 1234.5
    assert o.overrides == ()


@pytest.mark.parametrize("scenario", ["server", "multi-stream", "", "Single-Stream"])
def test_invalid_scenario_raises_usage_error(bench, scenario):
    with pytest.raises(UsageError, match="scenario"):
        TestSettings.resolve(bench, scenario, "performance", 0)


@pytest.mark.parametrize("mode", ["perf", "", "ACCURACY", "submission"])
def test_invalid_mode_raises_usage_error(bench, mode):
    with pytest.raises(UsageError, match="mode"):
        TestSettings.resolve(bench, "single-stream", mode, 0)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"min_duration_s": -1.0}, "min-duration"),
    ({"min_query_count": 0}, "min-queries"),
    ({"offline_expected_qps": 0.0}, "expected-qps"),
    ({"offline_expected_qps": -5.0}, "expected-qps"),
])
def test_invalid_values_raise_usage_error(bench, kwargs, word):
    with pytest.raises(UsageError, match=word):
        TestSettings.resolve(bench, "offline", "performance", 0, **kwargs)


# -- bounds (#6, #18): non-finite and out-of-range values are one-line usage errors -----------------

def one_line_usage_error(bench, **kwargs) -> str:
    kwargs.setdefault("seed", 0)
    with pytest.raises(UsageError) as info:
        TestSettings.resolve(bench, kwargs.pop("scenario", "offline"), "performance", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"min_duration_s": math.nan}, "--min-duration"),
    ({"min_duration_s": math.inf}, "--min-duration"),
    ({"min_duration_s": 1e308}, "--min-duration"),
    ({"min_duration_s": 86_400.5}, "--min-duration"),  # more than a day
    ({"min_duration_s": "10"}, "--min-duration"),  # not a number (API users)
    ({"offline_expected_qps": math.nan}, "--expected-qps"),
    ({"offline_expected_qps": math.inf}, "--expected-qps"),
    ({"offline_expected_qps": 1e12}, "--expected-qps"),
    ({"seed": -1}, "--seed"),
    ({"seed": 2**63}, "--seed"),
    ({"seed": 1.5}, "--seed"),
    ({"seed": True}, "--seed"),
    ({"min_query_count": 10**10}, "--min-queries"),
    ({"min_query_count": 2**27 + 1}, "--min-queries"),
    ({"min_query_count": 2.5}, "--min-queries"),
    ({"repeat": 0}, "--repeat"),
    ({"repeat": 101}, "--repeat"),
])
@pytest.mark.parametrize("scenario", ["offline", "single-stream"])
def test_non_finite_and_out_of_range_values_are_one_line_usage_errors(bench, kwargs, option, scenario):
    message = one_line_usage_error(bench, scenario=scenario, **kwargs)
    assert message.startswith(f"{option} must be "), message
    value = next(iter(kwargs.values()))
    assert repr(value) in message  # names what was given


def test_the_bounds_themselves_are_accepted(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", seed=2**63 - 1,
                             min_duration_s=86_400.0, min_query_count=2**27, repeat=100)
    assert (s.seed, s.min_duration_s, s.min_query_count, s.repeat) == (2**63 - 1, 86_400.0, 2**27, 100)
    o = TestSettings.resolve(bench, "offline", "performance", 0, min_duration_s=0.1,
                             offline_expected_qps=1e9)  # 1.1 x 0.1 s x 1e9/s = 1.1e8 <= 2^27
    assert o.offline_expected_qps == 1e9
    whole = TestSettings.resolve(bench, "offline", "performance", 0, min_query_count=2048.0)
    assert whole.min_query_count == 2048 and isinstance(whole.min_query_count, int)


def test_an_expected_rate_that_sizes_a_query_beyond_the_bound_names_one_that_fits(bench):
    # 1.1 x 10 s x 1e8/s = 1.1e9 samples > 2^27 = 134 217 728; floor(2^27 / 11) = 12 201 611
    message = one_line_usage_error(bench, min_duration_s=10.0, offline_expected_qps=1e8)
    assert message == ("--expected-qps 1e+08 with a 10 s minimum duration sizes an offline query "
                       "of 1100000000 samples, more than the 134217728 one run holds; give "
                       "--expected-qps 12201611 or less (or a shorter --min-duration)")
    ok = TestSettings.resolve(bench, "offline", "performance", 0, min_duration_s=10.0,
                              offline_expected_qps=12_201_611)
    assert ok.offline_expected_qps == 12_201_611
    with pytest.raises(UsageError, match="--expected-qps 1.22016e\\+07 with"):
        TestSettings.resolve(bench, "offline", "performance", 0, min_duration_s=10.0,
                             offline_expected_qps=12_201_612)
    # the rule set's duration counts when none is given (8 s): 1.1 x 8 x 2e7 = 1.76e8
    assert "1 s minimum" not in one_line_usage_error(bench, offline_expected_qps=2e7)
    # single-stream ignores the rate: only its own bounds apply
    s = TestSettings.resolve(bench, "single-stream", "performance", 0, offline_expected_qps=1e8)
    assert s.offline_expected_qps == 1e8


@pytest.mark.parametrize(("field", "value"), [
    ("min_duration_s", math.nan), ("min_duration_s", math.inf), ("min_query_count", 2**40),
    ("seed", -1), ("max_duration_s", math.inf), ("max_duration_s", -1.0), ("window_min_s", math.nan),
    ("window_min_s", 0.0), ("offline_expected_qps", math.inf), ("repeat", 10**6),
])
def test_settings_built_directly_defend_themselves(field, value):
    values = dict(scenario="offline", mode="performance", min_duration_s=1.0, min_query_count=1,
                  windows=5, window_min_s=1.0, seed=0)
    values[field] = value
    with pytest.raises(UsageError) as info:
        TestSettings(**values)
    assert "\n" not in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize(("mode", "perf", "acc"), [("performance", True, False),
                                                   ("accuracy", False, True), ("all", True, True)])
def test_mode_flags(bench, mode, perf, acc):
    s = TestSettings.resolve(bench, "single-stream", mode, 0)
    assert (s.runs_performance, s.runs_accuracy) == (perf, acc)


def test_to_dict_lists_overrides(bench):
    s = TestSettings.resolve(bench, "single-stream", "performance", 9, min_query_count=10)
    d = s.to_dict()
    assert d["overrides"] == list(s.overrides)
    assert isinstance(d["overrides"], list)
    assert d["scenario"] == "single-stream" and d["seed"] == 9 and d["min_query_count"] == 10
    json.dumps(d)  # serialisable


# -- Scenario and Mode ------------------------------------------------------------------------------

def test_scenario_and_mode_parse_their_values_and_print_as_them():
    assert Scenario.parse("offline") is Scenario.OFFLINE
    assert Scenario.parse(Scenario.SINGLE_STREAM) is Scenario.SINGLE_STREAM
    assert Mode.parse("all") is Mode.ALL
    assert str(Scenario.SINGLE_STREAM) == f"{Scenario.SINGLE_STREAM}" == "single-stream"
    assert f"{Mode.ACCURACY:>10}" == "  accuracy"
    assert Scenario.OFFLINE == "offline"  # a str: JSON and comparisons see the value


def test_unknown_scenario_names_the_choices_on_one_line():
    with pytest.raises(UsageError) as info:
        Scenario.parse("server")
    assert str(info.value) == "unknown scenario 'server'; use one of single-stream, offline"


def test_settings_hold_enums_whatever_they_were_given(bench):
    s = TestSettings("offline", "accuracy", 1.0, 1, 5, 1.0, 0)
    assert s.scenario is Scenario.OFFLINE and s.mode is Mode.ACCURACY
    r = TestSettings.resolve(bench, Scenario.SINGLE_STREAM, Mode.PERFORMANCE, 0)
    assert r.scenario is Scenario.SINGLE_STREAM and r.to_dict()["mode"] == "performance"


def test_rules_for_each_scenario(bench):
    assert bench.rules_for(Scenario.SINGLE_STREAM) is bench.single_stream
    assert bench.rules_for(Scenario.OFFLINE) is bench.offline
    assert bench.rules_for(Scenario.OFFLINE).min_query_count == 1024
