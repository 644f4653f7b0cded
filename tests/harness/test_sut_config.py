"""A SUT's options as a typed config: parsing ``--sut-option`` strings, one-line errors that name the
option, the SUT's view of it (``options()``, ``self.config``, ``threads()``)."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError, dataclass

import pytest

from fakes import FakeSUT
from tinyharness.errors import UsageError
from tinyharness.sut_config import (HostConfig, SUTConfig, choice, flag, float_range, int_range,
                                    max_threads, non_negative_int, option, positive_float,
                                    positive_int, thread_count)


@dataclass(frozen=True)
class BoardConfig(HostConfig):
    port: str | None = option("serial port, required")
    precision: str = option("f32 (default) or f16", choice("f32", "f16"), "f32")
    timeout: float = option("seconds per line (default 5)", positive_float, 5.0)
    retries: int = option("retries (default 3)", non_negative_int, 3)
    verify: bool = option("1: read uploads back", flag, False)

    def __post_init__(self) -> None:
        if not self.port:
            raise UsageError("SUT 'board' needs the DUT's serial port: --sut-option port=/dev/ttyACM0")


def one_line_error(raw: dict[str, str], config=BoardConfig) -> str:
    with pytest.raises(UsageError) as info:
        config.parse(raw, "board")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_values_are_parsed_to_their_types():
    c = BoardConfig.parse({"port": "/dev/ttyACM0", "threads": "2", "precision": "f16", "timeout": "0.5",
                           "retries": "0", "verify": "yes"})
    assert (c.port, c.threads, c.precision, c.timeout, c.retries, c.verify) == (
        "/dev/ttyACM0", 2, "f16", 0.5, 0, True)
    assert BoardConfig.parse({"port": "p", "verify": "0"}).verify is False


def test_defaults_and_to_dict():
    c = BoardConfig.parse({"port": "socket://localhost:1"})
    assert c.to_dict() == {"threads": None, "port": "socket://localhost:1", "precision": "f32",
                           "timeout": 5.0, "retries": 3, "verify": False}
    assert SUTConfig.parse({}).to_dict() == {}
    with pytest.raises(FrozenInstanceError):
        c.retries = 5


def test_an_unknown_key_names_it_and_what_is_accepted():
    message = one_line_error({"port": "p", "thread": "2"})
    assert "'board' does not accept option(s) thread" in message
    assert "accepted: port, precision, retries, threads, timeout, verify" in message
    assert "accepted: none" in one_line_error({"x": "1"}, SUTConfig)


@pytest.mark.parametrize(("key", "text", "expected"), [
    ("threads", "0", "expected an integer from 1 to 8 (4 x the 2 CPU cores)"),
    ("threads", "two", "expected an integer from 1 to 8 (4 x the 2 CPU cores)"),
    ("threads", "1.5", "expected an integer from 1 to 8 (4 x the 2 CPU cores)"),
    ("threads", "9" * 5000, "expected an integer from 1 to 8 (4 x the 2 CPU cores)"),
    ("precision", "int8", "expected one of f32, f16"),
    ("precision", "bf16", "expected one of f32, f16 (did you mean 'f16'?)"),
    ("precision", "fp16", "expected one of f32, f16 (did you mean 'f16'?)"),
    ("timeout", "-1", "expected a finite number above 0 to 1e+09"),
    ("timeout", "soon", "expected a finite number above 0 to 1e+09"),
    ("timeout", "inf", "expected a finite number above 0 to 1e+09"),
    ("retries", "-1", f"expected an integer from 0 to {2**63 - 1}"),
    ("retries", "three", f"expected an integer from 0 to {2**63 - 1}"),
    ("verify", "maybe", "expected 0 or 1 (or true/false, yes/no, on/off)"),
])
def test_a_bad_value_is_one_line_naming_the_option_the_value_and_what_is_expected(
        two_cores, key, text, expected):
    """Issue: threads=two said "invalid literal for int() with base 10": never Python's words."""
    message = one_line_error({"port": "p", key: text})
    shown = text if len(text) <= 60 else text[:57] + "..."
    assert message == f"--sut-option {key}={shown}: {expected}"
    assert "invalid literal" not in message and "could not convert" not in message


def test_an_unprintable_value_is_quoted_on_one_line(two_cores):
    message = one_line_error({"port": "p", "threads": "1\n2"})
    assert message == "--sut-option threads='1\\n2': expected an integer from 1 to 8 (4 x the 2 CPU cores)"


def test_a_plugin_parsers_python_message_is_replaced_by_what_the_type_expects():
    def raw_int(text):  # a plugin's parser that lets int()'s own message through
        return int(text)

    def must(text):
        raise ValueError("must be 1..38 bytes")

    @dataclass(frozen=True)
    class PluginConfig(SUTConfig):
        chunk: int = option("bytes per upload", raw_int, 31)
        ratio: float = option("a ratio", float, 0.5)
        size: int = option("bytes", must, 1)

    assert one_line_error({"chunk": "x"}, PluginConfig) == "--sut-option chunk=x: expected an integer"
    assert one_line_error({"ratio": "x"}, PluginConfig) == "--sut-option ratio=x: expected a number"
    assert one_line_error({"size": "0"}, PluginConfig) == "--sut-option size=0: expected 1..38 bytes"


def test_choices_and_flags_match_in_any_case():
    c = BoardConfig.parse({"port": "p", "precision": "F16", "verify": "YES"})
    assert (c.precision, c.verify) == ("f16", True)
    assert BoardConfig.parse({"port": "p", "verify": "Off"}).verify is False


