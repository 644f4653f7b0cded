"""The standard library's ``data`` extraction filter as a second judge of archive members.

archive.py's own rules come first and refuse more (links of any kind, special files, names,
sizes, duplicates); the filter (``tarfile.data_filter``, PEP 706) is checked after them for every
member about to be written. These tests weaken the module's own rules to show that the filter
alone still stops what it knows, and take the filter away to show that the rules alone still hold
where Python has none (before 3.10.12 / 3.11.4).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tinyharness.submission import archive

HAS_FILTER = hasattr(tarfile, "data_filter")
needs_filter = pytest.mark.skipif(not HAS_FILTER, reason="this Python has no tarfile extraction filters "
                                                         "(3.10.12 / 3.11.4 and later have)")


def build(path: Path, members) -> Path:
    """``members``: (name, type, data or link target) triples."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = payload or ""
                tar.addfile(info)
    return path


def extracted(root: Path | None) -> list[str]:
    if root is None:
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@needs_filter
@pytest.mark.parametrize("name, kind, payload, rule, error", [
    ("dev/zero", tarfile.CHRTYPE, None, "archive-special", "SpecialFileError"),
    ("pipe", tarfile.FIFOTYPE, None, "archive-special", "SpecialFileError"),
    ("etc-link", tarfile.SYMTYPE, "/etc/passwd", "archive-link", "AbsoluteLinkError"),
    ("up/link", tarfile.SYMTYPE, "../../../outside", "archive-link", "LinkOutsideDestinationError"),
    ("hard", tarfile.LNKTYPE, "/etc/passwd", "archive-link", "AbsoluteLinkError"),
])
def test_the_filter_alone_refuses_special_files_and_escaping_links(tmp_path, monkeypatch, name, kind,
                                                                   payload, rule, error):
    monkeypatch.setattr(archive, "_member_problem", lambda member: None)  # the module's rule, gone
    path = build(tmp_path / "p.tar.gz", [("ok.txt", tarfile.REGTYPE, b"fine"), (name, kind, payload)])
    with archive.opened(path) as (root, violations):
        assert extracted(root) == ["ok.txt"]  # the hostile member was never written
        assert [(v.path, v.rule) for v in violations] == [(name, rule)]
        assert "refused by tarfile's data filter" in violations[0].message
        assert error in violations[0].message
    assert not (tmp_path / "outside").exists()


@needs_filter
def test_the_filter_judges_the_destination_it_is_given(tmp_path):
    rule, why = archive._filter_refuses(tarfile.TarInfo("../escape.txt"), tmp_path / "dest")
    assert rule == "archive-path" and "OutsideDestinationError" in why
    plain = tarfile.TarInfo("a/b.txt")
    plain.mode = 0o4777  # setuid, world-writable: the filter cleans modes, it does not refuse
    assert archive._filter_refuses(plain, tmp_path / "dest") is None
    folder = tarfile.TarInfo("a")
    folder.type = tarfile.DIRTYPE
    assert archive._filter_refuses(folder, tmp_path / "dest") is None


@needs_filter
def test_links_inside_the_package_pass_the_filter_but_not_the_rules(tmp_path):
    """What the filter allows and a package never needs: a link to a sibling. The module's own
    rule refuses it; nothing but the regular file is written."""
    member = tarfile.TarInfo("a/link")
    member.type, member.linkname = tarfile.SYMTYPE, "b.txt"
    assert archive._filter_refuses(member, tmp_path / "dest") is None
    path = build(tmp_path / "p.tar.gz", [("a/b.txt", tarfile.REGTYPE, b"x"), ("a/link", tarfile.SYMTYPE, "b.txt")])
    with archive.opened(path) as (root, violations):
        assert extracted(root) == ["a", "a/b.txt"]
        assert [(v.path, v.rule) for v in violations] == [("a/link", "archive-link")]
        assert "data filter" not in violations[0].message  # the module's own rule said it first


def test_without_filters_the_rules_alone_hold(tmp_path, monkeypatch):
    """A Python without extraction filters (3.10.0 .. 3.10.11, 3.11.0 .. 3.11.3): same results."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    assert archive._filter_refuses(tarfile.TarInfo("../x"), tmp_path) is None
    path = build(tmp_path / "p.tar.gz", [
        ("ok/a.txt", tarfile.REGTYPE, b"data"), ("../up.txt", tarfile.REGTYPE, b"x"),
        ("pipe", tarfile.FIFOTYPE, None), ("l", tarfile.SYMTYPE, "/etc/passwd")])
    with archive.opened(path) as (root, violations):
        assert extracted(root) == ["ok", "ok/a.txt"]
        assert (root / "ok" / "a.txt").read_bytes() == b"data"
        assert [v.rule for v in violations] == ["archive-path", "archive-special", "archive-link"]
    assert not (tmp_path / "up.txt").exists()


def test_a_clean_package_passes_rules_and_filter_alike(tmp_path):
    path = build(tmp_path / "p.tar.gz", [("closed/ACME/systems/host.json", tarfile.REGTYPE, b"{}"),
                                         ("closed/ACME/results/host/kws/x.txt", tarfile.REGTYPE, b"1")])
    with archive.opened(path) as (root, violations):
        assert violations == []
        assert "closed/ACME/results/host/kws/x.txt" in extracted(root)
        mode = os.stat(root / "closed" / "ACME" / "systems" / "host.json").st_mode & 0o777
        assert mode == 0o600  # written by the module, not by TarFile.extract
