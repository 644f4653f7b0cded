"""The MLPerf Tiny / EEMBC DUT serial protocol, host side (docs/dut-protocol.md).

One command at a time: write ``<cmd>%``, read ``\\n``-terminated lines (``\\r`` and NUL stripped)
until the first line that contains ``m-ready``. ``e-[...]`` lines and the unprefixed
``Supplied buffer size`` / ``Input db has`` lines are errors (:mod:`.replies` parses them).

Everything a device sends is bounded, so a broken or hostile device fails the run quickly with a
short message instead of hanging it or filling memory and logs:

- a line is at most :data:`MAX_LINE` bytes (the reference firmware's longest, an
  ``e-[Unknown command: …]`` echo of a full 80-character command, is about 105; ``db print``
  lines are 32, result lines under 100); a longer one is a flood or the wrong baud rate;
- a response holds at most :data:`MAX_LINES` lines besides those the command asks for (``db
  print``'s ``m-buffer-`` lines) before its ``m-ready``;
- every read waits at most the per-line timeout, and a whole response at most its deadline
  (4 line timeouts by default, plus the wire time of what it must carry);
- discarding stray input (:meth:`DUTLink.drain`) keeps at most :data:`KEEP_BYTES`, and a device
  that never pauses for it is a flood;
- retries are counted (``retries``), so every exchange has a bounded number of bounded waits.

Flood errors are not retryable. Uploads are verified by default: the loaded buffer is read back
with ``db print``, which every reference firmware implements, and a difference restarts the upload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .replies import (  # noqa: F401 (re-exported: the protocol's public names)
    EXCERPT,
    FATAL_SIZE_LINES,
    READY,
    WRAP,
    DUTError,
    LapClock,
    Response,
    check,
    clean,
    error_in,
    excerpt,
    parse_buffer,
    parse_results,
)

MAX_COMMAND = 79  # EE_CMD_SIZE is 80 with the terminating NUL; longer commands are silently corrupted
MAX_LINE = 1024  # bytes in one received line: about 10x the longest the reference firmware prints
MAX_LINES = 64  # lines of one response besides those it asks for (help has 12, an infer 8)
READ_CHUNK = 4096  # bytes taken from the port per read
KEEP_BYTES = 8192  # of input discarded by drain(), the tail kept for stray_lines
STRAY_LINES = 100  # the last stray lines kept for the logs
BUFFER_LINE = len("m-buffer-") + 8 * 3 + 1  # one `db print` line of 8 bytes, with its \r\n
FLOOD = "a flooding device or the wrong baud rate"


@dataclass
class LinkStats:
    """Counters for the logs: bytes uploaded, time spent, restarts, verification."""

    uploads: int = 0
    upload_bytes: int = 0
    upload_s: float = 0.0  # everything: db load, the chunks, the read-backs, the restarts
    upload_restarts: int = 0
    verify_s: float = 0.0  # of upload_s, the `db print` read-backs
    verify_mismatches: int = 0  # read-backs that differed from the upload (each restarted it)
    stray_lines: list[str] = field(default_factory=list)  # the last lines no command asked for


def _gone(exc: BaseException, command: str | None) -> DUTError:
    if type(exc).__name__ == "SerialTimeoutException":  # pyserial's write timeout
        return DUTError("write timed out: the device stopped reading", command)
    return DUTError(f"device disconnected ({exc})", command, retryable=False)


class DUTLink:
    """The protocol over an open pyserial port (or anything with read/write/in_waiting/timeout).

    ``verify`` (default True) reads every upload back with ``db print`` and restarts it when the
    device holds other bytes than were sent: a flipped hex digit is still valid hex, so the
    protocol alone cannot see it. False is an explicit opt-out (faster uploads, unverified)."""

    def __init__(self, port: Any, line_timeout: float = 5.0, chunk: int = 31, retries: int = 3,
                 verify: bool = True, log: Callable[[str, str], None] | None = None) -> None:
        if not 1 <= chunk <= (MAX_COMMAND - 3) // 2:
            raise ValueError(f"chunk must be 1..{(MAX_COMMAND - 3) // 2} bytes")
        if not 0 < line_timeout < float("inf"):  # nan fails this too
            raise ValueError(f"line_timeout must be a finite number of seconds > 0, not {line_timeout!r}")
        if not 0 <= retries <= 100:
            raise ValueError("retries must be 0..100")
        self.port, self.line_timeout, self.chunk, self.retries = port, line_timeout, chunk, retries
        self.verify = verify
        self.log = log  # log(direction, text): "tx" / "rx"
        self.stats = LinkStats()
        self._buf = bytearray()  # received, not yet split into lines: at most MAX_LINE + READ_CHUNK

    # -- lines ------------------------------------------------------------------------------
    def _read(self, timeout: float, command: str | None) -> bytes:
        try:
            if self.port.timeout != timeout:
                self.port.timeout = timeout  # reconfigures the port: fails once it is gone
            return self.port.read(min(max(1, self.port.in_waiting), READ_CHUNK))
        except Exception as exc:  # SerialException, OSError: the port went away
            raise _gone(exc, command) from None

    def _waiting(self, command: str | None) -> int:
        try:
            return self.port.in_waiting
        except Exception as exc:
            raise _gone(exc, command) from None

    def _wire_s(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the wire at the port's baud rate (8N1: 10 bits a byte)."""
        baud = getattr(self.port, "baudrate", None)
        return nbytes * 10 / baud if isinstance(baud, (int, float)) and baud > 0 else 0.0

    def _flood(self, what: str, command: str | None) -> DUTError:
        head, size = bytes(self._buf[:EXCERPT]).decode("ascii", "replace"), len(self._buf)
        self._buf.clear()
        return DUTError(f"{what} ({FLOOD}): {excerpt(head, size)!r}", command, retryable=False)

    def readline(self, line_timeout: float, deadline: float, command: str | None = None) -> str:
        """The next non-empty line; DUTError after ``line_timeout`` without one or past
        ``deadline``, and (not retryable) when no newline comes within :data:`MAX_LINE` bytes."""
        line_deadline = min(time.monotonic() + line_timeout, deadline)
        blank = 0  # bytes of empty lines skipped: a flood of bare newlines is a flood too
        while True:
            cut = self._buf.find(b"\n", 0, MAX_LINE + 1)
            if cut >= 0:
                raw = bytes(self._buf[:cut])
                del self._buf[:cut + 1]
                line = clean(raw)
                if line:
                    if self.log:
                        self.log("rx", line)
                    return line
                blank += cut + 1
                if blank > MAX_LINE:
                    raise self._flood(f"more than {MAX_LINE} bytes of empty lines", command)
                continue
            if len(self._buf) > MAX_LINE:
                raise self._flood(f"no newline in {len(self._buf):,} bytes (a line has at most "
                                  f"{MAX_LINE})", command)
            left = line_deadline - time.monotonic()
            if left <= 0:
                partial = clean(bytes(self._buf)) or None
                raise DUTError(f"no m-ready: silent for {line_timeout:g} s"
                               if deadline > line_deadline else "response deadline passed",
                               command, partial)
            # A fixed read timeout avoids reconfiguring the port on every read; near the end
            # of the budget the remainder is used so that no read outlives it.
            self._buf += self._read(min(left, line_timeout), command)

    def read_until_ready(self, command: str | None, line_timeout: float | None = None,
                         total: float | None = None, max_lines: int = MAX_LINES) -> list[str]:
        """Lines up to the first containing ``m-ready``, at most ``max_lines`` of them and within
        ``total`` s (default 4 line timeouts). A long ``line_timeout`` (an infer) holds until
        ``m-infer-done``; the few lines after it get the ordinary one."""
        line_timeout = self.line_timeout if line_timeout is None else line_timeout
        deadline = time.monotonic() + (total if total is not None else 4 * line_timeout)
        lines = []
        while True:
            line = self.readline(line_timeout, deadline, command)
            lines.append(line)
            if READY in line:
                return lines
            if len(lines) >= max_lines:
                raise DUTError(f"{len(lines)} lines without m-ready, more than a response has "
                               f"({FLOOD})", command, line, retryable=False)
            if "m-infer-done" in line:
                line_timeout = min(line_timeout, self.line_timeout)

    def drain(self, quiet: float = 0.1, limit: float | None = None) -> list[str]:
        """Discard input until the line is quiet for ``quiet`` s, for at most ``limit`` s (default:
        the line timeout); the last :data:`KEEP_BYTES` go to ``stats.stray_lines``. A device that
        never pauses for ``quiet`` within a ``limit`` of 4 ``quiet`` or more is flooding: a
        DUTError that is not retryable. ``quiet=0`` takes only what is pending."""
        limit = self.line_timeout if limit is None else limit
        end = time.monotonic() + limit
        junk, total = bytearray(self._buf[-KEEP_BYTES:]), len(self._buf)
        self._buf.clear()
        paused = False
        while (left := end - time.monotonic()) > 0:
            data = self._read(min(quiet, left), None)
            if not data:
                paused = True
                break
            total += len(data)
            junk += data
            del junk[:-KEEP_BYTES]
        lines = [excerpt(ln) for ln in (clean(b) for b in bytes(junk).split(b"\n")) if ln]
        self.stats.stray_lines = (self.stats.stray_lines + lines)[-STRAY_LINES:]
        if quiet > 0 and limit >= 4 * quiet and not paused and total:
            whole = lines[:-1] if not junk.endswith(b"\n") else lines  # the last one is cut off
            tail = (whole or lines or [""])[-1]
            raise DUTError(f"the device sent {total:,} bytes in {limit:g} s without a {quiet:g} s "
                           f"pause ({FLOOD}): {excerpt(tail)!r}", retryable=False)
        return lines

    # -- commands ---------------------------------------------------------------------------
    def send(self, command: str) -> None:
        if not command or "%" in command or len(command) > MAX_COMMAND:
            raise ValueError(f"invalid DUT command {command!r} (1..{MAX_COMMAND} characters, no %)")
        if self.log:
            self.log("tx", command)
        try:
            self.port.write(command.encode("ascii") + b"%")
        except Exception as exc:
            raise _gone(exc, command) from None

    def command(self, command: str, line_timeout: float | None = None, total: float | None = None,
                expect: str | None = None, max_lines: int = MAX_LINES) -> Response:
        """Send one command and return its checked response (see :func:`check`); with ``expect``,
        a response without a line containing it is an error (a late ``m-ready`` of an earlier
        command taken for this one's)."""
        if self._buf or self._waiting(command):  # a late line of an earlier command: never a response
            self.drain(quiet=0.0, limit=0.05)
        start = time.monotonic()
        self.send(command)
        lines = self.read_until_ready(command, line_timeout, total, max_lines)
        reply = check(command, lines, time.monotonic() - start)
        if expect is not None and not any(expect in line for line in lines):
            raise DUTError(f"response lacks {expect}... (out of step with the device?)", command,
                           lines[0])
        return reply

    def retrying(self, command: str | Callable[[], Response], attempts: int = 3,
                 expect: str | None = None) -> Response:
        """A command (or a call such as ``lambda: link.infer(...)``), repeated after a retryable
        failure, ``attempts`` times in all (the MLCommons runner tries name and profile 3 times)."""
        if isinstance(command, str):
            text, call = command, lambda: self.command(text, expect=expect)
        else:
            call = command
        for attempt in range(1, attempts):
            try:
                return call()
            except DUTError as exc:
                if not exc.retryable:
                    raise
                self.drain()
        return call()

    # -- upload -----------------------------------------------------------------------------
    def upload(self, data: bytes) -> None:
        """``db load N``, ``db <hex>`` chunks, then (``verify``) a ``db print`` read-back compared
        with ``data``. The whole upload restarts on a lost or garbled chunk or a read-back that
        differs, up to ``retries`` times; then a DUTError that is not retryable."""
        start = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                self._upload_once(data)
                break
            except DUTError as exc:
                failed = f"upload of {len(data)} bytes failed after {attempt + 1} attempt(s)"
                if not exc.retryable or attempt == self.retries:
                    raise DUTError(f"{failed}: {exc}", retryable=False) from exc
                self.stats.upload_restarts += 1
                try:
                    self.drain()
                except DUTError as flood:
                    raise DUTError(f"{failed}: {flood}", retryable=False) from exc
        self.stats.uploads += 1
        self.stats.upload_bytes += len(data)
        self.stats.upload_s += time.monotonic() - start

    def _upload_once(self, data: bytes) -> None:
        n = len(data)
        if n == 0:
            raise ValueError("cannot upload an empty sample")
        head = f"db load {n}"
        reply = self.command(head, expect="m-[Expecting")
        if reply.expecting != n:
            raise DUTError(f"device expects {reply.expecting} bytes, not {n}", head,
                           next((ln for ln in reply.lines if "Expecting" in ln), reply.lines[0]))
        for offset in range(0, n, self.chunk):
            piece = data[offset: offset + self.chunk]
            cmd = "db " + piece.hex()
            reply = self.command(cmd)
            last = offset + len(piece) >= n
            if reply.load_done and not last:
                raise DUTError(f"m-load-done after {offset + len(piece)} of {n} bytes", cmd)
            if last and not reply.load_done:
                raise DUTError(f"no m-load-done after all {n} bytes", cmd, reply.lines[-1])
        if self.verify:
            start = time.monotonic()
            try:
                back = self.read_back(n)
            finally:
                self.stats.verify_s += time.monotonic() - start
            if back != data:
                self.stats.verify_mismatches += 1
                raise DUTError(difference(back, data), "db print")

    def read_back(self, n: int) -> bytes:
        """The first ``n`` bytes of the loaded buffer via ``db print`` (lines ``m-buffer-xx-…``,
        8 bytes each); its deadline allows for the wire time of all those lines."""
        rows = -(-n // 8)
        total = 4 * self.line_timeout + 2 * self._wire_s(rows * BUFFER_LINE + 16)
        reply = self.command("db print", total=total, max_lines=rows + MAX_LINES)
        return parse_buffer(reply.lines)[:n]

    # -- inference --------------------------------------------------------------------------
    def infer(self, iterations: int, warmup: int, timeout: float) -> Response:
        """``infer N W`` (W always explicit); ``timeout`` bounds each line and, with a margin,
        the whole response."""
        if iterations < 1 or warmup < 0:
            raise ValueError("infer needs N >= 1 and W >= 0")
        cmd = f"infer {iterations} {warmup}"
        reply = self.command(cmd, line_timeout=timeout, total=timeout + 2 * self.line_timeout,
                             expect="m-infer-start")
        ran = (reply.infer_count, reply.warmup_count)
        if ran != (iterations, warmup):  # a garbled command runs, and is timed, with other counts
            raise DUTError(f"device ran infer {ran[0]} {ran[1]} (from m-infer-start/m-warmup-start)",
                           cmd, next((ln for ln in reply.lines if "m-infer-start" in ln), None))
        return reply


def difference(back: bytes, sent: bytes) -> str:
    """Why a read-back is not the upload, in a few words."""
    if len(back) != len(sent):
        return f"read-back gave {len(back)} of the {len(sent)} bytes uploaded"
    wrong = [i for i, (a, b) in enumerate(zip(back, sent)) if a != b]
    at = wrong[0]
    return (f"read-back differs from the upload in {len(wrong)} byte(s), the first at offset {at} "
            f"of {len(sent)} (sent {sent[at]:02x}, the device holds {back[at]:02x})")
