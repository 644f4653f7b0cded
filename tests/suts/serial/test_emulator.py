"""The emulated DUT through a real pseudo-terminal with pyserial: the protocol, real models against
LiteRT's built-in kernels, device timing, and each injected fault. Every read has a deadline."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import serial
from tinyharness.errors import UsageError
from tinyharness.suts.serial.emulator import Emulator, Faults

READY = b"m-ready\r\n"


def read_until_ready(ser: serial.Serial, limit: float = 10.0) -> bytes:
    """Bytes up to and including the first ``m-ready`` line; whatever came if ``limit`` passes."""
    data, deadline = b"", time.monotonic() + limit
    while READY not in data and time.monotonic() < deadline:
        data += ser.read(max(1, ser.in_waiting))
    return data


def command(ser: serial.Serial, cmd: bytes, limit: float = 10.0) -> bytes:
    ser.write(cmd + b"%")
    return read_until_ready(ser, limit)


def upload(ser: serial.Serial, data: bytes, chunk: int = 31) -> list[bytes]:
    """The MLCommons runner's way: db load N, then 31-byte db chunks, each waiting for m-ready."""
    replies = [command(ser, b"db load %d" % len(data))]
    replies += [command(ser, b"db " + data[i:i + chunk].hex().encode()) for i in range(0, len(data), chunk)]
    return replies


def results(reply: bytes) -> list[float]:
    line = re.search(rb"m-results-\[(.*)\]\r\n", reply).group(1)
    return [float(v) for v in line.split(b",") if v]


