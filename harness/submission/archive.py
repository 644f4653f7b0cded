"""Submission archives: written deterministically, and read without trusting them.

Reading never calls ``extractall``: the archive is streamed member by member into a private
temporary folder (``tempfile.mkdtemp``, mode 0700) under these rules, each broken one reported as a
violation: no absolute paths, no ``..``, no links, no device or FIFO members, no duplicate names,
no file where a folder is expected (or the reverse), no name longer or deeper than a package
needs, member and total sizes and the member count under limits, a bounded decompression ratio,
and an archive that ends before its end-of-archive blocks is truncated. Nothing is written outside
the temporary folder, which is removed on the way out, whatever exception ends the check.

Each member that passes these rules also goes through the standard library's ``data`` extraction
filter (``tarfile.data_filter``, PEP 706: Python 3.12, 3.11.4 and 3.10.12 on) before it is written:
a second, independent judge of absolute and escaping paths, links and special files, whose refusal
is reported like the rules' own. The rules stay: the filter knows no size, count, ratio, name or
depth limits, duplicates or file/folder conflicts, and it lets links that stay inside the folder
through, which a package never needs. Files are still written by this module (``O_EXCL`` and
``O_NOFOLLOW``, mode 0600, the byte count checked), not by ``TarFile.extract``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..fileio import regular_file, sha256_of, umask

MiB = 1 << 20
MANIFEST = "manifest.json"
FILE_LIMIT = 500 * MiB  # the MLCommons checker's per-file limit
# A package is 7 folders deep with short names: far looser bounds than that still keep every
# extracted path under PATH_MAX and every tree walk shallow.
MAX_DEPTH = 32  # folders in a path
MAX_NAME = 255  # bytes in one name (NAME_MAX)
MAX_PATH = 1024  # bytes in a whole relative path
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: every member of a package has this time


@dataclass(frozen=True)
class Limits:
    member_bytes: int = 64 * MiB
    total_bytes: int = 512 * MiB
    members: int = 10_000
    ratio: float = 200.0  # decompressed / compressed, checked once past ratio_floor_bytes
    ratio_floor_bytes: int = 4 * MiB


@dataclass(frozen=True)
class Violation:
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return _printable(f"{self.path}: {self.rule}: {self.message}")


def _printable(text: str) -> str:
    """One line whatever a stranger named a file: control characters and undecodable bytes
    escaped, so a name cannot break the one-violation-per-line output or fake an 'OK' line."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Stop(Exception):
    """The archive cannot be read further: the violation says why."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


class _Guard:
    """A read-only file object over the (decompressed) tar stream that stops at the size and
    ratio limits before anything is stored, so a bomb never gets far."""

    def __init__(self, inner, compressed_size: int | None, limits: Limits, name: str) -> None:
        self.inner, self.compressed, self.limits, self.name = inner, compressed_size, limits, name
        self.read_bytes = 0
        # headers and padding on top of the data: 1.5 KiB per member is generous
        self.cap = limits.total_bytes + limits.members * 1536 + MiB

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.inner.read(size if size is not None and size >= 0 else 1 << 20)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise _Stop(Violation(self.name, "archive-corrupt",
                                  f"truncated or corrupt compressed stream ({exc or type(exc).__name__})"))
        self.read_bytes += len(data)
        if self.read_bytes > self.cap:
            raise _Stop(Violation(self.name, "archive-total-size",
                                  f"more than {self.cap:,} bytes once decompressed (limit "
                                  f"{self.limits.total_bytes:,} bytes of content); not read further"))
        if (self.compressed and self.read_bytes > self.limits.ratio_floor_bytes
                and self.read_bytes / self.compressed > self.limits.ratio):
            raise _Stop(Violation(self.name, "archive-ratio",
                                  f"decompresses to more than {self.limits.ratio:g} times its size "
                                  f"({self.read_bytes:,} bytes from {self.compressed:,}); a "
                                  "compression bomb is not read further"))
        return data


def _safe_name(raw: str) -> tuple[str | None, str]:
    """(normalised relative POSIX path, '') or (None, why it is refused)."""
    if not raw or "\x00" in raw:
        return None, "an empty or NUL-containing name"
    if "\\" in raw:
        return None, "a backslash in the name (a Windows path?)"
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        return None, "an absolute path"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None, "a '..' component (path traversal)"
    if not parts:
        return None, "a name that is only '.'"
    why = too_long(parts)
    return (None, why) if why else ("/".join(parts), "")


def too_long(parts: list[str]) -> str:
    """Why a relative path is beyond the package bounds, or ''."""
    encoded = [p.encode("utf-8", "surrogateescape") for p in parts]
    if len(parts) > MAX_DEPTH + 1:
        return f"more than {MAX_DEPTH} levels of folders"
    if max(map(len, encoded)) > MAX_NAME:
        return f"a component longer than {MAX_NAME} bytes"
    if sum(map(len, encoded)) + len(parts) - 1 > MAX_PATH:
        return f"more than {MAX_PATH} bytes"
    return ""


class _Broken(Exception):
    """The archive ends or breaks where a member header should be, or a header is too large."""


HEADER_LIMIT = 1 << 16  # bytes of a GNU long name or pax header: names are bounded far below


class _Header(tarfile.TarInfo):
    """tarfile takes an archive that ends without its two zero blocks (cut at a member
    boundary) or a garbled header after the first for the end of the archive, silently dropping
    what follows: both are a truncated archive here."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EmptyHeaderError:
            if tar.offset > 0:
                raise _Broken(f"truncated: the archive ends at byte {tar.offset:,} without its "
                                 "end-of-archive blocks") from None
            raise
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as exc:
            if tar.offset > 0:
                cut = isinstance(exc, tarfile.TruncatedHeaderError)
                raise _Broken(f"{'truncated' if cut else 'corrupt'}: the member header at byte "
                                 f"{tar.offset:,} is {'cut short' if cut else 'invalid'} ({exc}); "
                                 "nothing after it was read") from None
            raise

    # tarfile reads a long-name or pax header's payload whole: bound it before it does
    def _proc_gnulong(self, tar):
        _bounded(self, tar)
        return super()._proc_gnulong(tar)

    def _proc_pax(self, tar):
        _bounded(self, tar)
        return super()._proc_pax(tar)


