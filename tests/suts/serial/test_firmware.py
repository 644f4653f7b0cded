"""The emulated reference firmware, byte for byte (docs/dut-protocol.md §6), without a tty.

Most tests drive :class:`Firmware` with a fake backend (fixed output, counted invocations) and a
scripted clock, so every expected response is an exact byte string.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tinyharness.errors import UsageError
from tinyharness.suts.serial.firmware import (
    MAX_DB_INPUT_SIZE,
    Backend,
    Firmware,
    atoi,
    load_firmware,
    quantize,
)

R = b"m-ready\r\n"


class FakeBackend(Backend):
    runtime = "fake"

    def __init__(self, shape, out, in_q=(1.0, -128), out_q=(1 / 256, -128)):
        self.shape, self.input_quant, self.output_quant = (1, *shape), in_q, out_q
        self.out = np.asarray(out, np.int8)
        self.output_size = self.out.size
        self.inputs: list[np.ndarray] = []
        self.invokes = 0

    def set_input(self, q):
        self.inputs.append(np.array(q))

    def invoke(self):
        self.invokes += 1

    def output(self):
        return self.out


def kws(out=None, clock=None) -> Firmware:
    out = np.full(12, -128) if out is None else out
    fw = Firmware(FakeBackend((49, 10, 1), out), clock=clock or itertools.count(1000, 250).__next__)
    fw.boot()
    return fw


def load(fw: Firmware, data: bytes, chunk: int = 31) -> bytes:
    out = fw.feed(b"db load %d%%" % len(data))
    for i in range(0, len(data), chunk):
        out += fw.feed(b"db " + data[i:i + chunk].hex().encode() + b"%")
    return out


def test_boot_banner_and_bytes_before_boot():
    fw = Firmware(FakeBackend((49, 10, 1), np.zeros(12)), clock=lambda: (1 << 32) + 77)
    assert fw.feed(b"name%") == b""  # parser disabled: ignored, no reply
    assert fw.boot() == b"m-timestamp-mode-performance\r\nm-lap-us-77\r\nm-init-done\r\n" + R
    assert fw.feed(b"name%") == b"m-name-dut-[unspecified]\r\n" + R
    ad = Firmware(FakeBackend((640,), np.zeros(640)), clock=lambda: 5)
    assert ad.boot() == b"m-timestamp-mode-performance\r\nm-lap-us-5\r\nInitialized\r\nm-init-done\r\n" + R


def test_basic_commands():
    fw = kws()
    assert fw.feed(b"profile%") == (b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\n"
                                    b"m-model-[kws01]\r\n" + R)
    assert fw.feed(b"timestamp%") == b"m-lap-us-1250\r\n" + R
    help_text = fw.feed(b"help%")
    assert help_text.startswith(b"ULPMark for tinyML Firmware V0.0.1\r\n\r\nhelp         : Print")
    assert b"infer N [W=0]: Load input" in help_text and help_text.endswith(b"vector\r\n" + R)
    assert fw.feed(b"  name   extra%") == b"m-name-dut-[unspecified]\r\n" + R  # strtok(" ")
    assert fw.feed(b"nam") == b"" and fw.feed(b"e%") == b"m-name-dut-[unspecified]\r\n" + R


def test_unknown_and_empty_commands():
    fw = kws()
    assert fw.feed(b"foo bar%") == b"e-[Unknown command: foo]\r\n" + R
    assert fw.feed(b"name\r\n%") == b"e-[Unknown command: name\r\n]\r\n" + R  # CR/LF are not delimiters
    assert fw.feed(b"%") == b"e-[Unknown command: (null)]\r\n" + R
    assert fw.feed(b"   %") == b"e-[Unknown command: (null)]\r\n" + R
    assert fw.feed(b"na\0me%") == b"e-[Unknown command: na]\r\n" + R  # a NUL ends the C string


def test_80_character_command_buffer():
    fw = kws()
    # 80 characters fit (the NUL goes into slot 80)...
    assert fw.feed(b"db load" + b" " * 72 + b"7%") == b"m-[Expecting 7 bytes]\r\n" + R
    # ...the 81st and later keep overwriting slot 80, which the terminating NUL then replaces.
    assert fw.feed(b"db load" + b" " * 73 + b"7%") == b"e-[Command 'db load' requires the # of bytes]\r\n" + R
    assert fw.feed(b"name" + b" " * 76 + b"junk%") == b"m-name-dut-[unspecified]\r\n" + R
    assert fw.feed(b"db " + b"00" * 40 + b"%") == b"e-[Insufficent number of hex digits]\r\n" + R
    assert fw.feed(b"db " + b"00" * 38 + b"0%") == b"e-[Insufficent number of hex digits]\r\n" + R
    assert fw.pos == 0
    assert fw.feed(b"name%") == b"m-name-dut-[unspecified]\r\n" + R  # the buffer starts over


def test_db_errors():
    fw = kws()
    assert fw.feed(b"db%") == b"e-[Command 'db' requires a subcommand]\r\n" + R
    assert fw.feed(b"db load%") == b"e-[Command 'db load' requires the # of bytes]\r\n" + R
    assert fw.feed(b"db load 0%") == b"e-[Command 'db load' must be >0 bytes]\r\n" + R
    assert fw.feed(b"db load abc%") == b"e-[Command 'db load' must be >0 bytes]\r\n" + R
    assert fw.feed(b"db load 12abc%") == b"m-[Expecting 12 bytes]\r\n" + R  # atoi


def test_oversize_load_keeps_its_size():
    fw = kws()
    assert fw.feed(b"db load 30000%") == b"Supplied buffer size 30000 exceeds maximum of 27648\n" + R
    assert fw.size == 30000
    assert fw.feed(b"db load -1%") == b"Supplied buffer size -1 exceeds maximum of 27648\n" + R
    assert fw.size == (1 << 32) - 1  # size_t on a 32-bit MCU
    assert fw.feed(b"db load 27648%") == b"m-[Expecting 27648 bytes]\r\n" + R


def test_hex_chunks():
    fw = kws()
    assert fw.feed(b"db load 4%") == b"m-[Expecting 4 bytes]\r\n" + R
    assert fw.feed(b"db 0A0b%") == R
    assert fw.feed(b"db 0c0%") == b"e-[Insufficent number of hex digits]\r\n" + R
    assert fw.pos == 2  # nothing from the odd command
    assert fw.feed(b"db 0Czz0d%") == b"e-[Invalid hex digit 'zz']\r\n" + R
    assert fw.pos == 3 and fw.buffer[2] == 0x0C  # bytes before the bad pair are stored
    assert fw.feed(b"db +1%") == b"e-[Invalid hex digit '+1']\r\n" + R
    assert fw.feed(b"db 0dEEFF%") == b"m-load-done\r\n" + R  # the rest of the chunk is discarded
    assert fw.pos == 4 and bytes(fw.buffer[:5]) == b"\x0a\x0b\x0c\x0d\x00"
    assert fw.feed(b"db 11%") == R and fw.pos == 5  # past N: the position keeps advancing


def test_db_print():
    fw = kws()
    load(fw, bytes(range(1, 11)))
    assert fw.feed(b"db print 16 0%") == (b"m-buffer-01-02-03-04-05-06-07-08\r\n"
                                          b"m-buffer-09-0a\r\n\r\n" + R)  # the reference's extra CRLF
    load(fw, bytes(range(8)))
    assert fw.feed(b"db print%") == b"m-buffer-00-01-02-03-04-05-06-07\r\n" + R


def test_infer_sequence_defaults_and_wrap():
    clock = iter([100, (1 << 32) - 10, (1 << 32) + 20, 5, 9]).__next__
    fw = Firmware(FakeBackend((49, 10, 1), np.full(12, -128)), clock=clock)
    fw.boot()
    sample = bytes(range(256)) + bytes(234)
    load(fw, sample)
    out = fw.feed(b"infer%")
    assert out == (b"m-warmup-start-10\r\nm-warmup-done\r\nm-infer-start-1\r\n"
                   b"m-lap-us-4294967286\r\nm-lap-us-20\r\nm-infer-done\r\n"
                   b"m-results-[" + b",".join([b"0.000"] * 12) + b"]\r\n" + R)
    assert fw.backend.invokes == 11
    assert fw.backend.inputs[-1].tobytes() == sample  # KWS: bytes straight in as int8
    assert fw.feed(b"infer 3%").startswith(b"m-warmup-start-10\r\nm-warmup-done\r\nm-infer-start-3\r\n")
    assert fw.backend.invokes == 11 + 13


@pytest.mark.parametrize("args, line", [
    (b"0", b"e-[Inference iterations must be >0]"), (b"-3 1", b"e-[Inference iterations must be >0]"),
    (b"abc", b"e-[Inference iterations must be >0]"), (b"1 -1", b"e-[Inference warmup must be >=0]")])
def test_infer_argument_errors(args, line):
    fw = kws()
    assert fw.feed(b"infer " + args + b"%") == line + b"\r\n" + R
    assert fw.backend.invokes == 0


def test_infer_junk_warmup_reads_zero():
    fw = kws()
    load(fw, bytes(490))
    assert fw.feed(b"infer 2 x%").startswith(b"m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-2\r\n")
    assert fw.backend.invokes == 2


def test_short_load_reports_and_runs_on_stale_input():
    fw = kws()
    load(fw, bytes(490))
    fw.feed(b"infer 1 0%")
    load(fw, b"\x01" * 100)
    out = fw.feed(b"infer 1 0%")
    assert out.startswith(b"Input db has 100 elemented, expected 490\nm-warmup-start-0\r\n")
    assert b"m-infer-done\r\nm-results-[" in out and out.endswith(R)
    assert len(fw.backend.inputs) == 1 and fw.backend.invokes == 2  # stale input, still inferred


def test_ad_short_load_counts_floats():
    fw = Firmware(FakeBackend((640,), np.zeros(640), in_q=(0.39, 89), out_q=(0.36, 96)))
    fw.boot()
    load(fw, bytes(2557))
    assert fw.feed(b"infer 1 0%").startswith(b"Input db has 639 elemented, expected 640\n")


def test_result_formats():
    fw = kws(out=[127, -128, 0, -103, -1, -128, -128, -128, -128, -128, -128, 126])
    assert fw.feed(b"results%") == (b"m-results-[0.996,0.000,0.500,0.097,0.496,0.000,0.000,0.000,"
                                    b"0.000,0.000,0.000,0.992]\r\n" + R)
    vww = Firmware(FakeBackend((96, 96, 3), [-121, 121]))
    vww.boot()
    assert vww.feed(b"results%") == b"m-results-[0.027,0.973,]\r\n" + R
    ic = Firmware(FakeBackend((32, 32, 3), [-128] * 9 + [127]))
    ic.boot()
    assert ic.feed(b"results%") == b"m-results-[" + b"0.000," * 9 + b"0.996]\r\n" + R
    ic2 = Firmware(FakeBackend((32, 32, 3), [0] * 10), model_id="ic02")
    ic2.boot()
    assert ic2.feed(b"profile%").endswith(b"m-model-[ic02]\r\n" + R)


def test_vww_and_ic_inputs_are_shifted():
    vww = Firmware(FakeBackend((96, 96, 3), [0, 0]))
    vww.boot()
    sample = bytes(range(256)) * 108
    load(vww, sample)
    assert vww.feed(b"infer 1 0%").endswith(b"m-results-[0.500,0.500,]\r\n" + R)
    expected = (np.frombuffer(sample, np.uint8).astype(np.int16) - 128).astype(np.int8)
    np.testing.assert_array_equal(vww.backend.inputs[-1], expected)


def test_ad_score_line():
    # Identity-like output: y = (q - 96) * 0.5; the input window is quantised with scale 0.5, zp 0.
    x = np.linspace(-20, 20, 640, dtype=np.float32)
    out = np.clip(np.round(x / 0.5) + 96, -128, 127).astype(np.int8)
    fw = Firmware(FakeBackend((640,), out, in_q=(0.5, 0), out_q=(0.5, 96)))
    fw.boot()
    load(fw, x.tobytes())
    reply = fw.feed(b"infer 1 0%")
    y = (out.astype(np.float64) - 96) * 0.5
    expected = b"m-results-[%0.3f]\r\n" % np.mean((y - x) ** 2)
    assert reply.endswith(b"m-infer-done\r\n" + expected + R)
    np.testing.assert_array_equal(fw.backend.inputs[-1], quantize(x, 0.5, 0))


def test_quantize_rounds_half_away_from_zero_and_clamps():
    x = np.array([0.25, -0.25, 0.75, 1.25, -1.25, 1000.0, -1000.0, np.nan], np.float32)
    assert quantize(x, 0.5, 0).tolist() == [1, -1, 2, 3, -3, 127, -128, 0]
    assert quantize(np.float32([1.0]), 0.5, 89).tolist() == [91]


def test_atoi():
    assert [atoi(s) for s in (b"12", b" -7x", b"+3", b"x1", b"", b"99999999999")] == \
        [12, -7, 3, 0, 0, (1 << 31) - 1]


def test_model_ids_from_shapes_and_checks():
    assert Firmware(FakeBackend((49, 10, 1), np.zeros(12))).model_id == "kws01"
    assert Firmware(FakeBackend((96, 96, 3), np.zeros(2))).model_id == "vww01"
    assert Firmware(FakeBackend((32, 32, 3), np.zeros(10))).model_id == "ic01"
    assert Firmware(FakeBackend((640,), np.zeros(640))).model_id == "ad01"
    with pytest.raises(UsageError, match="cannot tell the model id"):
        Firmware(FakeBackend((28, 28, 1), np.zeros(10)))
    with pytest.raises(UsageError, match="expects 490 input elements"):
        Firmware(FakeBackend((32, 32, 3), np.zeros(10)), model_id="kws01")
    with pytest.raises(UsageError, match="unknown model id"):
        Firmware(FakeBackend((32, 32, 3), np.zeros(10)), model_id="sww01")


def test_buffer_limit_constant():
    assert MAX_DB_INPUT_SIZE == 27648


def test_real_models(shared_data):
    pytest.importorskip("tflite_micro")
    with pytest.raises(UsageError, match="full-integer"):
        load_firmware(shared_data / "models" / "ad" / "ad01_fp32.tflite", "litert")
    for name, model_id in (("kws/kws_ref_model", "kws01"), ("vww/vww_96_int8", "vww01"),
                           ("ic/pretrainedResnet_quant", "ic01"), ("ad/ad01_int8", "ad01")):
        fw = load_firmware(shared_data / "models" / f"{name}.tflite", "tflite-micro")
        assert fw.model_id == model_id
    with pytest.raises(UsageError, match="runtime"):
        load_firmware(shared_data / "models" / "kws" / "kws_ref_model.tflite", "onnx")
