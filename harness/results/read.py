"""Reading finished runs back: run directories, folders of them, and packages (folder or .tar.gz).

Every directory holding a summary.json (or a status.json) is a run, so packages need no code of
their own here; an archive is read member by member without extracting anything. A run whose
status.json says it did not finish (failed, interrupted, still "running") is skipped with a
one-line warning, never read as a result: :func:`load_runs` hands it back as a
:class:`SkippedRun` on request, and refuses only when no finished run is left.

Nothing read here is trusted, and every read is bounded by the package checker's limits
(:class:`tinyharness.submission.archive.Limits`): a file or archive member of more than
``member_bytes`` is refused (a member on its declared size, before any of it is read), all that
one :func:`load_runs` keeps adds up to ``total_bytes`` at most, an archive decompresses to no more
than its ``ratio`` or the total, and has at most ``members`` members. FIFOs, devices and sockets
are refused, never opened; JSON is read with a depth guard and ``latencies.npy`` by its header (a
1-D integer array of non-negative nanoseconds) without numpy's loader. Each problem is a one-line
:class:`~tinyharness.errors.UsageError` naming the file.
"""

from __future__ import annotations

import io
import lzma
import os
import stat
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..errors import UsageError
from ..fileio import loads_json, read_bounded
from ..submission.archive import Limits
from .summary import RunSummary
from .unfinished import RUN_FILES, SkippedRun, _state, entry as _entry

LIMITS = Limits()
_MiB = 1 << 20


@dataclass
class RunRecord:
    """One run as readers see it: its typed summary and its per-query latencies (ns)."""

    path: str
    summary: RunSummary
    latencies: Any = None  # numpy int64 array, or None when latencies.npy is absent
    label: str = ""  # the SUT, numbered where two runs of one benchmark share one

    @property
    def key(self) -> tuple[str, str]:
        return self.summary.key

    @property
    def sut(self) -> str:
        return self.summary.sut


class _OverBudget(UsageError):
    """All the runs of one :func:`load_runs` together are over the limits (never one file's fault)."""


class _Budget:
    """What one :func:`load_runs` may keep: files (or members) and their bytes, in all."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits, self.files, self.bytes = limits or LIMITS, 0, 0

    def take(self, size: int, where: str) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.members:
            raise _OverBudget(f"{where}: more than {self.limits.members:,} run files in all; give "
                             "fewer runs at a time")
        if self.bytes > self.limits.total_bytes:
            raise _OverBudget(f"{where}: the runs add up to more than {self.limits.total_bytes:,} "
                             "bytes; give fewer runs at a time")


def parse_summary(data: bytes, where: str) -> RunSummary:
    """summary.json's bytes as a typed summary whose verdict agrees with itself: a run written
    by tinyharness says VALID exactly when it lists no invalid reason and no error, so a file
    that says otherwise was altered (a report would show a VALID run with reasons)."""
    document = loads_json(data, where)
    summary = RunSummary.from_dict(document, where)
    if "valid" not in document:
        raise UsageError(f'{where}: not a tinyharness run summary: field "valid" is missing')
    if summary.valid != (not summary.invalid_reasons and not summary.errors):
        raise UsageError(f"{where}: says {'VALID' if summary.valid else 'INVALID'} but lists "
                         f"{len(summary.invalid_reasons)} invalid reasons and {len(summary.errors)} "
                         "errors; a run is VALID exactly when it lists none")
    return summary


def read_summary(path: Path, budget: _Budget | None = None) -> RunSummary:
    """``summary.json`` of a run directory (or the file itself), typed."""
    path = Path(path)
    file = path / "summary.json" if path.is_dir() else path
    data = read_bounded(file, (budget or _Budget()).limits.member_bytes, "summary")
    if budget is not None:
        budget.take(len(data), str(file))
    return parse_summary(data, str(file))


def _npy(data: bytes, where: str):
    """latencies.npy: a 1-D integer array of nanoseconds, each at least 0, as int64. Its header
    is read first; numpy's loader (pickles, any shape or dtype) never runs."""
    import numpy as np
    from numpy.lib import format as npy_format

    buffer = io.BytesIO(data)
    try:
        version = npy_format.read_magic(buffer)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(buffer)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]}")
    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
        raise UsageError(f"{where}: not a .npy file numpy writes ({str(exc)[:100]})") from None
    if len(shape) != 1 or dtype.kind not in "iu" or dtype.hasobject:
        raise UsageError(f"{where}: holds a {dtype} array of shape {shape}; latencies are a 1-D "
                         "integer array (ns)")
    count, offset = shape[0], buffer.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise UsageError(f"{where}: its header says {count:,} values of {dtype.itemsize} bytes, "
                         f"the file holds {len(data) - offset:,} bytes of data; truncated?")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    if dtype.kind == "u" and dtype.itemsize == 8 and count and values.max() > np.iinfo(np.int64).max:
        raise UsageError(f"{where}: a latency beyond int64; latencies are nanoseconds")
    latencies = values.astype(np.int64)
    if count and latencies.min() < 0:
        raise UsageError(f"{where}: a negative latency ({int(latencies.min())} ns); latencies are "
                         "nanoseconds since the query was issued")
    return latencies


