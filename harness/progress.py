"""Progress on stderr: rich bars on a terminal, a plain line every ~10 s elsewhere (CI logs),
nothing with --quiet.

Output happens only when the load generator calls :meth:`Progress.phase` or
:meth:`Progress.update`, between chunks of queries: no thread runs beside the timed loop (rich's
``auto_refresh=False``; the plain lines are written from ``update`` itself, at most one per
interval). Each phase has a total in some unit (seconds, windows, samples); both displays show
where the phase is (``4.0/10.0 s``, ``window 2/5``) and its ETA, extrapolated from the phase's own
pace. The clock and the interval are injectable so that tests need no sleeping.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from typing import Any, Callable, TextIO

from . import heartbeat

INTERVAL_S = 10.0  # seconds between two plain lines
PREFIX = "tinyharness: "
SECONDS = "s"  # the unit of a phase measured in seconds, shown after the numbers


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def amount(completed: float, total: float | None, unit: str | None) -> str:
    """Where a phase is: ``4.0/10.0 s``, ``window 2/5``, ``128/360``."""
    if unit == SECONDS:
        return f"{completed:.1f}/{total:.1f} s" if total is not None else f"{completed:.1f} s"
    numbers = _number(completed) + ("" if total is None else "/" + _number(total))
    return f"{unit} {numbers}" if unit else numbers


def eta_s(completed: float, total: float | None, elapsed_s: float) -> float | None:
    """Seconds left at the pace so far; None while unknown (no total, nothing done yet)."""
    if total is None or total <= 0 or completed <= 0 or elapsed_s < 0:
        return None
    if completed >= total:
        return 0.0
    return elapsed_s * (total - completed) / completed


def duration(seconds: float) -> str:
    """``6 s``, ``2 min 05 s``, ``1 h 03 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress(AbstractContextManager):
    """Progress of a run's phases.

    ``enabled=False`` (``--quiet``) prints nothing. Otherwise a terminal ``stream`` (default
    ``sys.stderr``), or a ``console`` given (a rich Console, e.g. one forced to a terminal),
    gets rich bars; any other stream a plain line per ``interval_s`` of ``clock`` (seconds),
    written when :meth:`update` is called.
    """

    def __init__(self, enabled: bool = True, *, stream: TextIO | None = None, console: Any = None,
                 interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.console = console
        self.interval_s, self.clock = interval_s, clock
        self.enabled = enabled
        self.terminal = enabled and (console is not None or _is_terminal(self.stream))
        self._bar = None
        self._task = None
        self._description, self._total, self._unit = "", None, None
        self._started = self._last_line = clock()

    # -- the display's life -----------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        self._last_line = self.clock()
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            console = self.console if self.console is not None else Console(file=self.stream)
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[amount]}"), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                            console=console, auto_refresh=False, transient=False,
                            get_time=self.clock)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            if self._task is not None:  # the final view keeps no stale ETA
                self._bar.update(self._task, eta="")
            self._bar.__exit__(*exc)
            self._bar = None
            self._task = None

    # -- what the load generator calls ------------------------------------------------------------
    def phase(self, description: str, total: float | None, *, unit: str | None = None,
              step_s: float = 0.0) -> None:
        """Start a new phase; ``total`` is in the unit later passed to :meth:`update` (None:
        unknown). ``unit``: ``"s"`` for seconds (``4.0/10.0 s``), a noun such as ``"window"``
        (``window 2/5``), or None (``128/360``). ``step_s``: how long two updates (or the phase
        and its first update) may lie apart beyond one query, for the run's watchdog."""
        heartbeat.phase(step_s)
        self._description, self._total, self._unit = description, total, unit
        self._started = self.clock()
        if self._bar is not None:
            if self._task is not None:
                self._bar.update(self._task, eta="")
                self._bar.stop_task(self._task)
            self._task = self._bar.add_task(description, total=total, info="", eta="",
                                            amount="" if total is None else amount(0, total, unit))
            self._bar.refresh()

    def update(self, completed: float, info: str = "") -> None:
        """Report ``completed`` (in the phase's unit) and a short ``info`` (``51234 queries``)."""
        heartbeat.beat()
        if not self.enabled:
            return
        now = self.clock()
        eta = eta_s(completed, self._total, now - self._started)
        eta_text = "" if eta is None else f"ETA {duration(eta)}"
        if self._bar is not None:
            if self._task is not None:
                self._bar.update(self._task, completed=completed, info=info,
                                 amount=amount(completed, self._total, self._unit), eta=eta_text)
                self._bar.refresh()
        elif not self.terminal and now - self._last_line >= self.interval_s:
            self._last_line = now
            self._write(self.line(completed, info, eta_text))

    def line(self, completed: float, info: str = "", eta: str = "") -> str:
        """The plain line: ``tinyharness: single-stream 4.0/10.0 s, 51234 queries, ETA 6 s``."""
        head = f"{PREFIX}{self._description} {amount(completed, self._total, self._unit)}".rstrip()
        return ", ".join([head] + [part for part in (info, eta) if part])

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail the run
            pass