def litert_output(model, q: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The model's int8 output on LiteRT's built-in kernels, with its (scale, zero point)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(model),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ins, outs = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(ins["index"], [1, *ins["shape"][1:]])
    interp.allocate_tensors()
    interp.set_tensor(ins["index"], q.reshape(1, *ins["shape"][1:]))
    interp.invoke()
    return interp.get_tensor(outs["index"]).reshape(-1), outs["quantization"]


@pytest.fixture
def kws_model(shared_data):
    pytest.importorskip("tflite_micro")
    return shared_data / "models" / "kws" / "kws_ref_model.tflite"


@pytest.fixture
def dut(kws_model, request):
    """A started kws01 emulator (tflite-micro) and an open port; faults from ``indirect`` params."""
    emulator = Emulator(kws_model, faults=getattr(request, "param", None), seed=1)
    ser = serial.Serial(emulator.port, 115200, timeout=0.2)
    try:
        emulator.start()
        banner = read_until_ready(ser, 5)
        assert banner.endswith(b"m-init-done\r\n" + READY)
        yield emulator, ser
    finally:
        ser.close()
        emulator.stop()


def test_boot_banner_name_profile(dut):
    emulator, ser = dut
    assert command(ser, b"name") == b"m-name-dut-[unspecified]\r\n" + READY
    assert command(ser, b"profile") == (b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\n"
                                        b"m-model-[kws01]\r\n" + READY)
    emulator.reset()  # a new boot: the banner again, exactly
    assert re.fullmatch(rb"m-timestamp-mode-performance\r\nm-lap-us-\d+\r\nm-init-done\r\nm-ready\r\n",
                        read_until_ready(ser, 5))


def test_bytes_sent_before_boot_are_ignored(kws_model):
    emulator = Emulator(kws_model)
    ser = serial.Serial(emulator.port, 115200, timeout=0.3)
    try:
        ser.write(b"name%")
        time.sleep(0.05)
        emulator.start()
        assert read_until_ready(ser, 5).endswith(b"m-init-done\r\n" + READY)
        assert ser.read(100) == b""
    finally:
        ser.close()
        emulator.stop()


def test_kws_upload_infer_matches_litert_and_timing(dut, shared_data):
    _, ser = dut
    sample_file = min((shared_data / "datasets" / "kws01").glob("*.bin"))
    sample = sample_file.read_bytes()
    assert len(sample) == 490
    replies = upload(ser, sample)  # its speed is a figure of bench/serial_link.py, not a test
    assert replies[0] == b"m-[Expecting 490 bytes]\r\n" + READY
    assert all(r == READY for r in replies[1:-1]) and replies[-1] == b"m-load-done\r\n" + READY

    reply = command(ser, b"infer 1 0")
    assert re.fullmatch(rb"m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-1\r\nm-lap-us-\d+\r\n"
                        rb"m-lap-us-\d+\r\nm-infer-done\r\nm-results-\[(0\.\d{3},){11}0\.\d{3}\]\r\n"
                        rb"m-ready\r\n", reply)
    out, (scale, zp) = litert_output(sample_file.parent.parent.parent / "models" / "kws" /
                                     "kws_ref_model.tflite", np.frombuffer(sample, np.int8))
    expected = (out.astype(np.float64) - zp) * scale
    assert scale == 1 / 256 and zp == -128
    np.testing.assert_allclose(results(reply), np.floor(expected * 1000) / 1000, atol=1e-9)

    before = time.perf_counter_ns() // 1000
    reply = command(ser, b"infer 5 1")
    after = time.perf_counter_ns() // 1000
    t_start, t_end = (int(v) for v in re.findall(rb"m-lap-us-(\d+)", reply))
    device_us = (t_end - t_start) % (1 << 32)
    assert 0 < device_us <= after - before
    assert (t_start - before) % (1 << 32) <= after - before  # the same monotonic clock, mod 2**32
    assert device_us >= 5 * 100  # five KWS inferences on TFLite Micro's reference kernels


@pytest.mark.parametrize("runtime, tolerance", [("litert", 5e-4 + 1e-6), ("tflite-micro", 0.02)])
def test_ad_window_score(shared_data, runtime, tolerance):
    pytest.importorskip("tflite_micro")
    model = shared_data / "models" / "ad" / "ad01_int8.tflite"
    window = next((shared_data / "samples" / "ad01").glob("*.bin")).read_bytes()[:2560]
    x = np.frombuffer(window, np.float32)
    scale_in, zp_in = 0.3910152316093445, 89
    v = x / np.float32(scale_in)  # host-side quantisation, C rounding (halves away from zero)
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp_in, -128, 127).astype(np.int8)
    out, (scale, zp) = litert_output(model, q)
    expected = np.mean(((out.astype(np.float64) - zp) * scale - x) ** 2)

    with Emulator(model, runtime=runtime) as emulator, serial.Serial(emulator.port, 115200, timeout=0.2) as ser:
        assert command(ser, b"profile").endswith(b"m-model-[ad01]\r\n" + READY)
        assert upload(ser, window)[-1] == b"m-load-done\r\n" + READY
        reply = command(ser, b"infer 1 0")
    assert re.search(rb"m-infer-done\r\nm-results-\[\d+\.\d{3}\]\r\nm-ready\r\n$", reply)
    # LiteRT: the same kernels, so equal to 3 decimals; TFLite Micro differs by one output step on AD.
    assert abs(results(reply)[0] - expected) <= tolerance


def test_runtimes_agree_on_one_inference_tflm_reuses_the_input(kws_model, shared_data):
    """On one inference both runtimes agree (bit-exact on KWS). After more than one, TFLite Micro's
    arena planner has reused the input tensor's memory for activations, so later inferences (and
    the printed result of the last one) see a clobbered input, as on a device running the
    reference firmware; LiteRT keeps its input. Accuracy runs use ``infer 1 0``."""
    sample = sorted((shared_data / "datasets" / "kws01").glob("*.bin"))[1].read_bytes()  # "Left", 2
    got = {}
    for runtime in ("litert", "tflite-micro"):
        with Emulator(kws_model, runtime=runtime) as emulator, \
                serial.Serial(emulator.port, 115200, timeout=0.2) as ser:
            upload(ser, sample)
            got[runtime] = [results(command(ser, b"infer 1 0")), results(command(ser, b"infer 2 1"))]
    assert got["litert"][0] == got["tflite-micro"][0] and int(np.argmax(got["litert"][0])) == 2
    assert got["litert"][1] == got["litert"][0]
    assert got["tflite-micro"][1] != got["tflite-micro"][0]


