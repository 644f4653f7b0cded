"""What a DUT says, as data: the error type, line cleaning, the parsed fields of one command's
response, and the device clock of an ``infer`` (docs/dut-protocol.md §4, §5). No I/O here: the link
that reads the lines is :mod:`.protocol`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinyharness.sut import SUTError

READY = "m-ready"
WRAP = 1 << 32  # the DUT's microsecond counter is a 32-bit unsigned long
FATAL_SIZE_LINES = ("Supplied buffer size", "Input db has")
EXCERPT = 80  # characters of a received line quoted in an error message

_NAME = re.compile(r"m-name-dut-\[(.*)\]")
_PROFILE = re.compile(r"m-profile-\[(.*)\]")
_MODEL = re.compile(r"m-model-\[(.*)\]")
_MODE = re.compile(r"m-timestamp-mode-(performance|energy)")
_LAP = re.compile(r"m-lap-us-(\d+)")
_RESULTS = re.compile(r"m-results-\[(.*)\]")
_EXPECTING = re.compile(r"m-\[Expecting (\d+) bytes\]")
_INFER_START = re.compile(r"m-infer-start-(\d+)")
_WARMUP_START = re.compile(r"m-warmup-start-(\d+)")
_ERROR = re.compile(r"(?<![A-Za-z0-9])e-\[")  # "e-[...]", also behind a "[dut]: " prefix


def excerpt(text: str, size: int | None = None) -> str:
    """``text`` as quoted in a message: its first :data:`EXCERPT` characters, then ``… (N bytes)``
    when it is longer (or when ``size``, the length of what it was cut from, says so)."""
    size = len(text) if size is None else size
    if size <= EXCERPT and len(text) <= EXCERPT:
        return text
    return f"{text[:EXCERPT]}… ({size:,} bytes)"


class DUTError(SUTError):
    """The device answered with an error, broke the protocol, went silent, flooded the line or
    disconnected; ``retryable`` is False for failures a retry cannot fix (a disconnect, an
    oversized load, a flood). A quoted line is cut to :func:`excerpt`, so that no message (and no
    log or status file that repeats it) grows with what a device sends."""

    def __init__(self, message: str, command: str | None = None, line: str | None = None,
                 retryable: bool = True) -> None:
        detail = message
        if command is not None:
            detail += f" (command {excerpt(command)!r}"
            detail += f", line {excerpt(line)!r})" if line is not None else ")"
        elif line is not None:
            detail += f" (line {excerpt(line)!r})"
        super().__init__(detail)
        self.command, self.line, self.retryable = command, line, retryable


def clean(raw: bytes) -> str:
    """One received line as text: ``\\r`` and NUL removed, undecodable bytes replaced."""
    return raw.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", "replace").strip()


def error_in(line: str) -> bool:
    """An ``e-[...]`` line or one of the unprefixed size diagnostics (docs/dut-protocol.md §5)."""
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


def parse_buffer(lines: tuple[str, ...] | list[str]) -> bytes:
    """The bytes of ``db print``'s ``m-buffer-xx-xx-…`` lines (8 per line), in order."""
    text = "".join(ln.split("m-buffer-", 1)[1] for ln in lines if "m-buffer-" in ln)
    try:
        return bytes.fromhex(text.replace("-", ""))
    except ValueError:
        raise DUTError("unparsable db print output", "db print") from None


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
