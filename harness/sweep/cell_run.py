"""One cell of a sweep: ``tinyharness run`` in a child process of its own, whatever it does.

The child runs in its own process group (so a timeout or a stop reaches the run's supervisor and
the run together, and a Ctrl-C at the terminal reaches only the sweep, which then stops the cell
itself) and writes its run directory into a staging folder of its own, ``OUTPUT/.cells/<cell>-<n>``:
that is how the directory is found even while other cells write beside it. Once the child is gone
the directory moves up into OUTPUT, where ``tinyharness run`` would have put it.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Sequence

from .spec import Cell

DEFAULT_LAUNCHER: tuple[str, ...] = (sys.executable, "-m", "tinyharness.cli")
STAGING = ".cells"
GRACE_S = 15.0  # after each signal before the next, stronger one (the run's supervisor waits 10 s)
REAP_S = 30.0  # after SIGKILL: a process stuck in the kernel is given up on, not waited for
TAIL_BYTES = 64 << 10  # of each output stream kept for the reason
SUMMARY_BYTES = 64 << 20
ARCHIVE_BYTES = 512 << 20  # a run directory that travels (remote nodes): its files, in all
REASON_CHARS = 500


class CellStatus(str, Enum):
    OK = "ok"  # exit 0: VALID
    INVALID = "invalid"  # exit 1
    FAILED = "failed"  # exit 2 or 3: the reason from status.json's error or stderr's last line
    CRASHED = "crashed"  # the run died by a signal we did not send (SIGSEGV, ...)
    TIMEOUT = "timeout"  # no result within the cell's timeout_s
    INTERRUPTED = "interrupted"  # exit 130, or the sweep was stopped (Ctrl-C)
    LOST = "lost"  # its node died and the retries were spent (engine only)
    SKIPPED = "skipped"  # finished in an earlier run of the same sweep


# A rerun skips these; timeout, interrupted and lost cells run again (--retry-failed: also failed
# and crashed).
FINISHED = (CellStatus.OK, CellStatus.INVALID, CellStatus.FAILED, CellStatus.CRASHED)
BROKEN = (CellStatus.FAILED, CellStatus.CRASHED, CellStatus.TIMEOUT, CellStatus.LOST)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class CellResult:
    cell_id: str
    status: CellStatus
    reason: str
    returncode: int | None
    run_dir: str | None  # on the machine that holds it
    node: str  # host name (or worker address) that ran it
    started: str  # ISO 8601 UTC
    finished: str
    wall_s: float
    attempts: int = 1
    summary: dict | None = field(default=None, compare=False)  # the run's summary.json
    archive: bytes | None = field(default=None, compare=False, repr=False)  # tar.gz of run_dir

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CellStatus(self.status))
        object.__setattr__(self, "reason", one_line(self.reason))

    def to_dict(self) -> dict:
        return {"cell_id": self.cell_id, "status": self.status.value, "reason": self.reason,
                "returncode": self.returncode, "run_dir": self.run_dir, "node": self.node,
                "started": self.started, "finished": self.finished, "wall_s": self.wall_s,
                "attempts": self.attempts, "summary": self.summary}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CellResult":
        names = ("cell_id", "status", "reason", "returncode", "run_dir", "node", "started",
                 "finished", "wall_s", "attempts", "summary")
        return cls(**{k: d[k] for k in names if k in d})


def one_line(text: str | None) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def run_cell(cell: Cell, output: Path, *, port: str | None = None,
             launcher: Sequence[str] = DEFAULT_LAUNCHER, env: Mapping[str, str] | None = None,
             pack: bool = False, stop: threading.Event | None = None) -> CellResult:
    """Run ``launcher + cell.argv(...)`` with the cell's timeout and return what became of it.
    ``env`` is the child's whole environment (None: this process's); ``stop``, once set,
    interrupts the run (SIGINT, as Ctrl-C would) and the result is INTERRUPTED."""
    output = Path(output).absolute()
    staging = _staging(output / STAGING / f"{cell.id}-{secrets.token_hex(3)}")
    started, clock = utc_now(), time.monotonic()
    proc = subprocess.Popen([*launcher, *cell.argv(staging, port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ if env is None else env))
    tails = [_Tail(proc.stdout), _Tail(proc.stderr)]
    ended_by = _wait(proc, cell.timeout_s, stop)
    _signal_group(proc.pid, signal.SIGKILL)  # what the run left behind (its supervisor died first)
    for tail in tails:
        tail.join()
    run_dir = _settle(staging, output)
    status, reason = _classify(proc.returncode, ended_by, cell, run_dir, tails[1].text())
    if status is CellStatus.TIMEOUT and run_dir is not None and _state(run_dir) != "done":
        from ..supervisor import mark

        mark(run_dir, "failed", reason)  # the run saw only a SIGTERM; say why it came
    return CellResult(cell.id, status, reason, proc.returncode, str(run_dir) if run_dir else None,
                      socket.gethostname(), started, utc_now(), round(time.monotonic() - clock, 3),
                      summary=read_summary(run_dir) if run_dir else None,
                      archive=pack_run_dir(run_dir) if pack and run_dir else None)


def _staging(folder: Path) -> Path:
    """``folder`` made, with its parent (which another cell may remove when it empties)."""
    for _ in range(10):
        try:
            folder.mkdir(parents=True)
            return folder
        except FileNotFoundError:  # the parent went between its mkdir and ours
            continue
    folder.mkdir(parents=True)
    return folder


class _Tail:
    """Drains one pipe in a thread, keeping its last TAIL_BYTES."""

    def __init__(self, stream) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        with stream:
            for chunk in iter(lambda: stream.read1(1 << 16), b""):
                with self.lock:
                    self.chunks.append(chunk)
                    self.size += len(chunk)
                    while self.size - len(self.chunks[0]) >= TAIL_BYTES:
                        self.size -= len(self.chunks.popleft())

    def join(self) -> None:
        self.thread.join(timeout=5.0)  # a grandchild holding the pipe must not hold the sweep

    def text(self) -> str:
        with self.lock:
            data = b"".join(self.chunks)
        return data[-TAIL_BYTES:].decode("utf-8", "replace")


def _wait(proc: subprocess.Popen, timeout_s: float, stop: threading.Event | None) -> str | None:
    """Wait for the child; None when it ended by itself, else "timeout" or "stop" (then it got
    the signals of that escalation, GRACE_S apart)."""
    deadline = time.monotonic() + timeout_s
    ended_by, steps, next_step = None, [], 0.0
    while True:
        try:
            proc.wait(timeout=0.2)
            return ended_by
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if ended_by is None and stop is not None and stop.is_set():
            ended_by, steps = "stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
        elif ended_by is None and now > deadline:
            ended_by, steps = "timeout", [signal.SIGTERM, signal.SIGKILL]
        if steps and now >= next_step:
            sig = steps.pop(0)
            _signal_group(proc.pid, sig)
            next_step = now + (REAP_S if sig == signal.SIGKILL else GRACE_S)
        elif ended_by is not None and not steps and now >= next_step:
            return ended_by  # SIGKILL did not reap it: give up on it, never hang the sweep


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _settle(staging: Path, output: Path) -> Path | None:
    """Move the run directory the child made in ``staging`` up into ``output``."""
    try:
        made = sorted(p for p in staging.iterdir() if p.is_dir())
    except OSError:
        return None
    found = None
    for path in made:
        target = output / path.name
        try:
            path.rename(target)
            found = target
        except OSError:  # kept where it is: still a run directory under OUTPUT
            found = path
    for empty in (staging, staging.parent):
        _remove_if_empty(empty)
    return found


def _state(run_dir: Path) -> str | None:
    return _status(run_dir)[0]


def _status(run_dir: Path | None) -> tuple[str | None, str | None, str | None]:
    """status.json's (state, error, signal), or Nones."""
    if run_dir is None:
        return None, None, None
    import json

    try:
        document = json.loads((run_dir / "status.json").read_bytes()[:1 << 20])
        return document.get("state"), document.get("error"), document.get("signal")
    except (OSError, ValueError, AttributeError):
        return None, None, None