@pytest.mark.parametrize("dut", [Faults(drop=1.0)], indirect=True)
def test_fault_drop(dut):
    _, ser = dut
    assert command(ser, b"name", limit=0.5) == b""  # every byte lost: no command, no reply


@pytest.mark.parametrize("dut", [Faults(garble=1.0)], indirect=True)
def test_fault_garble(dut):
    _, ser = dut
    for _ in range(3):  # every byte but '%' corrupted: an error reply, framing intact
        reply = command(ser, b"db 0102", limit=2)
        assert reply.startswith(b"e-[") and reply.endswith(READY)


@pytest.mark.parametrize("dut", [Faults(garble=0.05)], indirect=True)
def test_fault_garble_hits_hex_payload(dut):
    _, ser = dut
    command(ser, b"db load 490")
    replies = [command(ser, b"db " + bytes(31).hex().encode(), limit=2) for _ in range(15)]
    assert all(r.endswith(READY) for r in replies)
    assert any(b"e-[Invalid hex digit" in r or b"e-[Insufficent" in r or b"e-[Unknown" in r
               for r in replies)


@pytest.mark.parametrize("dut", [Faults(omit_ready=2)], indirect=True)
def test_fault_omit_ready(dut):
    _, ser = dut
    assert command(ser, b"name") == b"m-name-dut-[unspecified]\r\n" + READY
    assert command(ser, b"name", limit=0.5) == b"m-name-dut-[unspecified]\r\n"
    assert command(ser, b"name") == b"m-name-dut-[unspecified]\r\n" + READY


@pytest.mark.parametrize("dut", [Faults(error=2)], indirect=True)
def test_fault_error(dut):
    _, ser = dut
    assert command(ser, b"db load 10") == b"m-[Expecting 10 bytes]\r\n" + READY
    assert command(ser, b"db load 20") == b"e-[Injected fault on command 2]\r\n" + READY
    assert command(ser, b"db 00") == READY  # the 2nd command did not run: still expecting 10
    assert dut[0].firmware.size == 10


@pytest.mark.parametrize("dut", [Faults(ready_delay=0.5)], indirect=True)
def test_fault_ready_delay(dut):
    _, ser = dut
    sent = time.monotonic()  # before the write: the DUT cannot answer earlier than this
    ser.write(b"name%")
    first = b""
    while b"\n" not in first and time.monotonic() - sent < 2:
        first += ser.read(1)
    assert first == b"m-name-dut-[unspecified]\r\n"
    assert read_until_ready(ser, 2) == READY
    # m-ready only after the injected 0.5 s: a lower bound the emulator's sleep guarantees,
    # however loaded the machine (the reply itself comes at once; no upper bound is asserted)
    assert time.monotonic() - sent >= 0.5


@pytest.mark.parametrize("dut", [Faults(disconnect=2)], indirect=True)
def test_fault_disconnect(dut):
    emulator, ser = dut
    assert command(ser, b"name") == b"m-name-dut-[unspecified]\r\n" + READY
    assert command(ser, b"profile").endswith(b"m-model-[kws01]\r\n" + READY)  # delivered, then unplugged
    deadline = time.monotonic() + 5
    while emulator.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.disconnected and not emulator.running
    with pytest.raises(serial.SerialException):
        ser.write(b"name%")
        ser.read(10)


def test_faults_parse():
    assert Faults.parse(["drop=0.5", "ready-delay=1.5", "omit-ready=3", "disconnect=2"]) == \
        Faults(drop=0.5, ready_delay=1.5, omit_ready=3, disconnect=2)
    for bad in ("drop", "drop=2", "nope=1", "error=x", "error=-1"):
        with pytest.raises(UsageError, match="bad --fault"):
            Faults.parse([bad])


@pytest.mark.parametrize("bad", ["drop=nan", "garble=nan", "drop=inf", "garble=-0.1", "drop=1.01",
                                 "ready-delay=nan", "ready-delay=inf", "ready-delay=-1",
                                 "ready-delay=1e9", "omit-ready=0", "disconnect=0"])
