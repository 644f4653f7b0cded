"""The C firmware in QEMU speaks the DUT protocol byte for byte as the Python model of the reference
firmware (tinyharness/suts/serial/firmware.py) does for the same commands.

The firmware runs the stub model (stub_model.c); the Python model runs StubBackend, the same
function written in Python, so result lines compare exactly too. Only the m-lap-us values differ
(device clock vs the model's), and are compared by pattern.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("qemu")

READY = b"m-ready\r\n"
LAP = re.compile(rb"m-lap-us-(\d+)\r\n")
READ_TIMEOUT = 60.0  # seconds for one command's whole reply
STUB_SPIN = 20000  # stub_model.c's busy loop per inference


class StubBackend:
    """stub_model.c in Python: out[j] = int8(wrap8(3*j + sum of in[k] for k % 12 == j))."""

    shape = (1, 49, 10, 1)
    output_size = 12
    input_quant = (0.5847029089927673, 83)
    output_quant = (0.00390625, -128)

    def __init__(self) -> None:
        self._input = np.zeros(490, np.int8)
        self._output = np.zeros(12, np.int8)

    def set_input(self, q) -> None:
        self._input = np.asarray(q, np.int8).reshape(-1).copy()

    def invoke(self) -> None:
        acc = [3 * j for j in range(12)]
        for k, value in enumerate(self._input.tolist()):
            acc[k % 12] += value
        self._output = np.array([((a + 128) & 0xFF) - 128 for a in acc], np.int8)

    def output(self) -> np.ndarray:
        return self._output


def python_firmware():
    from tinyharness.suts.serial.firmware import Firmware

    return Firmware(StubBackend(), "kws01", clock=lambda: 0, vendor="tinyharness-qemu")


class Board:
    """The firmware in QEMU (mps2-an386, -icount shift=3) with its UART on a socket."""

    def __init__(self, elf: Path, machine: str = "mps2-an386", icount: int = 3) -> None:
        from tinyharness.firmware.qemu import QemuProcess

        self.qemu = QemuProcess(elf, machine, icount=icount)
        self.sock: socket.socket | None = None
        self.pending = b""

    def __enter__(self) -> Board:
        self.qemu.start()
        self.sock = socket.create_connection(("127.0.0.1", self.qemu.port), timeout=READ_TIMEOUT)
        return self

    def __exit__(self, *exc) -> None:
        if self.sock is not None:
            self.sock.close()
        self.qemu.stop()

    def read_until(self, marker: bytes, count: int = 1, timeout: float = READ_TIMEOUT) -> bytes:
        """Everything up to and including the count-th marker; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while self.pending.count(marker) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} x{count} within {timeout} s; got "
                                     f"{self.pending[-300:]!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError(f"QEMU closed the UART; got {self.pending[-300:]!r}")
            self.pending += data
        end = 0
        for _ in range(count):
            end = self.pending.index(marker, end) + len(marker)
        out, self.pending = self.pending[:end], self.pending[end:]
        return out

    def command(self, command: bytes) -> bytes:
        self.sock.sendall(command)
        return self.read_until(READY)


def laps(data: bytes) -> list[int]:
    return [int(v) for v in LAP.findall(data)]


def hex_chunks(data: bytes, chunk: int = 31) -> list[bytes]:
    return [b"db " + data[i:i + chunk].hex().encode() + b"%" for i in range(0, len(data), chunk)]