def _classify(code: int | None, ended_by: str | None, cell: Cell, run_dir: Path | None,
              stderr: str) -> tuple[CellStatus, str]:
    if ended_by == "timeout":
        return CellStatus.TIMEOUT, f"no result within the cell's timeout of {cell.timeout_s:g} s"
    if code in (0, 1) and _status(run_dir)[0] == "done":
        if code == 0:
            return CellStatus.OK, ""
        return CellStatus.INVALID, _invalid_reasons(run_dir)
    if ended_by == "stop" or code == 130:
        return CellStatus.INTERRUPTED, "interrupted" + (" (the sweep was stopped)" if ended_by else "")
    if code is None:
        return CellStatus.FAILED, "the run process could not be reaped after SIGKILL"
    if code < 0:
        name = _signal_name(-code)
        return CellStatus.CRASHED, f"{name}: the run process died by {name}"
    state, error, killed_by = _status(run_dir)
    if killed_by:  # the supervised run died by a signal: a crash, told by its supervisor
        return CellStatus.CRASHED, f"{killed_by}: {error}"
    why = error or _last_line(stderr) or f"exited with code {code}"
    return CellStatus.FAILED, why if code in (2, 3) else f"exited with code {code}: {why}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    ours = [ln for ln in lines if ln.startswith("tinyharness:")]
    line = (ours or lines or [""])[-1]
    return line.removeprefix("tinyharness: ").removeprefix("error: ")


