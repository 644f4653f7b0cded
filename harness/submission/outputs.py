"""Where ``package`` and ``system init`` write: the path is checked before any work is done, and
every write is atomic (a temporary name beside the target, renamed over it), so a path that cannot
be written is one line naming it and the problem (exit 2), never a traceback or a partial file."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import UsageError


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a symbolic link"
            if stat.S_ISLNK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a file")


def _existing_folder(path: Path, option: str) -> Path:
    """The nearest existing ancestor of ``path``, which must be a folder (``somefile/out.json``
    is refused by name). Missing folders between are made only when the file is written."""
    ancestor = path.parent
    while True:
        try:
            mode = os.stat(ancestor).st_mode
            break
        except OSError as exc:
            # missing, or a file further up (ENOTDIR): climb to the nearest thing that exists
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) or ancestor == ancestor.parent:
                raise UsageError(f"{option} {path}: cannot reach {ancestor}: {exc.strerror}") from None
            ancestor = ancestor.parent
    if not stat.S_ISDIR(mode):
        raise UsageError(f"{option} {path}: {ancestor} is {_kind(mode)}, not a folder; choose "
                         f"another {option}")
    return ancestor


def prepare(path: Path, option: str = "--output", force: bool | None = None) -> Path:
    """``path`` as a new file or folder to write. It must not exist; where the command has a
    ``--force`` (``force`` not None) an existing regular file may be overwritten with it, never a
    folder, FIFO or device. The nearest existing folder above it must accept new files (probed
    with a temporary file, so /proc or a read-only mount is refused before any work)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        if exc.errno != errno.ENOTDIR:
            raise UsageError(f"{option} {path}: {exc.strerror}") from None
        mode = None  # a file where a folder should be: _existing_folder names it
    if mode is not None and force is None:
        raise UsageError(f"{path} exists ({_kind(mode)}); choose another {option}")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"{option} {path} is {_kind(mode)}; give the path of a file")
    if mode is not None and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    folder = _existing_folder(path, option)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write in {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    return path


@contextlib.contextmanager
def writing(path: Path, option: str = "--output") -> Iterator[None]:
    """Make the folders ``path`` goes in, then run the block; an OSError (a full disk, a folder
    that vanished, an unreadable input) is a one-line UsageError naming the file. The atomic
    writers have removed their temporary file by then."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise UsageError(f"{option} {path} could not be written: {exc.strerror or exc}{where}") from None