def _bounded(header: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    if header.size > HEADER_LIMIT:
        raise _Broken(f"corrupt: a long-name or pax header at byte {tar.offset:,} declares "
                         f"{header.size:,} bytes (at most {HEADER_LIMIT:,}); nothing after it was read")


def _member_problem(member: tarfile.TarInfo) -> tuple[str, str] | None:
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        return "archive-link", f"a {kind} link (to {member.linkname!r}); links are not allowed"
    if member.ischr() or member.isblk():
        return "archive-special", "a device file"
    if member.isfifo():
        return "archive-special", "a FIFO"
    if not (member.isreg() or member.isdir()):
        return "archive-special", f"an unsupported member type {member.type!r}"
    return None


# The stdlib filter's refusals, as this module's rules (the most specific class first).
_FILTER_RULES = tuple((name, rule) for name, rule in (
    ("AbsolutePathError", "archive-absolute"), ("OutsideDestinationError", "archive-path"),
    ("SpecialFileError", "archive-special"), ("AbsoluteLinkError", "archive-link"),
    ("LinkOutsideDestinationError", "archive-link"), ("FilterError", "archive-filter"))
    if hasattr(tarfile, name))


def _filter_refuses(member: tarfile.TarInfo, dest: Path) -> tuple[str, str] | None:
    """(rule, why) when tarfile's ``data`` filter refuses ``member`` for ``dest``; None when it
    accepts it or this Python has no filters (before 3.10.12 / 3.11.4)."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return None
    try:
        data_filter(member, str(dest))
    except tarfile.TarError as exc:  # FilterError and its subclasses are TarErrors
        rule = next((r for name, r in _FILTER_RULES if isinstance(exc, getattr(tarfile, name))),
                    "archive-filter")
        return rule, f"refused by tarfile's data filter ({type(exc).__name__}: {exc})"
    return None


def _open_stream(path: Path, limits: Limits, name: str) -> _Guard:
    size = path.stat().st_size
    raw = open(path, "rb")  # closed by the caller through _Guard.inner / its fileobj
    head = raw.read(512)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return _Guard(gzip.GzipFile(fileobj=raw, mode="rb"), size, limits, name)
    if len(head) == 512 and head[257:262] == b"ustar":
        return _Guard(raw, None, limits, name)
    raw.close()
    raise _Stop(Violation(name, "archive-not-tar", "not a tar or tar.gz archive"))


def _extract(path: Path, dest: Path, limits: Limits, violations: list[Violation]) -> None:
    name = path.name
    guard = _open_stream(path, limits, name)
    kinds: dict[str, str] = {}  # normalised path -> "file" | "dir"
    total = count = 0
    try:
        try:
            archive = tarfile.open(fileobj=guard, mode="r|", tarinfo=_Header)
        except tarfile.TarError as exc:
            raise _Stop(Violation(name, "archive-not-tar", f"not a readable tar stream ({exc})"))
        except _Broken as exc:
            raise _Stop(Violation(name, "archive-corrupt", str(exc)))
        while True:
            try:
                member = archive.next()
            except tarfile.TarError as exc:
                raise _Stop(Violation(name, "archive-corrupt", f"corrupt or truncated tar ({exc})"))
            except _Broken as exc:
                raise _Stop(Violation(name, "archive-corrupt", str(exc)))
            if member is None:
                # The tar ends before its padding and the gzip trailer: read them too, so that a
                # cut trailer or a bad CRC is reported (the guard bounds what is read).
                while guard.read(1 << 16):
                    pass
                break
            count += 1
            if count > limits.members:
                raise _Stop(Violation(name, "archive-count", f"more than {limits.members:,} members; "
                                                             "not read further"))
            where, why = _safe_name(member.name)
            shown = where or member.name[:200]
            if member.size > limits.member_bytes:
                raise _Stop(Violation(shown, "archive-size",
                                      f"declares {member.size:,} bytes, over the {limits.member_bytes:,}"
                                      "-byte limit per member; the archive was not read further"))
            total += member.size
            if total > limits.total_bytes:
                raise _Stop(Violation(shown, "archive-total-size",
                                      f"members add up to more than {limits.total_bytes:,} bytes; "
                                      "the archive was not read further"))
            if where is None:
                rule = "archive-absolute" if why == "an absolute path" else "archive-path"
                violations.append(Violation(shown, rule, f"member name has {why}; not extracted"))
                continue
            problem = _member_problem(member)
            if problem:
                violations.append(Violation(shown, problem[0], f"{problem[1]}; not extracted"))
                continue
            parents = ["/".join(where.split("/")[:i]) for i in range(1, where.count("/") + 1)]
            blocked = next((p for p in parents if kinds.get(p) == "file"), None)
            if blocked:
                violations.append(Violation(shown, "archive-conflict",
                                            f"{blocked} is a file in this archive, not a folder"))
                continue
            kind = "dir" if member.isdir() else "file"
            if where in kinds:
                if kinds[where] == "dir" and kind == "dir":
                    continue
                rule = "archive-duplicate" if kinds[where] == kind else "archive-conflict"
                violations.append(Violation(shown, rule, f"appears more than once (first as a "
                                                         f"{kinds[where]}, then as a {kind})"))
                continue
            for p in parents:
                kinds.setdefault(p, "dir")
            kinds[where] = kind
            target = dest.joinpath(*where.split("/"))
            if os.path.commonpath([str(dest), os.path.realpath(target)]) != str(dest):
                violations.append(Violation(shown, "archive-path", "resolves outside the package"))
                continue
            refused = _filter_refuses(member, dest)
            if refused:
                violations.append(Violation(shown, refused[0], f"{refused[1]}; not extracted"))
                continue
            try:
                _write(archive, member, target, shown)
            except OSError as exc:  # the names are bounded; this is the disk (full, read-only)
                raise _Stop(Violation(shown, "archive-extract", f"cannot be extracted ({exc.strerror or exc});"
                                                                " the archive was not read further"))
    finally:
        inner = guard.inner
        fileobj = getattr(inner, "fileobj", None)
        inner.close()
        if fileobj is not None:
            fileobj.close()


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path, shown: str) -> None:
    if member.isdir():
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = archive.extractfile(member)
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
        while True:
            try:
                chunk = source.read(1 << 16)
            except tarfile.TarError as exc:
                raise _Stop(Violation(shown, "archive-corrupt", f"truncated member ({exc})"))
            if not chunk:
                break
            written += len(chunk)
            out.write(chunk)
    if written != member.size:
        raise _Stop(Violation(shown, "archive-corrupt", f"truncated: {written:,} of {member.size:,} bytes"))


@contextlib.contextmanager
def opened(path: Path, limits: Limits = Limits()) -> Iterator[tuple[Path | None, list[Violation]]]:
    """(the package's root folder, archive violations). A folder is used as it is; an archive is
    extracted into a private temporary folder that is removed on exit, whatever ends it
    (KeyboardInterrupt and SystemExit included). The root is None when nothing could be
    extracted. Anything else than a folder or a regular file (a FIFO would block the read
    forever, a device never end) is a one-line UsageError before anything is opened."""
    path = Path(path)
    if path.is_dir():
        yield path, []
        return
    regular_file(path, "package")
    violations: list[Violation] = []
    temp = Path(tempfile.mkdtemp(prefix="tinyharness-check-"))  # mode 0700
    try:
        try:
            _extract(path, temp, limits, violations)
        except _Stop as stop:
            violations.append(stop.violation)
        yield (temp if any(temp.iterdir()) else None), violations
    finally:
        _remove(temp)


def _remove(folder: Path) -> None:
    """Remove the temporary folder (every entry in it was created by us: 0700 folders, 0600
    files, at most MAX_DEPTH deep, so rmtree's recursion stays shallow)."""
    shutil.rmtree(folder)


def write_tar_gz(root: Path, output: Path) -> None:
    """``output`` as a deterministic tar.gz of the files under ``root``: sorted names, one fixed
    mtime, no owner names or ids, modes 0644/0755, gzip header without a name or time. Written to
    a temporary file beside ``output`` and renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; a package is for others to read
        with os.fdopen(fd, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            entries = sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
            for entry in entries:
                rel = entry.relative_to(root).as_posix()
                info = tarfile.TarInfo(rel)
                info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
                if entry.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.mode, info.size = 0o644, entry.stat().st_size
                    with open(entry, "rb") as handle:
                        tar.addfile(info, handle)
            del entries
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_archive_name(path: Path) -> bool:
    return str(path).endswith((".tar.gz", ".tgz"))


# -- the files of a package: inventory and manifest -------------------------------------------------
def write_manifest(root: Path) -> None:
    """``root/manifest.json``: every other file's path, size and sha256, sorted by path."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p != root / MANIFEST)
    doc = {"format": "tinyharness submission manifest", "version": 1,
           "files": [{"path": p.relative_to(root).as_posix(), "size": p.stat().st_size,
                      "sha256": sha256_of(p)} for p in files]}
    (root / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