def test_fault_values_must_be_finite_and_in_range(bad):
    """Defect 5: drop=nan was accepted (every comparison with nan is False)."""
    with pytest.raises(UsageError, match=f"bad --fault '{bad}'") as caught:
        Faults.parse([bad])
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="must be a finite number"):
        Faults(drop=float("nan"))  # also when built directly


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """tinyharness in a child process (a hang is a failure, not a stuck test)."""
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_cli_emulate_refuses_a_nan_fault(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"unused: the faults are checked first")
    done = run_cli("dut", "emulate", "--model", str(model), "--fault", "drop=nan")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "bad --fault 'drop=nan'" in done.stderr


# -- a model file that is not a valid model (defect 13) ---------------------------------------------
def bad_models(real: bytes) -> dict[str, bytes]:
    import random

    corrupt = bytearray(real)
    rng = random.Random(1)
    for _ in range(200):
        corrupt[rng.randrange(8, len(corrupt))] ^= 0xFF
    return {"text": b"this is not a model\n", "random": random.Random(5).randbytes(50_000),
            "empty": b"", "truncated": real[:20_000], "corrupted": bytes(corrupt),
            "no-identifier": real[:4] + b"XXXX" + real[8:]}


@pytest.mark.parametrize("runtime, verifier", [("tflite-micro", True), ("litert", True),
                                               ("tflite-micro", False)],
                         ids=["tflite-micro", "litert", "tflite-micro-without-litert"])
def test_invalid_models_are_one_line_usage_errors(shared_data, tmp_path, monkeypatch, runtime,
                                                  verifier):
    from tinyharness.suts.serial.firmware import load_firmware

    pytest.importorskip("tflite_micro" if runtime == "tflite-micro" else "ai_edge_litert")
    if not verifier:  # LiteRT not installed: TFLite Micro's parse and the index checks alone
        monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    real = (shared_data / "models" / "kws" / "kws_ref_model.tflite").read_bytes()
    for name, data in bad_models(real).items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        with pytest.raises(UsageError) as caught:  # was struct.error / RuntimeError / ValueError
            load_firmware(path, runtime)
        message = str(caught.value)
        assert message.startswith(f"model {path}: not a valid TFLite model (") and "\n" not in message


def test_a_fifo_or_oversized_model_is_refused_without_reading_it(tmp_path):
    import os

    from tinyharness.suts.serial.backend import MAX_MODEL_BYTES, read_model

    fifo = tmp_path / "fifo.tflite"
    os.mkfifo(fifo)  # opening it for reading would block forever
    with pytest.raises(UsageError, match="is a FIFO"):
        read_model(fifo)
    big = tmp_path / "big.tflite"
    with open(big, "wb") as handle:
        handle.truncate(MAX_MODEL_BYTES + 1)  # sparse
    with pytest.raises(UsageError, match="more than the 16,777,216 allowed"):
        read_model(big)


def test_cli_emulate_with_a_text_file_as_model(tmp_path):
    model = tmp_path / "notes.tflite"
    model.write_text("hello\n")
    done = run_cli("dut", "emulate", "--model", str(model))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"tinyharness: error: model {model}: not a valid TFLite model "
                           "(6 bytes without the TFL3 flatbuffer identifier)\n")


def test_cli_emulate(kws_model):
    proc = subprocess.Popen([sys.executable, "-m", "tinyharness.cli", "dut", "emulate", "--model",
                             str(kws_model), "--fault", "error=2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    watchdog = threading.Timer(60, proc.kill)  # never hang on a silent child
    watchdog.start()
    try:
        port = proc.stdout.readline().decode().strip()  # printed once the port is served
        assert port.startswith("/dev/")
        with serial.Serial(port, 115200, timeout=0.2) as ser:
            assert command(ser, b"profile").endswith(b"m-model-[kws01]\r\n" + READY)
            assert command(ser, b"name").startswith(b"e-[Injected fault")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
