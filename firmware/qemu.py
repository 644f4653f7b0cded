"""One emulated board: a ``qemu-system-arm`` process running a firmware ELF, its UART0 on a TCP socket.

QEMU listens (``server=on,wait=on``) and starts the guest only when the host connects, so the boot
banner is kept for the serial SUT (``-serial pty`` loses it); ``nodelay=on`` because pyserial's
``socket://`` handler does not set TCP_NODELAY and each command would wait ~40 ms for Nagle.
``-icount shift=N`` makes the device clock count 2^N ns per guest instruction: deterministic virtual
time, not cycle-accurate (no wait states, pipeline or memory timing). ``sleep=off`` is never used:
idle virtual time would leap to the next timer deadline (../docs/qemu-dut.md).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from tinyharness.errors import UsageError

QEMU = "qemu-system-arm"
INSTALL_HINT = "install it with: apt-get install qemu-system-arm"
MAX_SHIFT = 10  # 1 µs per instruction: slower than any board tinyharness emulates
LOG_LIMIT = 64 * 1024  # bytes of QEMU's stderr kept for messages
_WAITING = "waiting for connection"
_IN_USE = re.compile(r"address already in use", re.I)


class QemuError(RuntimeError):
    """QEMU failed to start or died; the message is one line with the reason."""


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise UsageError(f"{QEMU} not found: {INSTALL_HINT}")
    return path


@lru_cache(maxsize=1)
def qemu_version() -> str:
    """``7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`` from ``qemu-system-arm --version``."""
    out = subprocess.run([qemu_binary(), "--version"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    match = re.search(r"version\s+(.+)", out.splitlines()[0] if out else "")
    return match.group(1).strip() if match else "unknown"


def _die_with_parent() -> None:  # runs in the child before exec: no orphaned QEMU after a crash
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuProcess:
    """A board in QEMU. ``start()`` returns the pyserial URL of its UART0 (``socket://127.0.0.1:P``)."""

    def __init__(self, elf: Path, machine: str, icount: int | None = 3, *,
                 start_timeout: float = 30.0) -> None:
        if icount is not None and not 0 <= icount <= MAX_SHIFT:
            raise UsageError(f"--icount must be a shift from 0 to {MAX_SHIFT} (2^shift ns per "
                             f"instruction), not {icount}")
        self.elf, self.machine, self.icount = Path(elf), machine, icount
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise QemuError("QEMU is not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        return qemu_version()

    def command(self, port: int) -> list[str]:
        cmd = [qemu_binary(), "-machine", self.machine, "-display", "none", "-monitor", "none",
               "-nodefaults", "-chardev",
               f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
               "-serial", "chardev:s0", "-kernel", str(self.elf)]
        if self.icount is not None:
            cmd += ["-icount", f"shift={self.icount}"]
        return cmd

    def start(self) -> str:
        """Start QEMU and wait (bounded) until it listens; a port taken in between is retried."""
        if not self.elf.is_file():
            raise UsageError(f"firmware not found: {self.elf}")
        for _ in range(5):
            port = _free_port()
            fd, log = tempfile.mkstemp(prefix="tinyharness-qemu-", suffix=".log")
            self._log = Path(log)
            self._proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL,
                                          stdout=fd, stderr=fd, preexec_fn=_die_with_parent)
            os.close(fd)
            if self._wait_listening(port):
                self.port = port
                return self.url
            tail = self.log_tail()
            self.stop()
            if not _IN_USE.search(tail):
                raise QemuError(f"{QEMU} -machine {self.machine} did not start: "
                                f"{_last_line(tail) or 'no message'}")
        raise QemuError("no free TCP port for QEMU's UART after 5 tries")

    def _wait_listening(self, port: int) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if _WAITING in self.log_tail() or _listening(port):
                return True
            time.sleep(0.02)
        raise QemuError(f"{QEMU} did not open its UART socket within {self.start_timeout:g} s")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exited(self, within: float = 0.0) -> bool:
        """Whether QEMU has exited, waiting up to ``within`` seconds for it (a link that broke
        may be the first sign of a QEMU that is still going down)."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(within)
        except subprocess.TimeoutExpired:
            return False
        return True

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def log_tail(self) -> str:
        """The last LOG_LIMIT bytes QEMU printed (stdout and stderr)."""
        if self._log is None:
            return ""
        try:
            with open(self._log, "rb") as f:
                f.seek(max(0, os.path.getsize(self._log) - LOG_LIMIT))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> QemuProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc (a connect would be accepted
    as the board's one client and start the guest)."""
    try:
        text = Path("/proc/net/tcp").read_text()
    except OSError:
        return False
    want = f":{port:04X}"
    return any(parts[1].endswith(want) and parts[3] == "0A"  # 0A = LISTEN
               for parts in (line.split() for line in text.splitlines()[1:]) if len(parts) > 3)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
