"""Progress display on stderr, silent with --quiet or when stderr is not a terminal.

Refreshed only when the load generator calls it between chunks of queries: no refresh thread runs
beside the timed loop (``auto_refresh=False``).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager


class Progress(AbstractContextManager):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None
        self._task = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                            console=Console(stderr=True), auto_refresh=False, transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def phase(self, description: str, total: float | None) -> None:
        """Start a new line of progress; ``total`` is in the unit later passed to :meth:`update`."""
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total, info="")
            self._bar.refresh()

    def update(self, completed: float, info: str = "") -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=completed, info=info)
            self._bar.refresh()
