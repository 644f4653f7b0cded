"""Output a runtime writes to the process's stdout and stderr, kept out of the user's console.

Runtimes print from C++ straight to file descriptors 1 and 2: LiteRT says "INFO: Created
TensorFlow Lite XNNPACK delegate for CPU." when it builds its interpreter, OpenVINO may print absl
or TBB warnings. Redirecting ``sys.stderr`` does not catch these; :func:`captured` redirects the
descriptors themselves to a temporary file for the length of a block, restores them on the way out
(also on an exception), and leaves the text in :attr:`Captured.text` for the detail log::

    output = captured()
    try:
        with output:
            sut.load(model)
    finally:
        for line in output.lines():
            detail.event("runtime_output", line)

Python-level writes during the block (``print``, ``warnings``, a logging handler on
``sys.stderr``) are captured too, consistently: ``sys.stdout`` and ``sys.stderr`` point into the
same file while the block runs, so they interleave with the C-level output in the order written.
Python's and C's buffers are flushed before redirecting and before restoring, so nothing written
inside the block leaks out after it and nothing written before it lands inside.

Meant for a short, single-threaded step (loading a SUT): while a block runs, the whole process's
stdout and stderr go to the file, also another thread's. Blocks are serialised by a lock (a nested
block in the same thread captures into its own file). The text kept is bounded (:data:`LIMIT`
bytes, head and tail, with a line that says how much was left out); the temporary file itself is
not, and is deleted when the block ends.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
from typing import IO

LIMIT = 64 * 1024  # bytes of captured output kept
FDS = (1, 2)
_lock = threading.RLock()


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: C stdio buffers (a ``printf`` to a non-terminal stdout) written out now."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # no C library to ask (Windows), or no ctypes: nothing more to flush
        pass


def _flush_python() -> None:
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
                   if s is not None}.values():
        try:
            stream.flush()
        except Exception:  # a closed or odd stream: nothing to flush
            pass


def _flush_all() -> None:
    _flush_python()
    _flush_c_stdio()


class Captured:
    """A capture of file descriptors 1 and 2 (and ``sys.stdout``/``sys.stderr``): a context
    manager; after the block, :attr:`text` holds what was written (at most about ``limit`` bytes),
    :attr:`size` how many bytes were written in all, :attr:`truncated` whether some were left out.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        if limit < 64:
            raise ValueError(f"limit must be at least 64 bytes, not {limit}")
        self.limit = limit
        self.text = ""
        self.size = 0
        self.truncated = False
        self._file: IO[bytes] | None = None
        self._saved: dict[int, int | None] = {}
        self._streams: tuple | None = None
        self._wrapper: io.TextIOWrapper | None = None

    # -- the block --------------------------------------------------------------------------------
    def __enter__(self) -> "Captured":
        if self._file is not None:
            raise RuntimeError("a Captured block is already running; make a new one")
        _lock.acquire()
        try:
            self._redirect()
        except BaseException:
            self._restore()
            _lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._restore()
        finally:
            _lock.release()

    def _redirect(self) -> None:
        _flush_all()
        self._file = tempfile.TemporaryFile(prefix="tinyharness-output-")
        target = self._file.fileno()
        for fd in FDS:
            try:
                self._saved[fd] = os.dup(fd)
            except OSError:  # closed in this process: restored closed
                self._saved[fd] = None
            os.dup2(target, fd)
        # Python's own streams write into the same open file (one shared offset), unbuffered, so
        # their text interleaves with the C-level writes in order.
        raw = open(os.dup(target), "wb", buffering=0)
        self._wrapper = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace",
                                         write_through=True)
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = self._wrapper

    def _restore(self) -> None:
        """Undo what :meth:`_redirect` did, as far as it got; read the file; never raises for
        a descriptor that cannot be restored before trying the others."""
        errors = []
        if self._streams is not None:
            try:
                _flush_all()
            except Exception:
                pass
            sys.stdout, sys.stderr = self._streams
            self._streams = None
        else:
            _flush_c_stdio()
        for fd, saved in self._saved.items():
            try:
                if saved is None:
                    os.close(fd)
                else:
                    os.dup2(saved, fd)
                    os.close(saved)
            except OSError as exc:
                errors.append(exc)
        self._saved = {}
        if self._wrapper is not None:
            try:
                self._wrapper.close()
            except Exception:
                pass
            self._wrapper = None
        if self._file is not None:
            try:
                self._read()
            finally:
                self._file.close()
                self._file = None
        if errors:
            raise errors[0]

    def _read(self) -> None:
        f = self._file
        f.seek(0, os.SEEK_END)
        self.size = size = f.tell()
        f.seek(0)
        if size <= self.limit:
            self.text = f.read().decode("utf-8", errors="replace")
            return
        self.truncated = True
        tail = self.limit // 4
        head = f.read(self.limit - tail)
        f.seek(size - tail)
        rest = f.read(tail)
        left_out = size - len(head) - len(rest)
        note = f"\n[tinyharness: {left_out} bytes of output left out]\n"
        self.text = (head.decode("utf-8", errors="replace") + note
                     + rest.decode("utf-8", errors="replace"))

    # -- the result -------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """The non-blank lines of :attr:`text`, right-stripped (what the detail log records)."""
        return [line.rstrip() for line in self.text.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"Captured(size={self.size}, truncated={self.truncated}, text={self.text[:60]!r})"


def captured(limit: int = LIMIT) -> Captured:
    """A context manager that captures file descriptors 1 and 2 for the length of a block; the
    returned :class:`Captured` holds the text after the block (also after an exception)."""
    return Captured(limit)
