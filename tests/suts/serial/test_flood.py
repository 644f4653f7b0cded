"""A device that floods the serial line (defect 20): bytes without a newline, endless lines, an
m-ready for everything, empty lines. The peer is a FakeDUT on a real pseudo-terminal whose thread
writes as fast as the pty takes it; the host must give up quickly, with a short message and short
run files, whether the flood comes at the handshake or in the middle of a run.

No test bounds the wall clock tightly: each asserts what the error says and how long it is, and
that it ends (with limits far above what the bounded code needs on a loaded machine)."""

from __future__ import annotations

import json
import time

import pytest
from fake_dut import fake_duts, link_to
from test_serial_sut import kws_dataset, serial_registered  # noqa: F401 (a fixture)
from tinyharness.errors import RunFailed
from tinyharness.progress import Progress
from tinyharness.runner import Run, RunRequest
from tinyharness.suts.serial.ports import identify, probe
from tinyharness.suts.serial.protocol import EXCERPT, MAX_LINE, MAX_LINES, DUTError
from tinyharness.suts.serial.replies import excerpt

dut = pytest.fixture(fake_duts, name="dut")
SHORT = 400  # characters: a message that quotes an excerpt, never the flood
GENEROUS_S = 60  # the bounded code needs well under a second (a line timeout for "ready")


@pytest.mark.parametrize("kind, says", [
    ("bytes", "no newline in "),
    ("lines", f"{MAX_LINES} lines without m-ready"),
    ("blank", f"more than {MAX_LINE} bytes of empty lines"),
])
def test_a_flooded_response_fails_at_once_and_briefly(dut, kind, says):
    peer = dut().fault(lambda c: c == "name", f"flood:{kind}")
    link = link_to(peer, timeout=5.0)  # the old code read the flood for the whole line timeout
    start = time.monotonic()
    with pytest.raises(DUTError) as caught:
        link.command("name")
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert says in message and "flooding device or the wrong baud rate" in message
    assert not caught.value.retryable  # a retry would only read more of it
    assert len(message) < SHORT, message
    assert elapsed < GENEROUS_S


def test_an_m_ready_flood_is_found_by_the_drain(dut):
    """Every command 'answered' by the flood's m-ready lacks its expected line: the retry's drain
    never finds the line quiet, which is a flood (before: 3 tries per command, 53 s)."""
    peer = dut(banner=False).fault(lambda c: c == "name", "flood:ready")
    link = link_to(peer, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DUTError) as caught:
        identify(link)
    message = str(caught.value)
    assert "without a 0.1 s pause" in message and "flooding device" in message
    assert len(message) < SHORT and time.monotonic() - start < GENEROUS_S
    assert peer.commands == ["name"] * len(peer.commands) and len(peer.commands) <= 3
    strays = link.stats.stray_lines
    assert 0 < len(strays) <= 100 and all(len(ln) <= EXCERPT + 20 for ln in strays)


def test_probe_of_a_port_spewing_bytes(dut):
    peer = dut(banner=False).fault(lambda c: c == "name", "flood:bytes")
    with pytest.raises(DUTError, match="no MLPerf Tiny DUT answered") as caught:
        probe(peer.port, timeout=2.0)
    assert "no newline in" in str(caught.value) and len(str(caught.value)) < SHORT


def test_excerpt():
    assert excerpt("m-ready") == "m-ready"
    long = "x" * 5000
    assert excerpt(long) == "x" * EXCERPT + "… (5,000 bytes)"
    assert excerpt("abc", size=10_000) == "abc… (10,000 bytes)"
    assert len(str(DUTError("bad", "name", long))) < 250


# -- through the harness: the flood starts once the run is under way -------------------------------
@pytest.mark.parametrize("kind", ["bytes", "lines", "ready", "blank"])
def test_a_flood_in_mid_run_fails_the_run_with_a_short_message(dut, serial_registered, tmp_path,
                                                                kind):
    peer = dut().fault(lambda c: c.startswith("db load"), f"flood:{kind}")
    request = RunRequest(benchmark="kws01", sut="serial", mode="accuracy",
                         dataset=kws_dataset(tmp_path, 4), output=tmp_path / "out",
                         sut_options={"port": peer.port, "timeout": "1"})
    start = time.monotonic()
    with pytest.raises(RunFailed) as caught:
        Run(request).execute(Progress(enabled=False))
    assert time.monotonic() - start < GENEROUS_S
    message = str(caught.value)
    assert "sample #1 (490 bytes, sha256 " in message and "flooding device" in message
    assert len(message) < SHORT + 300, message  # plus the run directory's path
    run_dir = next((tmp_path / "out").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "flooding device" in status["error"]
    for name in ("status.json", "detail.txt"):  # were 125 MB each
        assert (run_dir / name).stat().st_size < 64_000, name
    assert peer.flooder is not None  # the flood did start
