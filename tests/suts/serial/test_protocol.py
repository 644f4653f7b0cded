"""The DUT serial protocol (suts/serial/protocol.py): canned transcripts, then a scripted peer on a
real pseudo-terminal pair (``FakeDUT``, fake_dut.py)."""

from __future__ import annotations

import threading
import time

import pytest
import serial
from fake_dut import fake_duts, link_to
from tinyharness.suts.serial.ports import identify
from tinyharness.suts.serial.protocol import (
    WRAP,
    DUTError,
    DUTLink,
    LapClock,
    Response,
    check,
    clean,
    parse_results,
)

# The real v0.5 transcript of docs/dut-protocol.md §4.3 (KWS, infer 100 1).
V05 = ["m-warmup-start-1", "m-warmup-done", "m-infer-start-100", "m-lap-us-251222283",
       "m-lap-us-269414673", "m-infer-done",
       "m-results-[0.000,0.003,0.000,0.000,0.000,0.000,0.000,0.000,0.000,0.000,0.760,0.234]",
       "m-ready"]

dut = pytest.fixture(fake_duts, name="dut")


# -- canned transcripts --------------------------------------------------------------------------
def test_v05_transcript_gives_181_9_ms_per_inference():
    reply = check("infer 100 1", V05)
    assert reply.laps == [251222283, 269414673]
    elapsed = LapClock().elapsed_us(reply)
    assert elapsed == 18192390
    assert elapsed / 100 / 1000 == pytest.approx(181.9, abs=0.05)
    assert reply.results[10] == 0.760 and len(reply.results) == 12


def test_wraparound_of_the_32_bit_counter():
    reply = check("infer 10 0", ["m-infer-start-10", f"m-lap-us-{WRAP - 1000}", "m-lap-us-500",
                                 "m-infer-done", "m-ready"])
    assert LapClock().elapsed_us(reply) == 1500


def test_boot_stamp_before_infer_start_is_not_t0():
    reply = check("infer 1 0", ["m-lap-us-5", "m-infer-start-1", "m-lap-us-100", "m-lap-us-350",
                                "m-ready"])
    assert LapClock().elapsed_us(reply) == 250


def test_too_few_timestamps_is_an_error():
    with pytest.raises(DUTError, match="too few timestamps"):
        LapClock().elapsed_us(check("infer 1 0", ["m-infer-start-1", "m-infer-done", "m-ready"]))


def test_results_formats():
    assert parse_results("m-results-[0.023,0.977,]") == [0.023, 0.977]  # VWW's trailing comma
    assert parse_results("m-results-[1.234]") == [1.234]  # AD: the window MSE
    assert parse_results("m-results-[]") == []
    assert parse_results("m-ready") is None
    with pytest.raises(DUTError, match="unparsable"):
        parse_results("m-results-[0.1,x]")


def test_identity_lines_and_cleaning():
    r = Response("profile", ("m-name-dut-[STMicroelectronics]",
                             "m-profile-[ULPMark for tinyML Firmware V0.0.1]", "m-model-[vww01]",
                             "m-timestamp-mode-energy", "m-[Expecting 490 bytes]", "m-load-done"))
    assert (r.name, r.profile, r.model, r.timestamp_mode) == (
        "STMicroelectronics", "ULPMark for tinyML Firmware V0.0.1", "vww01", "energy")
    assert r.expecting == 490 and r.load_done
    assert clean(b"\0m-ready\r") == "m-ready"


@pytest.mark.parametrize("line, retryable", [
    ("e-[Unknown command: nmae]", True),
    ("e-[Insufficent number of hex digits]", True),
    ("[dut]: e-[Invalid hex digit 'zz']", True),
    ("Supplied buffer size 30000 exceeds maximum of 27648", False),
    ("Input db has 400 elemented, expected 490", False),
])
def test_error_lines_raise_with_command_and_line(line, retryable):
    with pytest.raises(DUTError) as caught:
        check("db load 30000", ["m-[Expecting 30000 bytes]", line, "m-ready"])
    assert caught.value.command == "db load 30000" and caught.value.line == line
    assert line in str(caught.value) and caught.value.retryable is retryable


