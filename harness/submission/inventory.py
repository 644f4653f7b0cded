"""The files of a package folder as ``tinyharness check`` sees them: an inventory that never
follows a link or descends further than a package needs, and the manifest held against it
(sizes and sha256, read no further than each file's size)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UsageError
from ..fileio import read_bounded, regular_file, sha256_bounded
from . import archive
from .archive import FILE_LIMIT, MANIFEST, Violation
from .runfiles import parse_json


def is_dir(path: Path) -> bool:
    """A real folder: a link to one is a hygiene violation (inventory), never followed."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:  # unreadable: inventory reports it
        return []


def inventory(root: Path, skip: tuple[str, ...] = ()) -> tuple[list[str], list[Violation]]:
    """(every regular file as a sorted relative POSIX path, hygiene violations: symbolic links,
    other non-regular files, empty folders, __pycache__, files over 500 MiB, unreadable folders,
    paths deeper or longer than a package needs). Links are not followed; the walk is iterative
    (os.walk recurses, and a stranger's tree can be thousands of folders deep). Top-level entries
    named in ``skip`` (a results repository's .git/) are neither walked nor listed."""
    files, found = [], []
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            names = sorted(os.listdir(root / rel))
        except OSError as exc:
            found.append(Violation(rel or ".", "hygiene", f"unreadable folder: {exc.strerror}"))
            continue
        if not rel:
            names = [n for n in names if n not in skip]
        if not names and rel:
            found.append(Violation(rel, "hygiene", "empty folder"))
        if rel.rsplit("/", 1)[-1] == "__pycache__":
            found.append(Violation(rel, "hygiene", "__pycache__ folder"))
        for name in names:
            where = f"{rel}/{name}" if rel else name
            too_long = archive.too_long(where.split("/"))
            if too_long:
                found.append(Violation(where[:200], "hygiene", f"a path of {too_long}; not read"))
                continue
            try:
                info = os.lstat(root / where)
            except OSError as exc:
                found.append(Violation(where, "hygiene", f"unreadable: {exc.strerror}"))
                continue
            if stat.S_ISLNK(info.st_mode):
                found.append(Violation(where, "hygiene", "symbolic link"))
            elif stat.S_ISDIR(info.st_mode):
                pending.append(where)
            elif not stat.S_ISREG(info.st_mode):
                found.append(Violation(where, "hygiene", "not a regular file (a device, FIFO or socket)"))
            else:
                files.append(where)
                if info.st_size > FILE_LIMIT:
                    found.append(Violation(where, "hygiene", "larger than 500 MiB"))
    return sorted(files), found


def verify_manifest(root: Path, files: list[str]) -> list[Violation]:
    """Every difference between the files and manifest.json: missing, unlisted, size, sha256."""
    if MANIFEST not in files:
        return [Violation(MANIFEST, "manifest", "missing: a package lists every file's sha256 and size")]
    try:
        text = read_bounded(root / MANIFEST, FILE_LIMIT, MANIFEST).decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Violation(MANIFEST, "utf8", f"not UTF-8 text (byte {exc.start})")]
    except UsageError as exc:
        return [Violation(MANIFEST, "manifest", str(exc))]
    doc, problem = parse_json(text, MANIFEST)
    if problem:
        return [Violation(MANIFEST, "json", problem)]
    entries = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("path"), str) and type(e.get("size")) is int
            and isinstance(e.get("sha256"), str) for e in entries):
        return [Violation(MANIFEST, "manifest", "expected {'files': [{'path', 'size', 'sha256'}, ...]}")]
    found, listed = [], {}
    for e in entries:
        if e["path"] in listed:
            found.append(Violation(e["path"][:200], "manifest", "listed twice in manifest.json"))
        listed[e["path"]] = e
    present = set(files) - {MANIFEST}
    found += [Violation(rel[:200], "manifest", "listed in manifest.json but missing from the package")
              for rel in sorted(set(listed) - present)]
    found += [Violation(rel, "manifest", "not listed in manifest.json") for rel in sorted(present - set(listed))]
    for rel in sorted(present & set(listed)):
        try:  # regular files only, read no further than their size (they may change meanwhile)
            size = regular_file(root / rel, rel)
            digest = sha256_bounded(root / rel, rel) if size == listed[rel]["size"] else ""
        except UsageError as exc:
            found.append(Violation(rel, "manifest", str(exc)))
            continue
        if size != listed[rel]["size"]:
            found.append(Violation(rel, "manifest", f"size {size} bytes, manifest.json says {listed[rel]['size']}"))
        elif digest != listed[rel]["sha256"]:
            found.append(Violation(rel, "manifest", "sha256 differs from manifest.json: the file was altered"))
    return found
