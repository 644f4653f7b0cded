"""The MLPerf Tiny / EEMBC DUT serial protocol, host side (docs/mlperf-tiny.md §6).

One command at a time: write ``<cmd>%``, read ``\\n``-terminated lines (``\\r`` and NUL stripped)
until the first line that contains ``m-ready``. Every read is bounded twice: a per-line timeout
(the longest silence allowed between two lines) and an overall deadline for the whole response.
``e-[...]`` lines and the unprefixed ``Supplied buffer size`` / ``Input db has`` lines are errors.

The timing of an ``infer N W`` is kept apart in :class:`LapClock` (the DUT's two ``m-lap-us``
stamps, 32-bit wrap handled), so that an energy monitor's timestamps can replace it later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinyharness.sut import SUTError

READY = "m-ready"
MAX_COMMAND = 79  # EE_CMD_SIZE is 80 with the terminating NUL; longer commands are silently corrupted
WRAP = 1 << 32  # the DUT's microsecond counter is a 32-bit unsigned long
FATAL_SIZE_LINES = ("Supplied buffer size", "Input db has")

_NAME = re.compile(r"m-name-dut-\[(.*)\]")
_PROFILE = re.compile(r"m-profile-\[(.*)\]")
_MODEL = re.compile(r"m-model-\[(.*)\]")
_MODE = re.compile(r"m-timestamp-mode-(performance|energy)")
_LAP = re.compile(r"m-lap-us-(\d+)")
_RESULTS = re.compile(r"m-results-\[(.*)\]")
_EXPECTING = re.compile(r"m-\[Expecting (\d+) bytes\]")
_INFER_START = re.compile(r"m-infer-start-(\d+)")
_WARMUP_START = re.compile(r"m-warmup-start-(\d+)")


class DUTError(SUTError):
    """The device answered with an error, broke the protocol, went silent or disconnected;
    ``retryable`` is False for failures a retry cannot fix (a disconnect, an oversized load)."""

    def __init__(self, message: str, command: str | None = None, line: str | None = None,
                 retryable: bool = True) -> None:
        detail = message
        if command is not None:
            detail += f" (command {command!r}"
            detail += f", line {line!r})" if line is not None else ")"
        super().__init__(detail)
        self.command, self.line, self.retryable = command, line, retryable


def clean(raw: bytes) -> str:
    """One received line as text: ``\\r`` and NUL removed, undecodable bytes replaced."""
    return raw.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", "replace").strip()


_ERROR = re.compile(r"(?<![A-Za-z0-9])e-\[")  # "e-[...]", also behind a "[dut]: " prefix


def error_in(line: str) -> bool:
    """An ``e-[...]`` line or one of the unprefixed size diagnostics (§6.8)."""
    return bool(_ERROR.search(line)) or any(s in line for s in FATAL_SIZE_LINES)


def parse_results(line: str) -> list[float] | None:
    """``m-results-[a,b,]`` -> [a, b]: split on commas, empty fields dropped (VWW's trailing comma)."""
    m = _RESULTS.search(line)
    if m is None:
        return None
    try:
        return [float(v) for v in m.group(1).split(",") if v.strip()]
    except ValueError:
        raise DUTError("unparsable result line", line=line) from None


@dataclass(frozen=True)
class Response:
    """All lines of one command's response, the ``m-ready`` line included, with parsed fields."""

    command: str
    lines: tuple[str, ...]
    elapsed_s: float = 0.0

    def _first(self, pattern: re.Pattern) -> str | None:
        return next((m.group(1) for ln in self.lines if (m := pattern.search(ln))), None)

    def _int(self, pattern: re.Pattern) -> int | None:
        value = self._first(pattern)
        return None if value is None else int(value)

    name = property(lambda self: self._first(_NAME), doc="m-name-dut-[...]")
    profile = property(lambda self: self._first(_PROFILE), doc="m-profile-[...]")
    model = property(lambda self: self._first(_MODEL), doc="m-model-[...]")
    timestamp_mode = property(lambda self: self._first(_MODE), doc="performance or energy")
    expecting = property(lambda self: self._int(_EXPECTING), doc="db load: m-[Expecting N bytes]")
    infer_count = property(lambda self: self._int(_INFER_START), doc="N of m-infer-start-N")
    warmup_count = property(lambda self: self._int(_WARMUP_START), doc="W of m-warmup-start-W")

    @property
    def load_done(self) -> bool:
        return any("m-load-done" in line for line in self.lines)

    @property
    def laps(self) -> list[int]:
        """The ``m-lap-us`` values; for an infer only those after ``m-infer-start``."""
        start = next((i for i, ln in enumerate(self.lines) if "m-infer-start" in ln), -1)
        return [int(m.group(1)) for ln in self.lines[start + 1:] if (m := _LAP.search(ln))]

    @property
    def results(self) -> list[float] | None:
        return next((v for ln in self.lines if (v := parse_results(ln)) is not None), None)


def check(command: str, lines: list[str] | tuple[str, ...], elapsed_s: float = 0.0) -> Response:
    """A :class:`Response`, or a :class:`DUTError` naming the first error line."""
    for line in lines:
        if error_in(line):
            fatal = any(s in line for s in FATAL_SIZE_LINES)
            raise DUTError("device reported an error", command, line, retryable=not fatal)
    return Response(command, tuple(lines), elapsed_s)


class LapClock:
    """The timestamp source of performance mode: the DUT's own ``m-lap-us`` stamps.

    The first stamp after ``m-infer-start`` is T0, the second T1; elapsed = T1 - T0 modulo 2^32
    (the counter wraps after 71.6 minutes). A power monitor would replace this class with one that
    takes its two timestamp edges from the monitor instead.
    """

    name = "device m-lap-us"

    def elapsed_us(self, response: Response) -> int:
        laps = response.laps
        if len(laps) < 2:
            raise DUTError(f"too few timestamps: expected two m-lap-us lines, got {len(laps)} "
                           "(energy-mode firmware, or timestamps not routed to the UART?)",
                           response.command)
        t0, t1 = laps[0], laps[1]
        return (t1 - t0) % WRAP


@dataclass
class LinkStats:
    """Counters for the logs: bytes uploaded, time spent, restarts."""

    uploads: int = 0
    upload_bytes: int = 0
    upload_s: float = 0.0
    upload_restarts: int = 0
    stray_lines: list[str] = field(default_factory=list)  # the last 100 lines no command asked for


def _gone(exc: BaseException, command: str | None) -> DUTError:
    if type(exc).__name__ == "SerialTimeoutException":  # pyserial's write timeout
        return DUTError("write timed out: the device stopped reading", command)
    return DUTError(f"device disconnected ({exc})", command, retryable=False)


class DUTLink:
    """The protocol over an open pyserial port (or anything with read/write/in_waiting/timeout)."""

    def __init__(self, port: Any, line_timeout: float = 5.0, chunk: int = 31, retries: int = 3,
                 verify: bool = False, log: Callable[[str, str], None] | None = None) -> None:
        if not 1 <= chunk <= (MAX_COMMAND - 3) // 2:
            raise ValueError(f"chunk must be 1..{(MAX_COMMAND - 3) // 2} bytes")
        self.port, self.line_timeout, self.chunk, self.retries = port, line_timeout, chunk, retries
        self.verify = verify  # read every upload back with `db print` (finds flipped hex digits)
        self.log = log  # log(direction, text): "tx" / "rx"
        self.stats = LinkStats()
        self._buf = bytearray()

    # -- lines ------------------------------------------------------------------------------
    def _read(self, timeout: float, command: str | None) -> bytes:
        try:
            if self.port.timeout != timeout:
                self.port.timeout = timeout  # reconfigures the port: fails once it is gone
            return self.port.read(max(1, self.port.in_waiting))
        except Exception as exc:  # SerialException, OSError: the port went away
            raise _gone(exc, command) from None

    def _waiting(self, command: str | None) -> int:
        try:
            return self.port.in_waiting
        except Exception as exc:
            raise _gone(exc, command) from None

    def readline(self, line_timeout: float, deadline: float, command: str | None = None) -> str:
        """The next line; DUTError after ``line_timeout`` of silence or past ``deadline``."""
        line_deadline = min(time.monotonic() + line_timeout, deadline)
        while True:
            cut = self._buf.find(b"\n")
            if cut >= 0:
                raw = bytes(self._buf[:cut])
                del self._buf[:cut + 1]
                line = clean(raw)
                if line:
                    if self.log:
                        self.log("rx", line)
                    return line
                continue
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
                         total: float | None = None) -> list[str]:
        """Lines up to the first containing ``m-ready``. A long ``line_timeout`` (an infer) holds
        until ``m-infer-done``; the few lines after it get the ordinary one."""
        line_timeout = self.line_timeout if line_timeout is None else line_timeout
        deadline = time.monotonic() + (total if total is not None else 4 * line_timeout)
        lines = []
        while True:
            line = self.readline(line_timeout, deadline, command)
            lines.append(line)
            if READY in line:
                return lines
            if "m-infer-done" in line:
                line_timeout = min(line_timeout, self.line_timeout)

    def drain(self, quiet: float = 0.1, limit: float | None = None) -> list[str]:
        """Discard input until the line is quiet for ``quiet`` s (at most ``limit`` s)."""
        end = time.monotonic() + (self.line_timeout if limit is None else limit)
        junk = bytearray(self._buf)
        self._buf.clear()
        while time.monotonic() < end:
            data = self._read(min(quiet, max(end - time.monotonic(), 0.001)), None)
            if not data:
                break
            junk += data
        lines = [ln for ln in (clean(b) for b in bytes(junk).split(b"\n")) if ln]
        self.stats.stray_lines = (self.stats.stray_lines + lines)[-100:]
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
                expect: str | None = None) -> Response:
        """Send one command and return its checked response (see :func:`check`); with ``expect``,
        a response without a line containing it is an error (a late ``m-ready`` of an earlier
        command taken for this one's)."""
        if self._buf or self._waiting(command):  # a late line of an earlier command: never a response
            self.drain(quiet=0.0, limit=0.05)
        start = time.monotonic()
        self.send(command)
        lines = self.read_until_ready(command, line_timeout, total)
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
        """``db load N`` then ``db <hex>`` chunks; the whole upload restarts on any lost or garbled
        chunk (and, with ``verify``, on a read-back that differs), up to ``retries`` times."""
        start = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                self._upload_once(data)
                break
            except DUTError as exc:
                if not exc.retryable or attempt == self.retries:
                    raise DUTError(f"upload of {len(data)} bytes failed after {attempt + 1} "
                                   f"attempt(s): {exc}", retryable=False) from exc
                self.stats.upload_restarts += 1
                self.drain()
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
            back = self.read_back(n)
            if back != data:
                at = next((i for i, (a, b) in enumerate(zip(back, data)) if a != b), len(back))
                raise DUTError(f"read-back differs from the upload at byte {at} of {n}", "db print")

    def read_back(self, n: int) -> bytes:
        """The loaded buffer via ``db print`` (lines ``m-buffer-xx-xx-...``, 8 bytes each)."""
        reply = self.command("db print", total=self.line_timeout * (4 + n // 2048))
        text = "".join(ln.split("m-buffer-", 1)[1] for ln in reply.lines if "m-buffer-" in ln)
        try:
            return bytes.fromhex(text.replace("-", ""))[:n]
        except ValueError:
            raise DUTError("unparsable db print output", "db print") from None

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