# -- archives --------------------------------------------------------------------------------------

def _sniff(path: Path):
    """(the decompressed stream of a tar archive: gzip, bzip2, xz or plain; the raw file), or
    (None, None) when the file is not one. The caller closes both."""
    import bz2
    import gzip

    raw = open(path, "rb")
    head = raw.read(512)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    if head[:3] == b"BZh":
        return bz2.BZ2File(raw), raw
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw), raw
    if len(head) == 512 and head[257:262] == b"ustar":
        return raw, raw
    raw.close()
    return None, None


class _Guard:
    """A seekable, read-only view of a (decompressed) tar stream for ``tarfile``: no single read
    larger than a member may be (a pax or long-name header declaring 10 GiB is refused before it
    is read), and nothing past the total limit or, compressed, the decompression ratio."""

    def __init__(self, inner, compressed: int | None, limits: Limits, where: str) -> None:
        self.inner, self.compressed, self.limits, self.where = inner, compressed, limits, where
        self.cap = limits.total_bytes + limits.members * 1536 + _MiB  # headers and padding too

    def _check(self, position: int) -> None:
        if position > self.cap:
            raise UsageError(f"{self.where}: more than {self.cap:,} bytes once decompressed (the limit "
                             f"is {self.limits.total_bytes:,} bytes of content); not read further")
        if (self.compressed is not None and position > self.limits.ratio_floor_bytes
                and position > self.limits.ratio * max(self.compressed, 1)):
            raise UsageError(f"{self.where}: decompresses to more than {self.limits.ratio:g} times its "
                             f"size ({self.compressed:,} bytes); a compression bomb is not read further")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.limits.member_bytes + 1024:
            raise UsageError(f"{self.where}: a member header declares more than the "
                             f"{self.limits.member_bytes:,} bytes allowed; not read further")
        self._check(self.inner.tell() + size)
        return self.inner.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence not in (0, 1):
            raise UsageError(f"{self.where}: cannot be read as a stream")
        target = offset if whence == 0 else self.inner.tell() + offset
        self._check(target)
        return self.inner.seek(target)

    def tell(self) -> int:
        return self.inner.tell()


def _printable(name: str) -> str:
    """A member name as a message shows it: control characters (a newline) as '?', 200 at most."""
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in name[:200])


def _from_tar(path: Path, stream, compressed: bool, budget: _Budget) -> list[RunRecord | SkippedRun]:
    limits, size = budget.limits, os.stat(path).st_size
    guard = _Guard(stream, size if compressed else None, limits, str(path))
    found: dict[PurePosixPath, dict[str, tuple[bytes, str]]] = {}  # run -> name -> (bytes, where)
    seen: set[str] = set()
    total = count = 0
    try:
        tar = tarfile.open(fileobj=guard, mode="r:")
        for member in tar:
            count += 1
            total += max(member.size, 0)
            where = f"{path}:{_printable(member.name)}"
            if count > limits.members:
                raise UsageError(f"{path}: more than {limits.members:,} members; not read further")
            if member.size > limits.member_bytes:
                raise UsageError(f"{where}: declares {member.size:,} bytes, more than the "
                                 f"{limits.member_bytes:,} allowed for one member; not read further")
            if total > limits.total_bytes:
                raise UsageError(f"{where}: the members add up to more than {limits.total_bytes:,} "
                                 "bytes; not read further")
            name = PurePosixPath(member.name)
            if not member.isfile() or name.name not in (*RUN_FILES, "latencies.npy"):
                continue
            if member.name in seen:
                raise UsageError(f"{where}: appears twice in the archive; which one is the run's?")
            seen.add(member.name)
            handle = tar.extractfile(member)
            data = handle.read(member.size + 1) if handle is not None else b""
            if len(data) != member.size:
                raise UsageError(f"{where}: truncated ({len(data):,} of {member.size:,} bytes)")
            budget.take(len(data), where)
            found.setdefault(name.parent, {})[name.name] = (data, where)
        if not compressed and tar.offset > size:  # a plain tar cut short ends without an error
            raise EOFError("the last member ends past the end of the file")
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise UsageError(f"{path}: truncated or corrupt archive "
                         f"({str(exc)[:120] or type(exc).__name__})") from None

    def record(parent: PurePosixPath, files: dict[str, tuple[bytes, str]]) -> RunRecord:
        npy = files.get("latencies.npy")
        return RunRecord(f"{path}:{parent}", parse_summary(*files["summary.json"]),
                         None if npy is None else _npy(*npy))

    return [_entry(f"{path}:{parent}", parent.name, {n: d for n, (d, _) in files.items()},
                   lambda parent=parent, files=files: record(parent, files))
            for parent, files in sorted(found.items()) if set(files) & set(RUN_FILES)]


