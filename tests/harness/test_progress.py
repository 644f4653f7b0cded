"""Progress: a plain line per interval on a non-terminal (CI logs), rich bars on a terminal,
nothing with --quiet. A fake clock drives the interval: no sleeping."""

from __future__ import annotations

import io
import re

import pytest
from fakes import FakeClock
from rich.console import Console

from tinyharness.progress import Progress, amount, duration, eta_s


def plain(clock: FakeClock, enabled: bool = True, interval_s: float = 10.0):
    out = io.StringIO()
    return Progress(enabled, stream=out, clock=clock, interval_s=interval_s), out


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_a_non_terminal_gets_one_line_per_interval_not_more():
    clock = FakeClock()
    progress, out = plain(clock)
    with progress:
        progress.phase("single-stream", 30.0, unit="s")
        for step in range(1, 121):  # an update every 0.25 s for 30 s
            clock.advance_s(0.25)
            progress.update(step / 4, f"{step * 100} queries")
    got = lines(out)
    assert len(got) == 3, got  # at 10, 20 and 30 s
    assert got[0] == "tinyharness: single-stream 10.0/30.0 s, 4000 queries, ETA 20 s"
    assert got[-1] == "tinyharness: single-stream 30.0/30.0 s, 12000 queries, ETA 0 s"


def test_the_line_says_phase_position_queries_and_eta():
    clock = FakeClock()
    progress, out = plain(clock, interval_s=4.0)
    with progress:
        progress.phase("single-stream", 10.0, unit="s")
        clock.advance_s(4.0)
        progress.update(4.0, "51234 queries")
    assert lines(out) == ["tinyharness: single-stream 4.0/10.0 s, 51234 queries, ETA 6 s"]


def test_windows_show_window_k_of_5_and_an_eta_from_their_pace():
    clock = FakeClock()
    progress, out = plain(clock)
    with progress:
        progress.phase("MLPerf Tiny windows (host-timed)", 5, unit="window")
        progress.update(0)  # before the first window: no line (interval not reached), no ETA
        for k in range(1, 6):
            clock.advance_s(10.5)
            progress.update(k)
    got = lines(out)
    assert got[0] == "tinyharness: MLPerf Tiny windows (host-timed) window 1/5, ETA 42 s"
    assert got[1] == "tinyharness: MLPerf Tiny windows (host-timed) window 2/5, ETA 32 s"
    assert got[-1] == "tinyharness: MLPerf Tiny windows (host-timed) window 5/5, ETA 0 s"
    assert len(got) == 5


def test_the_interval_runs_across_phases_and_an_unknown_total_has_no_eta():
    clock = FakeClock()
    progress, out = plain(clock)
    with progress:
        progress.phase("accuracy", 360)
        clock.advance_s(6)
        progress.update(64)  # 6 s: no line yet
        progress.phase("offline", None)
        clock.advance_s(5)
        progress.update(1000, "1000 samples")  # 11 s since the start
        clock.advance_s(1)
        progress.update(2000)  # 1 s after the last line
    assert lines(out) == ["tinyharness: offline 1000, 1000 samples"]


def test_the_first_line_waits_an_interval_from_the_start_of_the_display():
    clock = FakeClock()
    progress, out = plain(clock)
    clock.advance_s(100)  # time before the display starts does not count
    with progress:
        progress.phase("accuracy", 360, unit="sample")
        clock.advance_s(9.9)
        progress.update(128)
        assert lines(out) == []
        clock.advance_s(0.1)
        progress.update(192)
    assert lines(out) == ["tinyharness: accuracy sample 192/360, ETA 9 s"]


def test_quiet_prints_nothing_on_either_kind_of_stream():
    clock = FakeClock()
    progress, out = plain(clock, enabled=False, interval_s=0.0)
    console_file = io.StringIO()
    forced = Progress(False, console=Console(file=console_file, force_terminal=True), clock=clock)
    for p in (progress, forced):
        with p:
            p.phase("single-stream", 10.0, unit="s")
            clock.advance_s(60)
            p.update(10.0, "5 queries")
    assert out.getvalue() == "" and console_file.getvalue() == ""
    assert not forced.terminal


def test_existing_positional_calls_still_work():
    clock = FakeClock()
    progress, out = plain(clock, interval_s=1.0)
    with progress:
        progress.phase("accuracy", 360)
        clock.advance_s(1)
        progress.update(180)
        progress.update(360, "")
    assert lines(out) == ["tinyharness: accuracy 180/360, ETA 1 s"]
    Progress(False).update(3)  # as the scenario tests use it: never entered, silent


def test_a_terminal_gets_rich_bars_with_position_and_eta():
    clock = FakeClock()
    file = io.StringIO()
    progress = Progress(True, console=Console(file=file, force_terminal=True, width=160), clock=clock)
    assert progress.terminal
    with progress:
        progress.phase("single-stream", 10.0, unit="s")
        clock.advance_s(4)
        progress.update(4.0, "51234 queries")
        progress.phase("MLPerf Tiny windows (host-timed)", 5, unit="window")
        for k in range(1, 3):
            clock.advance_s(10)
            progress.update(k)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", file.getvalue())  # without the ANSI codes
    assert "4.0/10.0 s" in text and "51234 queries" in text and "ETA 6 s" in text
    assert "window 2/5" in text and "ETA 30 s" in text
    assert "tinyharness: " not in text  # no plain lines on a terminal


def test_a_terminal_stream_is_detected():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Progress(True, stream=Tty()).terminal
    assert not Progress(True, stream=io.StringIO()).terminal
    assert not Progress(False, stream=Tty()).terminal


def test_a_broken_stream_does_not_fail_the_run():
    clock = FakeClock()
    out = io.StringIO()
    progress = Progress(True, stream=out, clock=clock, interval_s=0.0)
    out.close()
    progress.phase("accuracy", 10)
    progress.update(5)  # writes to a closed stream: ignored


@pytest.mark.parametrize("completed,total,unit,expected", [
    (4.0, 10.0, "s", "4.0/10.0 s"), (2.25, None, "s", "2.2 s"), (2, 5, "window", "window 2/5"),
    (128, 360, None, "128/360"), (1.5, 3, None, "1.5/3"), (7, None, "sample", "sample 7")])
def test_amount(completed, total, unit, expected):
    assert amount(completed, total, unit) == expected


def test_eta_and_duration():
    assert eta_s(0, 5, 10.0) is None and eta_s(3, None, 10.0) is None
    assert eta_s(1, 5, 10.0) == 40.0 and eta_s(6, 5, 10.0) == 0.0
    assert [duration(s) for s in (0, 5.6, 59.4, 125, 3780)] == ["0 s", "6 s", "59 s", "2 min 05 s",
                                                                 "1 h 03 min"]
