"""build_firmware: the stub-model firmware builds for each MPS2 board, is cached by its inputs, its
sizes agree with arm-none-eabi-size, and what cannot be built ends in a one-line error."""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from tinyharness.errors import UsageError

DB_BUFFER = 96 * 96 * 3
STACK, HEAP = 0x4000, 0x2000  # mps2.ld's reservations


def berkeley(elf: Path) -> tuple[int, int, int]:
    """(text, data, bss) as arm-none-eabi-size reports them."""
    out = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text, data, bss


def sections(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    rows = (line.split() for line in out.splitlines()[2:])
    return {row[0]: int(row[1]) for row in rows if len(row) == 3}


@pytest.mark.parametrize(("board", "core", "arch"), [("mps2-an386", "Cortex-M4", "v7E-M"),
                                                     ("mps2-an500", "Cortex-M7", "v7E-M"),
                                                     ("mps2-an385", "Cortex-M3", "v7")])
def test_stub_firmware_builds_with_sizes_as_size_reports(toolchain, stub_model, firmware_cache,
                                                        board, core, arch):
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("kws01", board, stub_model, cache_dir=firmware_cache)
    assert (fw.board, fw.core, fw.benchmark) == (board, core, "kws01")
    assert fw.elf.is_file() and fw.elf.parent.parent == firmware_cache
    text, data, bss = berkeley(fw.elf)
    assert (fw.rom_bytes, fw.ram_bytes) == (text + data, data + bss)
    assert 4_000 < fw.rom_bytes < 64_000  # protocol, port, board, newlib-nano printf
    found = sections(fw.elf)
    assert found[".db"] == DB_BUFFER and found[".stack"] == STACK
    assert DB_BUFFER + STACK + HEAP < fw.ram_bytes < DB_BUFFER + STACK + HEAP + 8_000
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(fw.elf)], capture_output=True,
                                text=True, timeout=60, check=True).stdout
    assert re.search(rf"Tag_CPU_arch: {arch}$", attributes, re.M)  # M3: no DSP instructions
    assert "Tag_FP_arch" not in attributes  # soft float on every board
    assert fw.toolchain.startswith("arm-none-eabi-gcc")
    assert fw.to_dict()["sha256"] == fw.sha256 and fw.to_dict()["elf"] == str(fw.elf)


def test_second_build_is_a_cache_hit_without_gcc(toolchain, stub_model, tmp_path, monkeypatch):
    from tinyharness.firmware import build

    first = build.build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)
    mtime = first.elf.stat().st_mtime_ns

    def no_gcc(*args, **kwargs):
        raise AssertionError("gcc ran on a cache hit")

    monkeypatch.setattr(build._Build, "_gcc", no_gcc)
    second = build.build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)
    assert (first.cached, second.cached) == (False, True)
    assert replace(second, cached=False) == first
    assert second.elf.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.key[:16]]  # no temporary folder left


def test_a_damaged_cache_entry_is_rebuilt(toolchain, stub_model, tmp_path):
    from tinyharness.firmware.build import build_firmware

    first = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)
    first.elf.write_bytes(first.elf.read_bytes()[:1000])  # a truncated ELF
    again = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)
    assert not again.cached
    assert again.sha256 == first.sha256 == hashlib.sha256(again.elf.read_bytes()).hexdigest()


def test_key_follows_defines_model_and_board(toolchain, stub_model, firmware_cache, tmp_path):
    from tinyharness.firmware.build import build_firmware

    base = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache)
    spin = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache,
                          defines=("STUB_SPIN=100",))
    assert spin.key != base.key and not spin.cached
    assert spin.sha256 != base.sha256  # a shorter loop: different code
    edited = tmp_path / "stub_model.c"
    edited.write_text(stub_model.sources[0].read_text() + "\n/* an edit */\n")
    other = build_firmware("kws01", "mps2-an386", replace(stub_model, sources=(edited,)),
                           cache_dir=firmware_cache)
    assert other.key not in (base.key, spin.key)
    board = build_firmware("kws01", "mps2-an500", stub_model, cache_dir=firmware_cache)
    limit = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache,
                           ram_limit=1 << 20)
    assert len({base.key, spin.key, other.key, board.key, limit.key}) == 5
    assert limit.sha256 == base.sha256  # same code, only the linker's region smaller


@pytest.mark.parametrize(("region", "kwargs"), [("RAM", {"ram_limit": 32 * 1024}),
                                                ("ROM", {"rom_limit": 8 * 1024})])