def _read_tar(path: Path, budget: _Budget) -> list[RunRecord] | None:
    """The runs of a tar archive, or None when ``path`` is not one."""
    try:
        stream, raw = _sniff(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stream is None:
        return None
    try:
        return _from_tar(path, stream, stream is not raw, budget)
    finally:
        stream.close()
        raw.close()


# -- folders ---------------------------------------------------------------------------------------

def read_run(run_dir: Path, budget: _Budget | None = None) -> RunRecord:
    run_dir, budget = Path(run_dir), budget or _Budget()
    summary = read_summary(run_dir, budget)
    npy = run_dir / "latencies.npy"
    latencies = None
    if os.path.lexists(npy):  # a FIFO, a device or a dangling link there is an error, not absent
        data = read_bounded(npy, budget.limits.member_bytes, "latencies")
        budget.take(len(data), str(npy))
        latencies = _npy(data, str(npy))
    return RunRecord(str(run_dir), summary, latencies)


def _run_dirs(folder: Path) -> list[Path]:
    """Every run directory under ``folder`` (one holding summary.json, status.json or
    partial_summary.json) in path order; linked folders are not followed (no loops), a run file
    that is a FIFO or device is refused when read."""
    def fail(exc: OSError) -> None:
        raise UsageError(f"{exc.filename}: cannot read: {exc.strerror}")

    return sorted(Path(here) for here, _, names in os.walk(folder, onerror=fail)
                  if not set(names).isdisjoint(RUN_FILES))


def _read_dir(run_dir: Path, budget: _Budget) -> RunRecord | SkippedRun:
    """A run directory as a run, or as a skipped run when status.json says it did not finish:
    its summaries are then read only for what the run was (and left aside when unreadable)."""
    def take(name: str, what: str) -> bytes:
        data = read_bounded(run_dir / name, budget.limits.member_bytes, what)
        budget.take(len(data), str(run_dir / name))
        return data

    files = {"status.json": take("status.json", "status")} if os.path.lexists(run_dir / "status.json") else {}
    if _state(files.get("status.json"), "")[0] == "done":
        files.update((n, b"") for n in ("summary.json", "partial_summary.json")
                     if os.path.lexists(run_dir / n))
        return _entry(str(run_dir), run_dir.name, files, lambda: read_run(run_dir, budget))
    for name in ("partial_summary.json", "summary.json"):
        try:
            if os.path.lexists(run_dir / name):
                files[name] = take(name, "summary")
        except _OverBudget:
            raise
        except UsageError:  # unreadable (a FIFO is refused, never opened): the run stays unnamed
            pass
    return _entry(str(run_dir), run_dir.name, files, lambda: None)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_runs(paths, skipped: list[SkippedRun] | None = None,
              warn: Callable[[str], None] = _warn, published: list | None = None) -> list[RunRecord]:
    """Every run under the paths, in path order, each labelled by its SUT (numbered where two
    runs of one benchmark share one: "tflite-cpu #2" is that benchmark's second tflite-cpu run).

    Runs that did not finish (status.json says failed, interrupted or running; or no
    summary.json) are left out, each with a one-line warning through ``warn`` naming its folder
    and status, and appended to ``skipped`` when given (labelled alike). A UsageError when no
    finished run is left.

    A path with no runs that is an MLPerf Tiny results tree (a checkout or archive of the
    published results: closed/ or open/ folders of <submitter>/results/) gives its results, as
    :class:`tinyharness.published.PublishedResult`, to ``published`` when that list is given
    (no runs at all is then no error when a tree was read), else a one-line UsageError."""
    entries: list[RunRecord | SkippedRun] = []
    budget = _Budget()
    trees = 0
    for path in map(Path, paths):
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
        found = None
        if stat.S_ISDIR(mode):
            found = [_read_dir(d, budget) for d in _run_dirs(path)]
        elif stat.S_ISREG(mode):
            found = _read_tar(path, budget)
        if found is None:
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(
                mode) else "a file" if stat.S_ISREG(mode) else "not a regular file"
            raise UsageError(f"{path} is {kind}, neither a folder nor a .tar.gz package; give run "
                             "directories, folders of runs or packages")
        if not found:
            from ..published.tree import collect  # only for a path without runs

            if not collect(path, published, warn):
                raise UsageError(f"no run directories (a folder holding summary.json or status.json) "
                                 f"under {path}")
            trees += 1
            continue
        entries += found
    seen: dict[tuple[str, str], int] = {}
    runs: list[RunRecord] = []
    left_out: list[SkippedRun] = []
    for entry in entries:
        key = (entry.key[0], entry.sut)
        seen[key] = seen.get(key, 0) + 1
        entry.label = entry.sut if seen[key] == 1 else f"{entry.sut} #{seen[key]}"
        if isinstance(entry, SkippedRun):
            entry.position = len(runs)
            left_out.append(entry)
            warn(entry.warning)
        else:
            runs.append(entry)
    if skipped is not None:
        skipped += left_out
    if not runs and not trees:
        raise UsageError(f"no finished runs to read: the {len(left_out)} run director"
                         f"{'y' if len(left_out) == 1 else 'ies'} given did not finish "
                         "(see the warnings above)")
    return runs
