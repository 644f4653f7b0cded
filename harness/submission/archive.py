"""Submission archives: written deterministically, and read without trusting them.

Reading never calls ``extractall``: the archive is streamed member by member into a private
temporary folder (``tempfile.mkdtemp``, mode 0700) under these rules, each broken one reported as a
violation: no absolute paths, no ``..``, no links, no device or FIFO members, no duplicate names,
no file where a folder is expected (or the reverse), member and total sizes and the member count
under limits, and a bounded decompression ratio. Nothing is written outside the temporary folder,
which is removed afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..fileio import sha256_of

MiB = 1 << 20
MANIFEST = "manifest.json"
FILE_LIMIT = 500 * MiB  # the MLCommons checker's per-file limit
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
        return f"{self.path}: {self.rule}: {self.message}"


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
    return "/".join(parts), ""


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
            archive = tarfile.open(fileobj=guard, mode="r|")
        except tarfile.TarError as exc:
            raise _Stop(Violation(name, "archive-not-tar", f"not a readable tar stream ({exc})"))
        while True:
            try:
                member = archive.next()
            except tarfile.TarError as exc:
                raise _Stop(Violation(name, "archive-corrupt", f"corrupt or truncated tar ({exc})"))
            if member is None:
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
            if kind == "dir":
                target.mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
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
                raise _Stop(Violation(shown, "archive-corrupt", f"truncated: {written:,} of "
                                                                f"{member.size:,} bytes"))
    finally:
        inner = guard.inner
        fileobj = getattr(inner, "fileobj", None)
        inner.close()
        if fileobj is not None:
            fileobj.close()


@contextlib.contextmanager
def opened(path: Path, limits: Limits = Limits()) -> Iterator[tuple[Path | None, list[Violation]]]:
    """(the package's root folder, archive violations). A folder is used as it is; an archive is
    extracted into a private temporary folder that is removed on exit. The root is None when
    nothing could be extracted."""
    path = Path(path)
    if path.is_dir():
        yield path, []
        return
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
    """Remove the temporary folder (every entry in it was created by us: 0700 folders, 0600 files)."""
    shutil.rmtree(folder)


def write_tar_gz(root: Path, output: Path) -> None:
    """``output`` as a deterministic tar.gz of the files under ``root``: sorted names, one fixed
    mtime, no owner names or ids, modes 0644/0755, gzip header without a name or time. Written to
    a temporary file beside ``output`` and renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
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


def inventory(root: Path) -> tuple[list[str], list[Violation]]:
    """(every regular file as a sorted relative POSIX path, hygiene violations: symbolic links,
    other non-regular files, empty folders, __pycache__, files over 500 MiB). Links are not followed."""
    files, found = [], []
    for here, dirs, names in os.walk(root):
        base = Path(here)
        rel = base.relative_to(root).as_posix()
        if not dirs and not names and base != root:
            found.append(Violation(rel, "hygiene", "empty folder"))
        if base.name == "__pycache__":
            found.append(Violation(rel, "hygiene", "__pycache__ folder"))
        for name in sorted(dirs + names):
            path = base / name
            where = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                found.append(Violation(where, "hygiene", "symbolic link"))
                if name in dirs:
                    dirs.remove(name)
            elif name in names and not stat.S_ISREG(mode):
                found.append(Violation(where, "hygiene", "not a regular file (a device, FIFO or socket)"))
            elif name in names:
                files.append(where)
                if path.stat().st_size > FILE_LIMIT:
                    found.append(Violation(where, "hygiene", "larger than 500 MiB"))
    return sorted(files), found


def verify_manifest(root: Path, files: list[str]) -> list[Violation]:
    """Every difference between the files and manifest.json: missing, unlisted, size, sha256."""
    if MANIFEST not in files:
        return [Violation(MANIFEST, "manifest", "missing: a package lists every file's sha256 and size")]
    try:
        doc = json.loads((root / MANIFEST).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        return [Violation(MANIFEST, "utf8", f"not UTF-8 text (byte {exc.start})")]
    except json.JSONDecodeError as exc:
        return [Violation(MANIFEST, "json", f"malformed JSON: {exc}")]
    entries = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("path"), str) and type(e.get("size")) is int
            and isinstance(e.get("sha256"), str) for e in entries):
        return [Violation(MANIFEST, "manifest", "expected {'files': [{'path', 'size', 'sha256'}, ...]}")]
    found, listed = [], {}
    for e in entries:
        if e["path"] in listed:
            found.append(Violation(e["path"], "manifest", "listed twice in manifest.json"))
        listed[e["path"]] = e
    present = set(files) - {MANIFEST}
    found += [Violation(rel, "manifest", "listed in manifest.json but missing from the package")
              for rel in sorted(set(listed) - present)]
    found += [Violation(rel, "manifest", "not listed in manifest.json") for rel in sorted(present - set(listed))]
    for rel in sorted(present & set(listed)):
        size = (root / rel).stat().st_size
        if size != listed[rel]["size"]:
            found.append(Violation(rel, "manifest", f"size {size} bytes, manifest.json says {listed[rel]['size']}"))
        elif sha256_of(root / rel) != listed[rel]["sha256"]:
            found.append(Violation(rel, "manifest", "sha256 differs from manifest.json: the file was altered"))
    return found
