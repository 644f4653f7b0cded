"""Files: written so that a crash never leaves half of one, checksummed, and safely named."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: Path, chunks) -> None:
    """:func:`atomic_write` of data given as an iterable of bytes (never all in memory at once)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; a file the user shares should not be
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask, read without changing it where Linux tells (/proc), else by the
    set-and-restore that is the only portable way."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def slug(text: str) -> str:
    """A name safe in a file name: runs of other characters become '-', no '-' or '.' at the ends."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.") or "x"


# -- reading what a user or a stranger gave us ------------------------------------------------

JSON_DEPTH = 64  # no file tinyharness writes nests deeper than about 8


def regular_file(path: Path, what: str = "file") -> int:
    """The size of ``path`` if it is a regular file (links followed); a FIFO, device, socket or
    folder is refused before anything opens it, so nothing blocks or reads forever."""
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        raise _usage(f"{what} {path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                else "not a regular file")
        raise _usage(f"{what} {path} is {kind}; give a regular file")
    return info.st_size


def read_bounded(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file no larger than ``limit`` (checked on the size and again on
    what is actually read, so a file that grows meanwhile is caught too)."""
    size = regular_file(path, what)
    if size > limit:
        raise _usage(f"{what} {path} is {size:,} bytes, more than the {limit:,} allowed")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _usage(f"{what} {path} grew past the {limit:,} bytes allowed while it was read")
    return data


def sha256_bounded(path: Path, what: str = "file") -> str:
    """:func:`sha256_of` of a regular file, reading no more than the size it had when stat'ed."""
    size = regular_file(path, what)
    digest, left = hashlib.sha256(), size
    with open(path, "rb") as handle:
        while left > 0:
            block = handle.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def loads_json(data: bytes | str, where: str, max_depth: int = JSON_DEPTH):
    """JSON from untrusted bytes: nesting deeper than ``max_depth``, integers of thousands of
    digits and invalid text are a one-line :class:`UsageError` naming ``where``, never a crash."""
    import json

    try:
        document = json.loads(data)
    except RecursionError:
        raise _usage(f"{where}: JSON nested too deeply (limit {max_depth})") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, and int digit limits
        raise _usage(f"{where}: not readable JSON: {exc}") from None
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _usage(f"{where}: JSON nested too deeply (limit {max_depth})")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return document


def _usage(message: str):
    from .errors import UsageError

    return UsageError(message)
