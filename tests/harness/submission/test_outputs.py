"""Output paths of ``package`` and ``system init`` (defect 11): into /proc, onto an existing folder,
under a regular file. Each is one line naming the path and the problem, exit 2, and nothing is
left behind (no package, no temporary file, no staging folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_package import SERIAL_RUN, SUBMITTER, cli
from test_schema1 import system_file

BAD = {  # name -> (path under tmp_path or absolute, what the line says)
    "proc": ("/proc/tinyharness-out", "cannot write in /proc"),
    "under-a-file": ("somefile/out", "somefile is a file, not a folder"),
    "deeper-under-a-file": ("somefile/a/b/out", "somefile is a file, not a folder"),
}


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def place(tmp_path) -> Path:
    (tmp_path / "somefile").write_text("not a folder")
    (tmp_path / "adir").mkdir()
    return tmp_path


def resolve(place: Path, name: str, suffix: str) -> Path:
    path, _ = BAD[name]
    return Path(path + suffix) if path.startswith("/") else place / (path + suffix)


@pytest.mark.parametrize("suffix", [".json"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_system_init_refuses_an_unwritable_output_in_one_line(place, name, suffix):
    before = listing(place)
    output = resolve(place, name, suffix)
    code, out, err = cli("system", "init", "--output", str(output))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(output) in err and BAD[name][1] in err, err
    assert listing(place) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_system_init_never_replaces_a_folder(place, force):
    code, _, err = cli("system", "init", "--output", str(place / "adir"), *force)
    assert code == 2 and err.strip() == f"tinyharness: error: --output {place / 'adir'} is a folder; " \
                                        "give the path of a file"
    assert listing(place) == ["adir", "somefile"]


def test_system_init_replaces_a_file_only_with_force(place):
    code, _, err = cli("system", "init", "--output", str(place / "somefile"))
    assert code == 2 and "use --force" in err and (place / "somefile").read_text() == "not a folder"
    code, _, err = cli("system", "init", "--output", str(place / "somefile"), "--force")
    assert code == 0 and (place / "somefile").read_text().startswith("{")


@pytest.mark.parametrize("suffix", ["", ".tar.gz"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_package_refuses_an_unwritable_output_in_one_line(place, name, suffix):
    system = system_file(place)
    before = listing(place)
    output = resolve(place, name, suffix)
    code, out, err = cli("package", str(SERIAL_RUN), "--submitter", SUBMITTER, "--division", "closed",
                         "--system", str(system), "--output", str(output))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(output) in err and BAD[name][1] in err, err
    assert listing(place) == before


@pytest.mark.parametrize("suffix", ["", ".tar.gz"])
def test_package_onto_an_existing_folder_or_file_is_refused(place, suffix):
    system = system_file(place)
    before = listing(place)
    for existing in ("adir", "somefile"):
        target = place / existing
        if suffix:
            os.rename(target, place / (existing + suffix))
            target = place / (existing + suffix)
        code, _, err = cli("package", str(SERIAL_RUN), "--submitter", SUBMITTER, "--division", "closed",
                           "--system", str(system), "--output", str(target))
        assert code == 2 and err.strip().startswith(f"tinyharness: error: {target} exists"), err
        if suffix:
            os.rename(target, place / existing)
    assert listing(place) == before
