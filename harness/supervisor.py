"""``tinyharness run`` in a child process, watched by the command's own process.

A SUT can take its whole process down (a segfault in a runtime, ``os._exit`` in a plugin) or hang
inside ``infer``; only another process can then still say what happened. So the command forks: the
child does the run exactly as before (same code, same output); the parent only waits. It learns the
run directory from the child through a pipe, forwards SIGTERM (what ``timeout``, CI runners and
``docker stop`` send) and, when the child dies without finishing, marks the directory ``failed``
with the cause and keeps ``crash.txt`` (``faulthandler``'s trace of a native crash). It also stops
a run whose heartbeat (heartbeat.py) stops: ``--query-timeout``.

Nothing is added to the timed loop: the parent sleeps in ``select`` and the child beats only at
progress reports. Off Linux, or with ``TINYHARNESS_SUPERVISE=0`` (the test suite, whose process
holds runtime threads that a fork would not carry), the run happens in-process.
"""

from __future__ import annotations

import faulthandler
import json
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from . import heartbeat
from .errors import EXIT_FAILED, EXIT_INTERRUPTED

ENV = "TINYHARNESS_SUPERVISE"
GRACE_S = 10.0  # after SIGTERM, before SIGKILL
CRASH, CRASH_PENDING = "crash.txt", ".crash.txt"
_report_fd: int | None = None
_crash_file = None
last_run_dir: Path | None = None  # the run directory of the last run, in the run or its supervisor


def enabled() -> bool:
    """On Linux unless ``TINYHARNESS_SUPERVISE=0`` (macOS's system frameworks are not fork-safe
    once loaded, and Windows has no fork: the run happens in-process there)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and os.environ.get(ENV, "1") != "0"


# -- the run's side -------------------------------------------------------------------------------
def run_directory_created(path: Path) -> None:
    """Tell the supervisor (if any) where the run writes, and have a native crash leave its
    trace there."""
    global _crash_file, last_run_dir
    last_run_dir = Path(path)
    if _report_fd is not None:
        try:
            os.write(_report_fd, (json.dumps({"run_dir": str(path)}) + "\n").encode())
        except OSError:
            pass
    try:
        _crash_file = open(Path(path) / CRASH_PENDING, "w")
        faulthandler.enable(_crash_file, all_threads=True)
    except OSError:
        _crash_file = None


def run_directory_finished(path: Path) -> None:
    global _crash_file
    if _crash_file is None:
        return
    faulthandler.disable()
    _crash_file.close()
    _crash_file = None
    pending = Path(path) / CRASH_PENDING
    try:
        if pending.stat().st_size == 0:
            pending.unlink()
        else:
            pending.replace(Path(path) / CRASH)
    except OSError:
        pass


# -- the supervisor's side ------------------------------------------------------------------------
def supervise(body: Callable[[], int], timeout_s: float) -> int:
    """``body()`` (an exit code) in a child process; the child's exit code, or EXIT_FAILED /
    EXIT_INTERRUPTED when it died, hung or was stopped."""
    global _report_fd
    beat = heartbeat.Heartbeat(timeout_s)
    read_fd, write_fd = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # the run: never returns into the caller's stack
        code = EXIT_FAILED
        try:
            os.close(read_fd)
            _report_fd = write_fd
            heartbeat.install(beat)
            code = body()
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else EXIT_FAILED
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    os.close(write_fd)
    return _Watch(pid, read_fd, beat).wait()


class _Watch:
    def __init__(self, pid: int, reports: int, beat: heartbeat.Heartbeat) -> None:
        self.pid, self.reports, self.beat = pid, reports, beat
        self.run_dir: Path | None = None
        self.buffer = b""
        self.stopping_since: float | None = None
        self.hung = self.terminated = False

    def wait(self) -> int:
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),  # the child gets it too
                    signal.SIGTERM: signal.signal(signal.SIGTERM, self._forward)}
        try:
            status = self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self.reports)
        return self._conclude(os.waitstatus_to_exitcode(status))

    def _forward(self, signum, frame) -> None:
        self.terminated = True
        self._stop()

    def _stop(self) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            _kill(self.pid, signal.SIGTERM)

    def _loop(self) -> int:
        open_pipe = True
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return status
            now = time.monotonic()
            if now > self.beat.deadline() and self.stopping_since is None:
                self.hung = True
                self._stop()
            if self.stopping_since is not None and now - self.stopping_since > GRACE_S:
                _kill(self.pid, signal.SIGKILL)
            wait = min(1.0, max(0.05, self.beat.deadline() - now))
            if open_pipe:
                try:
                    ready = select.select([self.reports], [], [], wait)[0]
                except InterruptedError:
                    continue
                if ready:
                    open_pipe = self._read()
            else:
                time.sleep(min(wait, 0.2))

    def _read(self) -> bool:
        global last_run_dir
        data = os.read(self.reports, 4096)
        self.buffer = (self.buffer + data)[-65536:]
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                self.run_dir = last_run_dir = Path(json.loads(line)["run_dir"])
            except (ValueError, KeyError, TypeError):
                pass
        return bool(data)

    def _conclude(self, code: int) -> int:
        if self.hung:
            why = (f"no progress for {self.beat.timeout_s:g} s: the SUT hung or is far slower than "
                   "expected (raise --query-timeout if it is only slow)")
            return self._report_dead("failed", why, EXIT_FAILED)
        if code < 0:
            name = signal.Signals(-code).name
            if self.terminated and -code in (signal.SIGTERM, signal.SIGKILL):
                return self._report_dead("interrupted", f"terminated ({name})", EXIT_INTERRUPTED)
            return self._report_dead("failed", f"the run process was killed by {name}", EXIT_FAILED,
                                     signal=name)
        if self._still_running():
            return self._report_dead("failed", f"the run process exited with code {code} without "
                                     "finishing (os._exit in a plugin or a runtime?)", EXIT_FAILED)
        return code

    def _still_running(self) -> bool:
        if self.run_dir is None:
            return False
        try:
            return json.loads((self.run_dir / "status.json").read_text())["state"] == "running"
        except (OSError, ValueError, KeyError, TypeError):
            return True

    def _report_dead(self, state: str, why: str, code: int, signal: str | None = None) -> int:
        where = ""
        if self.run_dir is not None:
            mark(self.run_dir, state, why, signal)
            where = f"; partial results in {self.run_dir}"
            if (self.run_dir / CRASH).is_file():
                where += f" (native trace in {CRASH})"
        print(f"tinyharness: run {state}: {why}{where}", file=sys.stderr)
        return code


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def mark(run_dir: Path, state: str, why: str, signal: str | None = None) -> None:
    """Mark a run directory whose process could not: status (with the ``signal`` that killed
    it), a detail log if it left none, and the crash trace faulthandler wrote."""
    from .logs import DetailLog, RunDirectory

    directory = RunDirectory(run_dir)
    pending = run_dir / CRASH_PENDING
    try:
        if pending.is_file() and pending.stat().st_size > 0:
            pending.replace(run_dir / CRASH)
        else:
            pending.unlink(missing_ok=True)
        if not (run_dir / "detail.txt").exists():
            detail = DetailLog()
            detail.event("error_runtime", why, error=True)
            directory.write_detail(detail)
        directory.files = sorted(p.name for p in run_dir.iterdir()
                                 if p.is_file() and not p.name.startswith("."))
        directory.set_status(state, why, signal)
    except OSError as exc:
        print(f"tinyharness: could not mark {run_dir} as {state}: {exc}", file=sys.stderr)