def _invalid_reasons(run_dir: Path | None) -> str:
    summary = read_summary(run_dir) if run_dir else None
    reasons = [r.get("message", "") for r in (summary or {}).get("invalid_reasons") or []
               if isinstance(r, dict)]
    return "; ".join(r for r in reasons if r) or "INVALID"


def read_summary(run_dir: Path | None) -> dict | None:
    """The run's summary.json as a dict (bounded read), or None when it wrote none."""
    from ..errors import UsageError
    from ..fileio import loads_json, read_bounded

    if run_dir is None or not (Path(run_dir) / "summary.json").is_file():
        return None
    try:
        document = loads_json(read_bounded(Path(run_dir) / "summary.json", SUMMARY_BYTES, "summary"),
                              "summary.json")
    except UsageError:
        return None
    return document if isinstance(document, dict) else None


# -- run directories that travel ------------------------------------------------------------------
def pack_run_dir(run_dir: Path) -> bytes | None:
    """A run directory as tar.gz bytes (its regular files, one level), or None when its files
    add up to more than ARCHIVE_BYTES."""
    run_dir = Path(run_dir)
    files = sorted(p for p in run_dir.iterdir() if p.is_file() and not p.is_symlink())
    if sum(p.stat().st_size for p in files) > ARCHIVE_BYTES:
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in files:
            tar.add(path, arcname=f"{run_dir.name}/{path.name}", recursive=False)
    return buffer.getvalue()


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def unpack_run_dir(archive: bytes, output: Path) -> Path:
    """A :func:`pack_run_dir` archive extracted under ``output`` (regular files of one folder,
    names checked, sizes bounded); the folder it names when it is already there (a result that
    came twice). ValueError when the archive is not such an archive."""
    output = Path(output)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members, total = [], 0
        for member in tar:  # one at a time: a bomb stops at the limits, not after it
            members.append(member)
            total += member.size
            if len(members) > 1000 or total > ARCHIVE_BYTES:
                raise ValueError("the run archive is too large")
        folders = {m.name.partition("/")[0] for m in members}
        if len(folders) != 1 or not _NAME.match(next(iter(folders))):
            raise ValueError("the run archive holds no single run directory")
        target = output / folders.pop()
        if target.exists():
            return target
        temporary = output / STAGING / f"unpack-{secrets.token_hex(4)}"
        temporary.mkdir(parents=True)
        try:
            _extract(tar, members, temporary)
            temporary.rename(target)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        finally:
            _remove_if_empty(temporary.parent)
    return target


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], folder: Path) -> None:
    for member in members:
        name = member.name.partition("/")[2]
        if not member.isfile() or not _NAME.match(name):
            raise ValueError(f"unexpected member {member.name!r} in the run archive")
        source = tar.extractfile(member)
        if source is None:
            raise ValueError(f"unreadable member {member.name!r} in the run archive")
        (folder / name).write_bytes(source.read(member.size))