SAMPLE = bytes((i * 37 + 11) & 0xFF for i in range(490))
SCRIPT = [
    b"name%", b"profile%", b"help%", b"timestamp%", b"results%",
    b"db load 490%", *hex_chunks(SAMPLE), b"db print%",
    b"infer 1 0%", b"results%", b"infer 3 2%", b"infer%",
    b"infer 0%", b"infer -1%", b"infer abc%", b"infer 1 -1%", b"infer 2 x%", b"infer 2 0 extra%",
    b"db%", b"db load%", b"db load 0%", b"db load x%",
    b"db load 5%", b"db 0102%", b"db 030405060708%", b"db print%",
    b"db load 4%", b"db 123%", b"db 12zz34%", b"db GG%", b"db 0A0b%", b"db print%",
    b"db load 10%", b"db 00112233445566778899%", b"infer 1 0%",  # short load: stale input
    b"db load 99999%", b"db 01%",  # oversized: kept, with its unprefixed line
    b"name" + b"x" * 100 + b"%",  # over 80 characters: the last slot is overwritten
    b"db " + b"ab" * 60 + b"%",  # truncated to 80 characters: 77 digits, odd
    b"foo%", b"foo bar%", b"%", b"  name  %", b"results%",
]


def test_transcript_equals_the_reference_model(stub_firmware):
    model = python_firmware()
    expected = [model.boot()] + [model.feed(cmd) for cmd in SCRIPT]
    with Board(stub_firmware.elf) as board:
        got = [board.read_until(READY)] + [board.command(cmd) for cmd in SCRIPT]
    for cmd, want, have in zip([b"(boot)", *SCRIPT], expected, got):
        assert LAP.sub(b"m-lap-us-N\r\n", have) == LAP.sub(b"m-lap-us-N\r\n", want), cmd
        assert len(laps(have)) == len(laps(want)), cmd
    assert got[0].startswith(b"m-timestamp-mode-performance\r\nm-lap-us-")
    short_load = SCRIPT.index(b"db 00112233445566778899%") + 1  # its infer; got[0] is the boot
    assert got[short_load + 1].startswith(b"Input db has 10 elemented, expected 490\nm-warmup")


def test_infer_stamps_bracket_the_window(stub_firmware):
    with Board(stub_firmware.elf) as board:
        board.read_until(READY)
        for cmd in [b"db load 490%", *hex_chunks(SAMPLE)]:
            board.command(cmd)
        out = board.command(b"infer 5 1%")
    start, end = laps(out)
    # each of the 5 inferences spins STUB_SPIN turns of >= 3 instructions at 8 ns (shift 3)
    assert end - start >= 5 * STUB_SPIN * 3 * 8 // 1000
    assert out.index(b"m-infer-start-5") < out.index(b"m-lap-us") < out.index(b"m-infer-done")


def test_back_to_back_commands_are_all_answered(stub_firmware):
    """The EEMBC RX-buffering check: 300 commands pasted without waiting for m-ready."""
    reply = b"m-name-dut-[tinyharness-qemu]\r\n" + READY
    with Board(stub_firmware.elf) as board:
        board.read_until(READY)
        board.sock.sendall(b"name%" * 300)
        got = board.read_until(READY, count=300)
        assert got == reply * 300
        assert board.command(b"profile%").endswith(b"m-model-[kws01]\r\n" + READY)


def test_input_pasted_during_an_inference_waits_in_the_uart(stub_firmware):
    """1500 bytes sent behind an infer: the ring buffer fills while the guest computes, receive
    interrupts pause with the byte left in the UART (QEMU holds the host back), nothing is lost."""
    reply = b"m-name-dut-[tinyharness-qemu]\r\n" + READY
    with Board(stub_firmware.elf) as board:
        board.read_until(READY)
        board.sock.sendall(b"infer 300 0%" + b"name%" * 300)
        infer = board.read_until(READY)
        assert b"m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-300\r\n" in infer
        assert board.read_until(READY, count=300) == reply * 300
        assert board.command(b"timestamp%").startswith(b"m-lap-us-")


def test_timestamps_increase(stub_firmware):
    with Board(stub_firmware.elf) as board:
        boot = laps(board.read_until(READY))
        first = laps(board.command(b"timestamp%"))
        board.command(b"infer 2 0%")
        second = laps(board.command(b"timestamp%"))
    assert len(boot) == len(first) == len(second) == 1
    assert boot[0] < first[0] < second[0]


def window_us(elf: Path) -> int:
    with Board(elf) as board:
        board.read_until(READY)
        for cmd in [b"db load 490%", *hex_chunks(SAMPLE)]:
            board.command(cmd)
        start, end = laps(board.command(b"infer 10 0%"))
    return end - start


