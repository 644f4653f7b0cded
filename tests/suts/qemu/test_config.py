"""The qemu SUT's options and its registration: no toolchain needed."""

from __future__ import annotations

import pytest

from tinyharness.errors import UsageError
from tinyharness.plugins import registry
from tinyharness.suts.qemu.config import QemuConfig, memory_size
from tinyharness.suts.qemu.sut import QemuSUT, clock_label


def test_registered_through_the_entry_point_as_a_device_timed_sut():
    cls = registry().get("qemu")
    assert cls is QemuSUT
    assert cls.timing.value == "device" and cls.needs_model and cls.model_formats == ("tflite",)


def test_defaults_are_the_cortex_m4_board_at_shift_3_with_verified_uploads():
    c = QemuSUT.parse_options({})
    assert (c.board, c.icount, c.rom_limit, c.ram_limit, c.firmware) == ("mps2-an386", 3, None,
                                                                        None, None)
    assert c.verify is True and c.chunk == 31  # the serial link settings, shared


@pytest.mark.parametrize("raw, expected", [
    ({"board": "MPS2-AN500"}, ("board", "mps2-an500")),
    ({"icount": "0"}, ("icount", 0)),
    ({"icount": "off"}, ("icount", None)),
    ({"ram-limit": "320K"}, ("ram_limit", 320 * 1024)),
    ({"rom_limit": "2M"}, ("rom_limit", 2 << 20)),
    ({"ram_limit": "65536"}, ("ram_limit", 65536)),
])
def test_options_parse(raw, expected):
    assert getattr(QemuSUT.parse_options(raw), expected[0]) == expected[1]


@pytest.mark.parametrize("raw, words", [
    ({"board": "stm32"}, ["board", "mps2-an386"]),
    ({"icount": "11"}, ["icount", "0 to 10"]),
    ({"icount": "-1"}, ["icount"]),
    ({"ram_limit": "lots"}, ["ram_limit", "256K"]),
    ({"ram_limit": "10"}, ["ram_limit", "1K"]),
    ({"port": "/dev/ttyACM0"}, ["port", "accepted"]),
])
def test_bad_options_are_one_line_usage_errors(raw, words):
    with pytest.raises(UsageError) as err:
        QemuSUT.parse_options(raw)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_prebuilt_firmware_must_be_an_elf_and_excludes_memory_limits(tmp_path):
    text = tmp_path / "fw.bin"
    text.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match="ELF"):
        QemuSUT.parse_options({"firmware": str(text)})
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF" + b"\x00" * 60)
    assert QemuSUT.parse_options({"firmware": str(elf)}).firmware == str(elf.resolve())
    with pytest.raises(UsageError, match="rom_limit and ram_limit"):
        QemuSUT.parse_options({"firmware": str(elf), "ram_limit": "64K"})


def test_memory_sizes_use_binary_units():
    assert memory_size("1k") == 1024 and memory_size("1MiB") == 1 << 20
    assert memory_size(" 4 M ") == 4 << 20


def test_the_clock_label_says_virtual_time_and_not_cycle_accurate():
    assert clock_label(3) == "virtual time: 2^3 ns per instruction, not cycle-accurate"
    assert "not reproducible" in clock_label(None)


def test_config_round_trips_for_the_run_record():
    c = QemuConfig.parse({"board": "mps2-an500", "icount": "5"})
    assert c.to_dict()["board"] == "mps2-an500" and c.to_dict()["icount"] == 5