def test_ordinary_lines_are_not_errors():
    check("profile", ["m-profile-[ULPMark for tinyML Firmware V0.0.1]", "m-model-[kws01]", "m-ready"])


# -- over a pty pair -----------------------------------------------------------------------------
def test_command_roundtrip_and_handshake(dut):
    peer = dut(banner=False, mode="energy")
    link = link_to(peer)
    peer.boot()  # after the port is open
    info = identify(link)
    assert (info.name, info.model, info.timestamp_mode) == ("FakeVendor", "kws01", "energy")
    assert info.banner == ("m-timestamp-mode-energy", "m-init-done", "m-ready")
    assert peer.commands == ["name", "profile"]  # the banner gave the mode: no timestamp%


def test_mode_from_timestamp_command_without_banner(dut):
    assert identify(link_to(dut(banner=False))).timestamp_mode == "performance"
    assert identify(link_to(dut(banner=False, mode="energy"))).timestamp_mode == "energy"


def test_name_retried_after_a_dropped_command(dut):
    peer = dut().fault(lambda c: c == "name", "drop")
    assert identify(link_to(peer, timeout=0.3)).name == "FakeVendor"
    assert peer.commands[:2] == ["name", "name"]


def test_upload_bytes_and_chunks(dut):
    peer = dut()
    link = link_to(peer, chunk=31)
    data = bytes(range(256)) * 2 + b"\x07" * 2  # 514 bytes: 17 chunks, the last one 18 bytes
    link.upload(data)
    assert bytes(peer.buffer) == data
    chunks = [c for c in peer.commands if c.startswith("db ") and c[3:7] not in ("load", "prin")]
    assert len(chunks) == 17 and all(len(c) <= 65 for c in chunks)
    assert peer.commands[0] == "db load 514" and link.stats.upload_restarts == 0
    assert peer.commands[-1] == "db print"  # read back by default
    assert link.stats.verify_mismatches == 0 and 0 < link.stats.verify_s <= link.stats.upload_s


@pytest.mark.parametrize("action", ["drop", "garble", "error", "no-ready"])
def test_upload_restarts_after_a_lost_or_garbled_chunk(dut, action):
    peer = dut().fault(lambda c: c.startswith("db ") and "load" not in c and len(c) < 60, action)
    link = link_to(peer, timeout=0.3)
    data = bytes(range(40))  # chunks of 31 + 9 bytes; the fault hits the short last one
    link.upload(data)
    assert bytes(peer.buffer) == data
    assert link.stats.upload_restarts == 1
    assert peer.commands.count("db load 40") == 2


def test_upload_gives_up_after_retries(dut):
    peer = dut()
    for _ in range(10):
        peer.fault(lambda c: c.startswith("db 00"), "garble")
    link = link_to(peer, timeout=0.3, retries=2)
    with pytest.raises(DUTError, match="failed after 3 attempt") as caught:
        link.upload(bytes(10))
    assert "Insufficent" in str(caught.value) and peer.commands.count("db load 10") == 3


def test_upload_rejects_early_load_done_and_wrong_expecting(dut):
    link = link_to(dut(echo_done_early=True), retries=0)
    with pytest.raises(DUTError, match="m-load-done after 31 of 40 bytes"):
        link.upload(bytes(40))
    peer = dut()
    peer._reply = lambda c: ["m-[Expecting 39 bytes]"]
    with pytest.raises(DUTError, match="expects 39 bytes, not 40"):
        link_to(peer, retries=0).upload(bytes(40))


def test_oversized_load_is_fatal_without_retry(dut):
    peer = dut()
    peer._reply = lambda c: ["m-[Expecting 30000 bytes]",
                             "Supplied buffer size 30000 exceeds maximum of 27648"]
    with pytest.raises(DUTError, match="Supplied buffer size"):
        link_to(peer).upload(bytes(30000))
    assert peer.commands == ["db load 30000"]


def test_delayed_ready_within_the_timeout_is_fine(dut):
    peer = dut().fault(lambda c: c == "name", "delay:0.3")
    assert link_to(peer, timeout=1.0).command("name").name == "FakeVendor"