def test_icount_window_is_reproducible(stub_firmware):
    first, second = window_us(stub_firmware.elf), window_us(stub_firmware.elf)
    assert first > 0
    assert abs(first - second) <= 1


def test_db_print_of_an_oversized_load_stops_at_the_buffer(stub_firmware):
    model = python_firmware()
    model.boot()
    script = [b"db load 30000%", b"db " + b"5a" * 31 + b"%", b"db print%"]
    expected = [model.feed(cmd) for cmd in script]
    with Board(stub_firmware.elf) as board:
        board.read_until(READY)
        got = [board.command(cmd) for cmd in script]
    assert got == expected
    assert got[2].count(b"m-buffer-") == 96 * 96 * 3 // 8


def test_hardfault_is_reported_on_one_line(toolchain, stub_model, firmware_cache):
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache,
                        defines=("TH_FAULT_ON_INFER",))
    with Board(fw.elf) as board:
        board.read_until(READY)
        board.sock.sendall(b"infer 1 0%")
        out = board.read_until(b"e-[HardFault")
        out += board.read_until(b"]\r\n")
    line = out.splitlines()[-1]
    assert re.fullmatch(rb"e-\[HardFault pc=0x[0-9a-f]{8} lr=0x[0-9a-f]{8} cfsr=0x[0-9a-f]{8} "
                        rb"hfsr=0x[0-9a-f]{8} bfar=0x[0-9a-f]{8}\]", line), out
    assert b"cfsr=0x00010000" in line  # UNDEFINSTR: the udf of the test hook


@pytest.mark.parametrize("machine", ["mps2-an385", "mps2-an500"])
def test_other_boards_answer(toolchain, stub_model, firmware_cache, machine):
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("kws01", machine, stub_model, cache_dir=firmware_cache)
    model = python_firmware()
    model.boot()
    script = [b"profile%", b"db load 490%", *hex_chunks(SAMPLE), b"infer 2 1%"]
    expected = [model.feed(cmd) for cmd in script]
    with Board(fw.elf, machine) as board:
        board.read_until(READY)
        got = [board.command(cmd) for cmd in script]
    assert [LAP.sub(b"", g) for g in got] == [LAP.sub(b"", e) for e in expected]


# Outputs k/256 whose third decimal is an exact tie (k = 16 mod 32), then the extremes: newlib's
# %0.3f must round halves to even as Python's does.
TIES = [16, 48, 80, 112, 144, 176, 208, 240, 0, 255, 128, 1]


def pixels_for(outputs: list[int]) -> bytes:
    """A 490-byte uint8 sample for which the stub (after the u8 - 128 transform) gives output
    bytes k - 128 for the k in ``outputs``: only the first 12 pixels are not 128."""
    pixels = [128] * 490
    for j, k in enumerate(outputs):
        pixels[j] = (k - 3 * j) & 0xFF  # int8 input = k - 128 - 3j, so acc[j] = k - 128
    return bytes(pixels)


@pytest.mark.parametrize(("benchmark", "tail"), [("ic01", b""), ("vww01", b",")])
def test_float_result_lines(toolchain, stub_model, firmware_cache, benchmark, tail):
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware(benchmark, "mps2-an386", stub_model, cache_dir=firmware_cache)
    expected = b"m-results-[" + b",".join(b"%0.3f" % (k / 256) for k in TIES) + tail + b"]\r\n"
    with Board(fw.elf) as board:
        assert board.read_until(READY).endswith(b"m-init-done\r\n" + READY)
        assert board.command(b"profile%").endswith(b"m-model-[%s]\r\n" % benchmark.encode() + READY)
        for cmd in [b"db load 490%", *hex_chunks(pixels_for(TIES))]:
            board.command(cmd)
        out = board.command(b"infer 1 0%")
    assert out.endswith(b"m-infer-done\r\n" + expected + READY), out
    assert expected == (b"m-results-[0.062,0.188,0.312,0.438,0.562,0.688,0.812,0.938,0.000,"
                        b"0.996,0.500,0.004" + tail + b"]\r\n")


