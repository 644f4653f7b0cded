"""A SUT's options as a typed config: parsing ``--sut-option`` strings, one-line errors that name the
option, the SUT's view of it (``options()``, ``self.config``, ``threads()``)."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError, dataclass

import pytest

from fakes import FakeSUT
from tinyharness.errors import UsageError
from tinyharness.sut_config import (HostConfig, SUTConfig, choice, flag, non_negative_int, option,
                                    positive_float, positive_int)


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


@pytest.mark.parametrize(("key", "text", "why"), [
    ("threads", "0", "must be a positive integer"),
    ("threads", "two", "invalid literal"),
    ("precision", "bf16", "must be one of f32, f16"),
    ("timeout", "-1", "must be a positive number"),
    ("retries", "-1", "must be >= 0"),
    ("verify", "maybe", "must be 0 or 1"),
])
def test_a_bad_value_names_the_option_the_reason_and_the_help(key, text, why):
    message = one_line_error({"port": "p", key: text})
    assert message.startswith(f"--sut-option {key}={text}: ") and why in message
    assert BoardConfig.help()[key] in message


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
