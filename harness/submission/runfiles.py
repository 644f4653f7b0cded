"""The files of a run directory that may come from a stranger, read once and safely, before the
run checker (``logs.check_run_directory``) or the packager opens them.

Only regular files are opened (a FIFO would block the reader forever, a link could point at
/dev/zero or outside the package), no file past ``READ_LIMIT`` is read, every JSON document goes
through ``fileio.loads_json`` (nesting and huge integers are a message, never a crash), and
``latencies.npy`` is parsed from its header, so a header that declares more values than the file
holds is a problem rather than a huge allocation. Problems are ``"file: message"`` strings, the
form the run checker uses.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..fileio import loads_json, read_bounded
from .archive import FILE_LIMIT

MLLOG = ":::MLLOG "  # logs.MLLOG; not imported, so that this module stays light
JSON_FILES = ("status.json", "summary.json", "accuracy.json")
TEXT_FILES = ("detail.txt", "summary.txt")
LATENCIES = "latencies.npy"
READ_LIMIT = FILE_LIMIT  # a larger file is a hygiene violation already; it is never read
LATENCY_DTYPES = (np.dtype("<i8"), np.dtype("<u4"))  # what the runner writes


@dataclass
class RunFiles:
    docs: dict[str, Any] = field(default_factory=dict)  # parsed JSON, by file name
    texts: dict[str, str] = field(default_factory=dict)  # detail.txt, summary.txt
    events: list[dict[str, Any]] = field(default_factory=list)  # detail.txt's MLLOG events
    latencies: np.ndarray | None = None  # int64 ns
    problems: list[str] = field(default_factory=list)

    def event_values(self, key: str) -> list[Any]:
        return [e.get("value") for e in self.events if isinstance(e, dict) and e.get("key") == key]


def parse_json(data: bytes | str, where: str) -> tuple[Any, str | None]:
    """(document, None) or (None, the problem without the ``where`` prefix)."""
    try:
        return loads_json(data, where), None
    except UsageError as exc:
        message = str(exc).removeprefix(f"{where}: ")
        return None, message.replace("not readable JSON", "malformed JSON", 1)


def _regular(path: Path) -> str | None:
    """Why ``path`` (not followed if a link) is not a regular file to read, or None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket")
    return f"{kind}, not a regular file; not read"


def _read(path: Path, name: str, limit: int, files: RunFiles) -> bytes | None:
    why = _regular(path)
    if why is None:
        try:
            return read_bounded(path, limit, name)
        except UsageError as exc:
            why = str(exc).removeprefix(f"{name} {path} ").removeprefix(f"{name} {path}: ")
    files.problems.append(f"{name}: {why}")
    return None


def read_run(folder: Path, limit: int = READ_LIMIT) -> RunFiles:
    """Every run file present in ``folder``, read under the rules above."""
    files = RunFiles()
    for name in (*JSON_FILES, *TEXT_FILES, LATENCIES):
        path = folder / name
        if not os.path.lexists(path):
            continue  # the run checker says which files a run must have
        data = _read(path, name, limit, files)
        if data is None:
            continue
        if name == LATENCIES:
            files.latencies = _latencies(data, files.problems)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            files.problems.append(f"{name}: not UTF-8 text (byte {exc.start})")
            continue
        if name in TEXT_FILES:
            files.texts[name] = text
        else:
            doc, problem = parse_json(text, name)
            if problem:
                files.problems.append(f"{name}: {problem}")
            else:
                files.docs[name] = doc
    for number, line in enumerate(files.texts.get("detail.txt", "").splitlines(), start=1):
        if line.startswith(MLLOG):
            event, problem = parse_json(line[len(MLLOG):], f"detail.txt:{number}")
            if problem:
                files.problems.append(f"detail.txt:{number}: {problem}")
            else:
                files.events.append(event)
    return files


def _latencies(data: bytes, problems: list[str]) -> np.ndarray | None:
    """The values of a one-dimensional little-endian int64 or uint32 .npy, as int64."""
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = read_header(buffer)
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        problems.append(f"{LATENCIES}: not a readable .npy file ({exc})")
        return None
    if dtype not in LATENCY_DTYPES or len(shape) != 1:
        problems.append(f"{LATENCIES}: {dtype} values of shape {shape}; a run writes one row of "
                        "little-endian int64 or uint32 nanoseconds")
        return None
    body = len(data) - buffer.tell()
    if body != shape[0] * dtype.itemsize:
        problems.append(f"{LATENCIES}: the header declares {shape[0]:,} values but the file holds "
                        f"{body:,} bytes of data")
        return None
    return np.frombuffer(data, dtype, shape[0], buffer.tell()).astype(np.int64)