def test_ad01_quantises_floats_and_prints_the_window_mse(toolchain, stub_model, firmware_cache):
    """ad01: float32 input quantised with C round and clamp (NaN -> 0), MSE of the dequantised
    outputs against the float input summed in float32."""
    from tinyharness.suts.serial.firmware import quantize

    from tinyharness.firmware.build import build_firmware

    scale, zero_point = StubBackend.input_quant
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(490) * 30).astype(np.float32)
    x[20:24] = [np.nan, np.inf, -np.inf, 1e30]
    x[24:28] = np.float32(scale) * np.float32([0.5, -0.5, 2.5, -2.5])  # near-ties of x / scale
    q = quantize(x, scale, zero_point)
    assert q[20] == 0 and q[21] == 127 and q[22] == -128 and q[23] == 127
    backend = StubBackend()
    backend.set_input(q)
    backend.invoke()
    y = (backend.output().astype(np.int32) + 128).astype(np.float32) * np.float32(1 / 256)
    total = np.float32(0)
    for i in range(12):
        d = np.float32(y[i] - x[i])
        total = np.float32(total + np.float32(d * d))
    expected = b"m-results-[%0.3f]\r\n" % float(np.float32(total / np.float32(12)))

    fw = build_firmware("ad01", "mps2-an386", stub_model, cache_dir=firmware_cache)
    with Board(fw.elf) as board:
        assert b"Initialized\r\nm-init-done\r\n" in board.read_until(READY)
        for cmd in [b"db load 1960%", *hex_chunks(x.tobytes())]:
            board.command(cmd)
        out = board.command(b"infer 1 0%")
        short = [board.command(b"db load 8%"), board.command(b"db 0000803f0000803f%"),
                 board.command(b"infer 1 0%")]
    assert out.endswith(b"m-infer-done\r\n" + expected + READY), (out, expected)
    assert short[2].startswith(b"Input db has 2 elemented, expected 490\n")


def test_a_window_across_the_timer_wrap_measures_as_one_without(toolchain, stub_model,
                                                                 firmware_cache):
    """The 32-bit timer wraps every 2^32 ticks (171.8 s); a build whose first period is 100 ms
    puts a wrap inside the first inference window. Under -icount both windows are the same
    instruction count, so they must agree to the microsecond (the lost or doubled wrap of a racy
    64-bit read would be off by 171.8 s)."""
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache,
                        defines=("MPS2_TIMER_FIRST_PERIOD=2500000",))
    wrap_us = (1 << 32) // 25  # 25 MHz ticks
    with Board(fw.elf) as board:
        boot = laps(board.read_until(READY))
        across = laps(board.command(b"infer 300 0%"))
        after = laps(board.command(b"infer 300 0%"))
    assert boot[0] >= wrap_us - 100_000 - 1  # started 100 ms before the wrap
    assert across[0] < wrap_us <= across[1] < after[0] < after[1]
    assert abs((across[1] - across[0]) - (after[1] - after[0])) <= 1


def test_model_profile_build_prints_ticks_per_operator(toolchain, stub_model, firmware_cache):
    """-DMODEL_PROFILE: after the results line, the timed inferences' count and the ticks (25 MHz)
    spent in each operator, which for the one-op stub is nearly the whole window."""
    from tinyharness.firmware.build import build_firmware

    fw = build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache,
                        defines=("MODEL_PROFILE",))
    with Board(fw.elf) as board:
        board.read_until(READY)
        out = board.command(b"infer 4 3%")
    start, end = laps(out)
    match = re.search(rb"\]\r\nm-profile-\[4,25000000\]\r\nm-op-ticks-\[0,stub,(\d+)\]\r\n"
                      + re.escape(READY) + rb"\Z", out)
    assert match, out
    op_us = int(match.group(1)) / 25
    assert 0.95 * (end - start) < op_us <= end - start + 1
