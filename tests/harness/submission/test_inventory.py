"""The files of a package folder (defects 15 and 16): a tree thousands of folders deep (os.walk
recursed until RecursionError), FIFOs and links among the members, and the manifest read with
its bounds. Each is a violation; the check never crashes, blocks or follows a link.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_package import SERIAL_RUN, SUBMITTER, cli
from test_schema1 import system_file
from tinyharness.submission import archive
from tinyharness.submission.check import check_package
from tinyharness.submission.check import Checker
from tinyharness.submission.package import build

CODE = f"closed/{SUBMITTER}/code"


def deep_tree(base: Path, levels: int) -> None:
    """``base/d/d/.../d/x.txt``, ``levels`` folders deep, built from the bottom up so that no path
    this test uses is longer than a few names (the full path is far past PATH_MAX)."""
    base.mkdir(parents=True)
    (base / "d").mkdir()
    (base / "d" / "x.txt").write_text("deep")
    for _ in range(levels - 1):
        (base / "up").mkdir()
        os.rename(base / "d", base / "up" / "d")
        os.rename(base / "up", base / "d")


def remove_deep_tree(base: Path) -> None:
    """Undo ``deep_tree`` one level at a time (shutil.rmtree recurses too)."""
    while (base / "d" / "d").exists():
        os.rename(base / "d" / "d", base / "lifted")
        for entry in os.listdir(base / "d"):
            os.unlink(base / "d" / entry)
        os.rmdir(base / "d")
        os.rename(base / "lifted", base / "d")
    for root, dirs, files in os.walk(base, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(base)


@pytest.fixture
def packaged(tmp_path) -> Path:
    return build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "package")


def test_a_tree_thousands_of_folders_deep_is_a_violation_not_a_crash(packaged):
    deep_tree(packaged / CODE / "deep", 3000)
    try:
        checker = Checker(packaged)
        checker.walk()
        files, found = checker.files, checker.found
        assert not any("/deep/" in f for f in files)
        (hit,) = [v for v in found if "/deep/" in v.path]
        assert hit.rule == "hygiene" and hit.path.startswith(f"{CODE}/deep/d/d/")
        assert hit.message == "a path of more than 32 levels of folders; not read"
        code, out, err = cli("check", str(packaged))
        assert code == 1 and "Traceback" not in err and "more than 32 levels" in out
    finally:
        remove_deep_tree(packaged / CODE / "deep")


def test_fifos_and_links_among_the_members_are_violations(packaged, tmp_path):
    os.mkfifo(packaged / CODE.rsplit("/", 1)[0] / "pipe")
    os.mkfifo(tmp_path / "outside-fifo")
    os.symlink(tmp_path / "outside-fifo", packaged / "manifest-link.json")
    found = {(v.path, v.rule, v.message) for v in check_package(packaged)}
    assert (f"closed/{SUBMITTER}/pipe", "hygiene", "not a regular file (a device, FIFO or socket)") in found
    assert ("manifest-link.json", "hygiene", "symbolic link") in found


def test_a_linked_folder_is_neither_followed_nor_checked_as_a_folder(packaged, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "results.txt")
    os.symlink(outside, packaged / f"closed/{SUBMITTER}/results/dut-board/kws/performance-link")
    found = [v for v in check_package(packaged) if "performance-link" in v.path]
    assert [(v.rule, v.message) for v in found] == [
        ("hygiene", "symbolic link"),
        ("layout", "unexpected: a model folder holds accuracy/ and performance/")]


def test_a_manifest_entry_of_a_hostile_length_is_shown_shortened(packaged):
    (packaged / "manifest.json").write_text('{"files": [{"path": "' + "x" * 5000 + '", "size": 1, '
                                            '"sha256": ""}]}')
    found = [v for v in check_package(packaged) if v.rule == "manifest"]
    assert any(v.message == "listed in manifest.json but missing from the package" and len(v.path) == 200
               for v in found)
    archive.write_manifest(packaged)
    assert check_package(packaged) == []
