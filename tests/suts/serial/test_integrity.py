"""Upload integrity (defect 2): every upload is read back with ``db print`` by default, a read-back
that differs restarts the upload (bounded by ``retries``), the last failure names the sample, and
``verify=0`` is an explicit opt-out recorded in the SUT's description and the run's configuration.
The device is a FakeDUT on a real pseudo-terminal that misreads a hex digit as another valid one,
which no other check of the protocol can see. (The same against the emulator's random bit flips:
test_serial_sut.py::test_emulator_garbled_uploads_never_give_a_wrong_result.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from fake_dut import fake_duts, link_to
from test_serial_sut import kws_dataset, loaded, one_hot, serial_registered  # noqa: F401 (a fixture)
from tinyharness.errors import RunFailed
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.suts.serial.protocol import DUTError
from tinyharness.suts.serial.sut import SerialSUT

dut = pytest.fixture(fake_duts, name="dut")


# -- the link ----------------------------------------------------------------------------------------
def flip(command):  # "db 00..." read as "db 10...": still valid hex, the protocol cannot see it
    return "db 1" + command[4:]


def test_uploads_are_read_back_by_default_and_a_flipped_digit_is_uploaded_again(dut):
    """Defect 2: the default link reads every upload back; a difference restarts the upload."""
    data = bytes(40)
    peer = dut().fault(lambda c: c.startswith("db 00"), flip)
    link = link_to(peer)  # no verify argument: integrity by default
    link.upload(data)
    assert bytes(peer.buffer) == data
    assert link.stats.upload_restarts == 1 and link.stats.verify_mismatches == 1
    assert peer.commands.count("db print") == 2 and peer.commands.count("db load 40") == 2
    # verify=False is an explicit opt-out: the flipped digit stays on the device, unseen
    peer = dut().fault(lambda c: c.startswith("db 00"), flip)
    unverified = link_to(peer, verify=False)
    unverified.upload(data)
    assert bytes(peer.buffer) != data and "db print" not in peer.commands
    assert unverified.stats.verify_mismatches == 0 and unverified.stats.verify_s == 0


def test_a_read_back_that_keeps_differing_fails_after_the_retries(dut):
    peer = dut()
    for _ in range(10):
        peer.fault(lambda c: c.startswith("db 00"), flip)
    link = link_to(peer, retries=2)
    with pytest.raises(DUTError, match="failed after 3 attempt") as caught:
        link.upload(bytes(40))  # both chunks (31 and 9 zero bytes) misread, every time
    assert not caught.value.retryable
    assert "read-back differs from the upload in 2 byte(s), the first at offset 0 of 40 (sent 00, " \
        "the device holds 10)" in str(caught.value)
    assert link.stats.verify_mismatches == 3 and peer.commands.count("db print") == 3


def test_a_short_read_back_is_a_mismatch(dut):
    peer = dut()
    real = peer._reply
    peer._reply = lambda c: real(c)[:-1] if c == "db print" else real(c)  # the last line lost
    with pytest.raises(DUTError, match="read-back gave 32 of the 40 bytes uploaded"):
        link_to(peer, retries=0).upload(bytes(40))


# -- through the serial SUT and the harness ---------------------------------------------------------
def test_uploads_are_verified_by_default_and_repaired(dut):
    assert SerialSUT.parse_options({"port": "/dev/x"}).verify is True
    peer = dut(results=one_hot).fault(lambda c: c.startswith("db 0"), flip)
    sut = loaded(peer)
    try:
        sample = np.full((1, 49, 10, 1), 5, dtype=np.int8)
        sut.prepare(sample)
        assert bytes(peer.buffer) == sample.tobytes()  # the misread byte was uploaded again
        stats = sut.run_stats()
        assert stats["upload_restarts"] == 1 and stats["verify_mismatches"] == 1
        assert 0 < stats["verify_s"] <= stats["upload_s"]
        sut.infer()
        assert sut.output().argmax() == 5
        extra = sut.describe().extra
        assert extra["verify"] is True and extra["upload_check"] == "db print read-back"
    finally:
        sut.close()


def test_verify_0_is_an_explicit_recorded_opt_out(dut):
    peer = dut(results=one_hot).fault(lambda c: c.startswith("db 0"), flip)
    sut = loaded(peer, verify=0)
    try:
        sample = np.full((1, 49, 10, 1), 5, dtype=np.int8)
        sut.prepare(sample)
        assert bytes(peer.buffer) != sample.tobytes() and "db print" not in peer.commands
        extra = sut.describe().extra
        assert extra["verify"] is False and extra["upload_check"] == "none (verify=0)"
    finally:
        sut.close()


def test_an_upload_that_never_reads_back_right_fails_the_run_naming_the_sample(dut, serial_registered,
                                                                               tmp_path):
    peer = dut(results=one_hot)
    real = peer._reply
    # the device's copy of the first sample is always one byte off (a flaky RAM cell, say)
    peer._reply = lambda c: (["m-buffer-ff" + line[11:] if i == 0 else line
                              for i, line in enumerate(real(c))] if c == "db print" else real(c))
    dataset = kws_dataset(tmp_path, count=3)
    first = sorted((dataset / "kws01").glob("*.bin"))[0].read_bytes()
    request = RunRequest(benchmark="kws01", sut="serial", mode="accuracy", dataset=dataset,
                         output=tmp_path / "out", sut_options={"port": peer.port, "retries": "1"})
    with pytest.raises(RunFailed) as caught:
        Run(request).execute(Progress(enabled=False))
    message = str(caught.value)
    assert f"sample #1 (490 bytes, sha256 {hashlib.sha256(first).hexdigest()[:16]}" in message
    assert "upload of 490 bytes failed after 2 attempt(s): read-back differs" in message
    assert peer.commands.count("db print") == 2 and "infer 1 0" not in peer.commands


def test_verify_0_reaches_the_summary(dut, serial_registered, tmp_path):
    peer = dut(results=one_hot)
    request = RunRequest(benchmark="kws01", sut="serial", mode="accuracy",
                         dataset=kws_dataset(tmp_path, count=2), output=tmp_path / "out",
                         sut_options={"port": peer.port, "verify": "0"})
    summary, _ = Run(request).execute(Progress(enabled=False))
    assert summary.settings.sut_config["verify"] is False
    assert summary.system.sut.extra["verify"] is False
    assert summary.system.sut.run_stats["verify_s"] == 0
    assert "db print" not in peer.commands