def test_a_firmware_that_does_not_fit_is_one_line(toolchain, stub_model, tmp_path, region, kwargs):
    from tinyharness.firmware.build import build_firmware

    fits = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)
    with pytest.raises(UsageError) as info:
        build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path, **kwargs)
    message = str(info.value)
    limit = next(iter(kwargs.values()))
    match = re.fullmatch(rf"the kws01 firmware does not fit mps2-an386's {region}: overflowed by "
                         rf"(\d+) bytes \(limit {limit} bytes\)", message)
    assert match, message
    need = fits.ram_bytes if region == "RAM" else fits.rom_bytes
    assert 0 < int(match.group(1)) <= need - limit + 16  # alignment may add a little
    assert not any(p.name.startswith((".build", "failed")) for p in tmp_path.iterdir())


def test_a_compile_error_names_the_first_error_and_keeps_the_log(toolchain, stub_model, tmp_path):
    from tinyharness.firmware.build import build_firmware

    broken = tmp_path / "broken_model.c"
    broken.write_text('#include "model.h"\nint8_t *model_input(void) { return undeclared; }\n')
    with pytest.raises(UsageError) as info:
        build_firmware("kws01", "mps2-an386", replace(stub_model, sources=(broken,)),
                       cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("compiling the kws01 firmware for mps2-an386 failed: ")
    assert "broken_model.c:2" in message and "'undeclared' undeclared" in message
    log = Path(re.search(r"\(log: (.+)\)$", message).group(1))
    assert log.is_file() and "'undeclared' undeclared" in log.read_text()


def test_a_missing_toolchain_names_the_packages(stub_model, tmp_path, monkeypatch):
    from tinyharness.firmware import build

    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match=r"arm-none-eabi-gcc not found: install the Debian "
                       r"packages gcc-arm-none-eabi, libnewlib-arm-none-eabi, .*apt-get install"):
        build.build_firmware("kws01", "mps2-an386", stub_model, cache_dir=tmp_path)


@pytest.mark.parametrize(("args", "kwargs", "error"), [
    (("kws02", "mps2-an386"), {}, r"unknown benchmark 'kws02'; one of kws01, vww01"),
    (("kws01", "mps2-an999"), {}, r"unknown board 'mps2-an999'; one of mps2-an385, mps2-an386, mps2-an500"),
    (("kws01", "mps2-an386"), {"defines": ("-DX",)}, r"bad define '-DX'"),
    (("kws01", "mps2-an386"), {"ram_limit": 8 << 20}, r"ram_limit must be 1 to 4194304 bytes"),
    (("kws01", "mps2-an386"), {"rom_limit": 0}, r"rom_limit must be 1 to 4194304 bytes"),
])
def test_bad_arguments_are_usage_errors(stub_model, tmp_path, args, kwargs, error):
    from tinyharness.firmware.build import build_firmware

    with pytest.raises(UsageError, match=error):
        build_firmware(*args, stub_model, cache_dir=tmp_path, **kwargs)


def test_a_missing_model_file_is_a_usage_error(toolchain, tmp_path):
    from tinyharness.firmware.build import build_firmware

    with pytest.raises(UsageError, match="model file not found"):
        build_firmware("kws01", "mps2-an386", tmp_path / "absent.tflite", cache_dir=tmp_path)


def test_float_result_formats_link_printf_float(toolchain, stub_model, firmware_cache):
    """vww01/ic01/ad01 print %0.3f: newlib-nano's float conversion must be linked in."""
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("ic01", "mps2-an386", stub_model, cache_dir=firmware_cache)
    symbols = subprocess.run(["arm-none-eabi-nm", str(fw.elf)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert re.search(r" [TW] _printf_float$", symbols, re.M)


def test_real_kws01_model_builds(toolchain, shared_data, firmware_cache):
    pytest.importorskip("tinyharness.firmware.compiler")
    from tinyharness.firmware.build import build_firmware

    model = shared_data / "models" / "kws" / "kws_ref_model.tflite"
    fw = build_firmware("kws01", "mps2-an386", model, cache_dir=firmware_cache)
    text, data, bss = berkeley(fw.elf)
    assert (fw.rom_bytes, fw.ram_bytes) == (text + data, data + bss)
    assert fw.rom_bytes > 30_000  # about 24 kB of weights come with it


def test_boards_table():
    from tinyharness.firmware.boards import BOARDS, get_board

    assert set(BOARDS) == {"mps2-an385", "mps2-an386", "mps2-an500"}
    board = get_board("mps2-an386")
    assert (board.core, board.cpu_flags) == ("Cortex-M4", ("-mcpu=cortex-m4",))
    assert board.rom == (0, 4 << 20) and board.ram == (0x20000000, 4 << 20)