def test_missing_ready_times_out_within_bounds(dut):
    peer = dut().fault(lambda c: c == "name", "no-ready")
    link = link_to(peer, timeout=0.3)
    with pytest.raises(DUTError, match="no m-ready: silent for 0.3 s") as caught:
        link.command("name")
    assert caught.value.command == "name"
    assert link.command("name").name == "FakeVendor"  # resynchronised: the next command works


def test_overall_deadline_bounds_a_chatty_device(dut):
    peer = dut()
    peer._reply = lambda c: []  # a device that prints a line every 0.1 s but never m-ready
    peer.fault(lambda c: c == "name", "no-ready")
    link = link_to(peer, timeout=0.5)
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            peer.emit("m-chatter")
            time.sleep(0.1)

    threading.Thread(target=chatter, daemon=True).start()
    try:  # the chatter keeps every line timeout from firing: only the deadline can end it
        with pytest.raises(DUTError, match="deadline"):
            link.command("name", line_timeout=0.5, total=1.0)
    finally:
        stop.set()


def test_stray_lines_after_ready_are_not_taken_as_a_response(dut):
    peer = dut(stray_after_ready=True)
    link = link_to(peer)
    link.command("name")
    time.sleep(0.05)
    assert link.command("profile").model == "kws01"
    assert "debug: after ready" in link.stats.stray_lines


def test_disconnect_is_a_clear_error(dut):
    peer = dut().fault(lambda c: c == "name", "disconnect")
    link = link_to(peer, timeout=2.0)
    with pytest.raises(DUTError, match="device disconnected") as caught:  # not a timeout
        link.command("name")
    assert not caught.value.retryable
    with pytest.raises(DUTError, match="device disconnected"):
        link.command("profile")


def test_infer_over_the_pty(dut):
    peer = dut(us_per_inference=1234, clock_us=WRAP - 5000, trailing_comma=True,
               results=lambda data: [0.25, 0.75])
    link = link_to(peer)
    link.upload(bytes(10))
    reply = link.infer(20, 3, timeout=2.0)
    assert LapClock().elapsed_us(reply) == 20 * 1234  # across the wrap
    assert reply.results == [0.25, 0.75] and peer.commands[-1] == "infer 20 3"


def test_commands_are_validated_before_sending(dut):
    link = link_to(dut())
    for bad in ("", "name%", "db " + "00" * 39):
        with pytest.raises(ValueError):
            link.command(bad)
    with pytest.raises(ValueError):
        DUTLink(None, chunk=39)


def test_garbled_infer_counts_are_refused(dut):
    peer = dut().fault(lambda c: c.startswith("infer"), lambda c: "infer 18 0")
    link = link_to(peer)
    with pytest.raises(DUTError, match="device ran infer 18 0") as caught:
        link.infer(10, 0, timeout=1.0)
    assert caught.value.retryable


def test_infer_timeout_shrinks_after_infer_done(dut):
    peer = dut().fault(lambda c: c.startswith("infer"), "no-ready")
    link = link_to(peer, timeout=0.2)
    with pytest.raises(DUTError, match="silent for 0.2 s"):
        link.infer(1, 0, timeout=30.0)  # m-ready lost after the results: not a 30 s wait


def test_a_late_ready_is_not_taken_for_the_next_response(dut):
    peer = dut().fault(lambda c: c == "name", "delay:0.35")
    link = link_to(peer, timeout=0.2)
    with pytest.raises(DUTError, match="silent for 0.2 s"):
        link.command("name")
    with pytest.raises(DUTError, match="lacks m-model-"):  # the first name's m-ready, late
        link.command("profile", expect="m-model-")
    time.sleep(0.1)
    assert link.command("profile", expect="m-model-").model == "kws01"


def test_a_device_that_stops_reading_gives_a_write_timeout(dut):
    peer = dut()
    peer._stop.set()  # the device stops reading: the pty's input queue fills up
    peer.thread.join(2)
    link = DUTLink(serial.Serial(peer.port, 115200, timeout=0.1, write_timeout=0.2), 0.1)
    with pytest.raises(DUTError, match="write timed out") as caught:
        for _ in range(100_000):
            link.send("db " + "00" * 31)
    assert caught.value.retryable