def test_keys_match_in_any_case_and_with_dashes():
    assert BoardConfig.parse({"port": "p", "Threads": "2"}).threads == 2
    from tinyharness.suts.serial.config import SerialConfig

    assert SerialConfig.parse({"port": "p", "infer-timeout": "7"}).infer_timeout == 7.0
    assert one_line_error({"port": "p", "threads": "1", "THREADS": "2"}) == (
        "--sut-option threads is given twice (threads=1, THREADS=2)")


def test_an_unknown_key_names_the_closest_one():
    message = one_line_error({"port": "p", "thread": "2", "colour": "red"})
    assert message == ("SUT 'board' does not accept option(s) colour, thread (did you mean "
                       "'threads'?); accepted: port, precision, retries, threads, timeout, verify")
    assert "(did you mean 'retries'?)" in one_line_error({"port": "p", "retry": "1"})


def test_a_missing_required_option_is_named():
    # a required option is checked in __post_init__; its UsageError comes out of parse() as it is
    assert "--sut-option port=" in one_line_error({})
    assert "--sut-option port=" in one_line_error({"port": ""})


def test_the_serial_suts_required_port():
    from tinyharness.suts.serial.config import SerialConfig

    message = one_line_error({"baud": "9600"}, SerialConfig)
    assert "serial port" in message and "--sut-option port=" in message


def test_sut_lists_its_options_and_parses_a_mapping():
    assert set(FakeSUT.options()) == {"threads", "infer_ns", "prepare_ns", "fail_after", "interrupt"}
    assert all(FakeSUT.options().values())  # each has its help
    sut = FakeSUT("offline", {"threads": "2", "infer_ns": "5"})
    assert (sut.config.threads, sut.config.infer_ns) == (2, 5)
    with pytest.raises(UsageError, match="'fake' does not accept option"):
        FakeSUT("offline", {"nope": "1"})


def test_sut_keeps_a_config_given_typed():
    config = FakeSUT.config_class(threads=3)
    assert FakeSUT("single-stream", config).config is config


def test_threads_default_to_one_for_single_stream_and_all_cores_offline():
    assert FakeSUT("single-stream").threads() == 1
    assert FakeSUT("offline").threads() == (os.cpu_count() or 1)
    assert FakeSUT("offline", {"threads": "3"}).threads() == 3


def test_an_unknown_scenario_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown scenario 'server'"):
        FakeSUT("server")


# -- bounds (#17): thread-like counts within 4 x the cores, every number finite and bounded ----------

@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_threads_are_bounded_by_four_times_the_cores(two_cores):
    assert max_threads() == 8
    assert HostConfig.parse({"threads": "8"}).threads == 8
    message = one_line_error({"threads": "100000"}, HostConfig)
    assert message == ("--sut-option threads=100000: expected an integer from 1 to 8 "
                       "(4 x the 2 CPU cores)")
    assert "--sut-option threads=9:" in one_line_error({"threads": "9"}, HostConfig)


def test_an_unknown_core_count_still_bounds_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert max_threads() == 4
    assert "from 1 to 4" in one_line_error({"threads": "5"}, HostConfig)


@pytest.mark.parametrize(("module", "cls", "key"), [
    ("tinyharness.suts.onnxruntime_cpu.config", "OnnxRuntimeConfig", "threads"),
    ("tinyharness.suts.onnxruntime_cpu.config", "OnnxRuntimeConfig", "lanes"),
    ("tinyharness.suts.openvino_cpu.config", "OpenVINOConfig", "threads"),
    ("tinyharness.suts.openvino_cpu.config", "OpenVINOConfig", "nstreams"),
    ("tinyharness.suts.openvino_cpu.config", "OpenVINOConfig", "nireq"),
    ("tinyharness.suts.tflite_cpu.config", "TFLiteConfig", "threads"),
])
def test_every_host_suts_thread_like_option_is_bounded(two_cores, module, cls, key):
    import importlib

    config = getattr(importlib.import_module(module), cls)
    assert getattr(config.parse({key: "8"}), key) == 8
    message = one_line_error({key: "100000"}, config)
    assert message.startswith(f"--sut-option {key}=100000: expected an integer from 1 to 8")
    assert one_line_error({key: "many"}, config) == (f"--sut-option {key}=many: expected an "
                                                      "integer from 1 to 8 (4 x the 2 CPU cores)")


@pytest.mark.parametrize(("parse", "text"), [
    (positive_float, "inf"), (positive_float, "nan"), (positive_float, "-inf"), (positive_float, "1e10"),
    (positive_int, str(2**63)), (non_negative_int, str(2**63)), (thread_count, "0"),
    (int_range(1, 38), "39"), (float_range(0, 60), "nan"), (float_range(0, 60, above_low=True), "0"),
])
def test_numeric_parsers_refuse_what_is_not_finite_or_out_of_bounds(parse, text):
    with pytest.raises(ValueError, match="^expected "):
        parse(text)


def test_bounded_parsers_accept_their_bounds():
    assert positive_float("1e9") == 1e9 and positive_int(str(2**63 - 1)) == 2**63 - 1
    assert int_range(1, 38)("38") == 38 and float_range(0, 60)("0") == 0.0


def test_a_config_built_with_typed_values_is_held_to_the_same_bounds(two_cores):
    with pytest.raises(UsageError, match="--sut-option threads=100000: expected an integer"):
        HostConfig(threads=100000)
    with pytest.raises(UsageError, match="threads=True"):
        HostConfig(threads=True)
    assert HostConfig(threads="4").threads == 4  # parsed, as from the command line
    with pytest.raises(UsageError, match="--sut-option threads=100000"):
        FakeSUT("offline", FakeSUT.config_class(threads=100000))

