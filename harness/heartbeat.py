"""The run's heartbeat: how the supervising process (supervisor.py) knows the run still moves.

The run process beats at every progress report (between chunks of queries, per window, per
accuracy sample) and around steps that report none (loading the model); each beat moves a deadline
forward in a few bytes of memory shared with the supervisor, which stops the run once the deadline
passes. A beat costs a clock read and a store, and never happens inside a timed region. Without a
supervisor (``TINYHARNESS_SUPERVISE=0``, no ``fork``, the Python API) beats do nothing.
"""

from __future__ import annotations

import mmap
import struct
import time

DEFAULT_QUERY_TIMEOUT_S = 600.0
LOAD_FACTOR = 10  # loading (a compiler, an engine build, a device handshake) gets 10 timeouts
_DEADLINE = struct.Struct("d")


class Heartbeat:
    """A deadline on the monotonic clock (shared by processes on one host), in shared memory."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.memory = mmap.mmap(-1, _DEADLINE.size)  # anonymous, MAP_SHARED: survives fork
        self.step_s = 0.0
        self.beat(LOAD_FACTOR * timeout_s)

    def beat(self, extra_s: float = 0.0) -> None:
        _DEADLINE.pack_into(self.memory, 0, time.monotonic() + self.timeout_s + self.step_s + extra_s)

    def deadline(self) -> float:
        return _DEADLINE.unpack_from(self.memory, 0)[0]


_current: Heartbeat | None = None


def install(heartbeat: Heartbeat | None) -> None:
    global _current
    _current = heartbeat


def beat(extra_s: float = 0.0) -> None:
    """The run moved; the next beat is due within the query timeout, the current phase's step
    and ``extra_s``."""
    if _current is not None:
        _current.beat(extra_s)


def phase(step_s: float = 0.0) -> None:
    """A new phase whose progress reports may lie up to ``step_s`` apart (a window, an offline
    query), on top of the query timeout."""
    if _current is not None:
        _current.step_s = max(0.0, step_s)
        _current.beat()


def loading() -> None:
    """Before a step with no progress reports of its own (loading the model)."""
    if _current is not None:
        _current.beat(LOAD_FACTOR * _current.timeout_s)
