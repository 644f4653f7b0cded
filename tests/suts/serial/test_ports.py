"""Finding a DUT (suts/serial/ports.py, suts/serial/cli.py): port listing with known boards,
and the protocol probe against the scripted FakeDUT (and the emulator, when it is present)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from fake_dut import fake_duts
from tinyharness.suts.serial.cli import list_ports_cmd, probe_cmd
from tinyharness.errors import UsageError
from tinyharness.suts.serial import ports
from tinyharness.suts.serial.protocol import DUTError

dut = pytest.fixture(fake_duts, name="dut")


def fake_comports(monkeypatch):
    def port(device, vid=None, pid=None, description="n/a"):
        return SimpleNamespace(device=device, vid=vid, pid=pid, description=description,
                               serial_number="066D" if vid else None,
                               manufacturer="STMicroelectronics" if vid == 0x0483 else None)

    found = [port("/dev/ttyS0"), port("/dev/ttyACM0", 0x0483, 0x374B, "STM32 STLink"),
             port("/dev/ttyUSB0", 0x2341, 0x0043, "Arduino Uno"),
             port("/dev/ttyUSB1", 0x1234, 0x5678, "Some adapter")]
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: found)


@pytest.mark.parametrize("vid, pid, name", [
    (0x0483, 0x374B, "ST-LINK/V2-1"), (0x0483, 0x374E, "ST-LINK/V3"), (0x0483, 0x3752, "ST-LINK"),
    (0x2341, 0x8057, "Arduino"), (0x1366, 0x1015, "J-Link"), (0x1915, 0x520F, "Nordic"),
    (0x0403, 0x6001, "FTDI"),
])
def test_known_boards(vid, pid, name):
    assert name in ports.known_board(vid, pid)


def test_unknown_ids():
    assert ports.known_board(0x0483, 0x0001) is None and ports.known_board(None, None) is None


def test_list_ports_marks_known_boards(monkeypatch):
    fake_comports(monkeypatch)
    found = ports.list_ports()
    assert [p.device for p in found] == ["/dev/ttyACM0", "/dev/ttyUSB0", "/dev/ttyUSB1"]
    acm = found[0]
    assert acm.usb_id == "0483:374B" and acm.known and "ST-LINK" in acm.board
    assert not found[2].known and found[2].to_dict()["known"] is False
    assert len(ports.list_ports(include_all=True)) == 4


def test_list_command(monkeypatch):
    fake_comports(monkeypatch)
    out = CliRunner().invoke(list_ports_cmd, [])
    assert out.exit_code == 0 and "known board: Arduino" in out.output
    rows = json.loads(CliRunner().invoke(list_ports_cmd, ["--json"]).output)
    assert rows[0]["usb_id"] == "0483:374B" and rows[0]["known"]


def test_probe(dut):
    peer = dut(banner=False, model="ic01", name="Vendor X", clock_us=123456)
    found = ports.probe(peer.port, timeout=0.5)
    assert (found["name"], found["model"], found["timestamp_mode"]) == ("Vendor X", "ic01", "performance")
    assert found["profile"].startswith("ULPMark") and found["lap_us_sample"] == 123456
    assert peer.commands == ["name", "profile", "timestamp"]


def test_probe_energy_firmware(dut):
    found = ports.probe(dut(banner=False, mode="energy").port, timeout=0.5)
    assert found["timestamp_mode"] == "energy" and found["lap_us_sample"] is None


def test_probe_command(dut):
    peer = dut(banner=False)
    out = CliRunner().invoke(probe_cmd, [peer.port, "--timeout", "0.5", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["model"] == "kws01"
    text = CliRunner().invoke(probe_cmd, [peer.port, "--timeout", "0.5"]).output
    assert "model          : kws01" in text


def test_probe_errors_are_clear_and_bounded(dut):
    result = CliRunner().invoke(probe_cmd, ["/dev/no-such-tty"])
    assert isinstance(result.exception, UsageError)
    assert "cannot open serial port /dev/no-such-tty" in str(result.exception)
    peer = dut(banner=False)
    for _ in range(10):
        peer.fault(lambda c: True, "drop")
    with pytest.raises(DUTError, match="no MLPerf Tiny DUT answered"):
        ports.probe(peer.port, timeout=0.2)
    # bounded: a fixed number of tries, each with its own timeout, then the error
    assert peer.commands == ["name"] * len(peer.commands) and 1 <= len(peer.commands) <= 4


@pytest.mark.parametrize("option, value, says", [
    ("--timeout", "nan", "'nan' is not a finite number"),
    ("--timeout", "inf", "'inf' is not a finite number"),
    ("--timeout", "0", "0.0 is not in the range 0<x<=600"),
    ("--timeout", "-1", "is not in the range"),
    ("--baud", "0", "0 is not in the range 1<=x<=20000000"),
])
def test_probe_options_are_finite_and_bounded(option, value, says):
    """Defect 17: 'dut probe loop:// --timeout nan' hung (every deadline comparison is False).
    In a child process, so that a hang fails the test instead of stopping it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "dut", "probe", "loop://",
                           option, value], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_probe_of_an_echoing_port_ends():
    """loop:// echoes 'name%' back without a newline or m-ready: a bounded number of bounded waits."""
    with pytest.raises(DUTError, match="no MLPerf Tiny DUT answered on loop://"):
        ports.probe("loop://", timeout=0.2)


def test_dut_probe_against_the_emulator(shared_data):
    pytest.importorskip("tflite_micro")
    emulator_mod = pytest.importorskip("tinyharness.suts.serial.emulator")
    from tinyharness.cli import cli

    dut_group = cli.commands.get("dut")
    attached = dut_group is not None and "probe" in dut_group.commands
    model = shared_data / "models" / "kws" / "kws_ref_model.tflite"
    with emulator_mod.Emulator(model) as emulator:
        if attached:  # tinyharness dut probe PORT
            out = CliRunner().invoke(cli, ["dut", "probe", emulator.port, "--json"])
        else:  # not attached to the dut group yet: the command itself
            out = CliRunner().invoke(probe_cmd, [emulator.port, "--json"])
        assert out.exit_code == 0, out.output
        found = json.loads(out.output)
    assert found["model"] == "kws01" and found["name"] == "unspecified"
    assert found["profile"] == "ULPMark for tinyML Firmware V0.0.1"
    assert found["timestamp_mode"] == "performance" and isinstance(found["lap_us_sample"], int)
    assert found["banner"] == []  # written at start(); pyserial flushed it when it opened the port


def test_identify_reads_the_boot_banner_of_the_emulator(shared_data):
    pytest.importorskip("tflite_micro")
    emulator_mod = pytest.importorskip("tinyharness.suts.serial.emulator")
    import serial
    from tinyharness.suts.serial.protocol import DUTLink

    emulator = emulator_mod.Emulator(shared_data / "models" / "kws" / "kws_ref_model.tflite")
    port = serial.Serial(emulator.port, 115200, timeout=1)  # open first: the banner is kept
    try:
        emulator.start()
        info = ports.identify(DUTLink(port, line_timeout=2))
    finally:
        port.close()
        emulator.stop()
    assert info.banner[0] == "m-timestamp-mode-performance" and info.banner[-1] == "m-ready"
    assert info.timestamp_mode == "performance" and info.lap_us is None  # no timestamp% needed
