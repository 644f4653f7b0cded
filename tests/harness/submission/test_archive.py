"""Hostile and broken archives: ``tinyharness check`` reads an archive member by member into a
private temporary folder and reports every unsafe or broken member; nothing is ever written
outside that folder, which is gone afterwards. Also: the deterministic tar.gz writer.

Every archive here is built in the test; none needs a benchmark run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from fakes import filled_system
from tinyharness.submission import archive, system_json
from tinyharness.submission.archive import Limits
from tinyharness.submission.check import check_package

MiB = 1 << 20
# a small tree in the submission layout, so that content rules are reached
TEST = "closed/ACME/results/host/kws/accuracy"


def add(tar: tarfile.TarFile, name: str, data: bytes = b"x", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isreg() and data else None)


def make_tar(path: Path, members, mode: str = "w:gz", fmt=tarfile.GNU_FORMAT) -> Path:
    """``members``: a callable that adds members to the open TarFile."""
    with tarfile.open(path, mode, format=fmt) as tar:
        members(tar)
    return path


class Sandbox:
    """A canary folder (what links point at), the archive's own folder, and a private TMPDIR;
    ``check`` runs the checker and then proves nothing escaped and the temp folder is gone."""

    def __init__(self, root: Path, monkeypatch) -> None:
        self.root = root
        self.canary = root / "canary"
        self.canary.mkdir()
        (self.canary / "keep.txt").write_text("untouched")
        self.archives = root / "archives"
        self.archives.mkdir()
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.token = f"evil-{uuid.uuid4().hex[:8]}"
        self.made: list[tuple[Path, int]] = []
        monkeypatch.setattr(tempfile, "tempdir", str(self.tmp))
        real = tempfile.mkdtemp

        def spy(*args, **kwargs):
            path = real(*args, **kwargs)
            self.made.append((Path(path), stat.S_IMODE(os.stat(path).st_mode)))
            return path

        monkeypatch.setattr(tempfile, "mkdtemp", spy)

    def snapshot(self) -> dict:
        def listing(folder: Path) -> dict:
            return {p.relative_to(folder).as_posix(): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
                    for p in folder.rglob("*")}
        return {"canary": listing(self.canary), "archives": listing(self.archives),
                "root": sorted(os.listdir(self.root)), "parent": sorted(os.listdir(self.root.parent))}

    def check(self, path: Path, limits: Limits = Limits()) -> list:
        before = self.snapshot()
        found = check_package(path, limits)
        assert self.snapshot() == before, "the check wrote outside its temporary folder"
        assert not list(self.tmp.iterdir()), "the temporary folder was not removed"
        assert self.made and all(mode == 0o700 for _, mode in self.made), self.made
        assert all(not p.exists() for p, _ in self.made)
        for where in (self.tmp, self.root, self.root.parent, Path("/"), Path("/tmp")):
            assert not list(where.glob(f"{self.token}*")), where
        return found


@pytest.fixture
def box(tmp_path, monkeypatch) -> Sandbox:
    return Sandbox(tmp_path, monkeypatch)


def rules(found) -> set[str]:
    return {v.rule for v in found}


def one(found, rule: str, path_part: str = "", message_part: str = ""):
    hits = [v for v in found if v.rule == rule and path_part in v.path and message_part in v.message]
    assert hits, f"no {rule} violation on {path_part!r} ({message_part!r}) in:\n" + "\n".join(map(str, found))
    return hits[0]


# -- the corpus ----------------------------------------------------------------------------------
SMALL = Limits(member_bytes=MiB, total_bytes=2 * MiB, members=50)
# name -> (build(path, box), expected rule, path part, message part, limits, suffix); "{t}" in a
# path part is the sandbox's unique token (the name an escaped file would have).
CASES = {
    "traversal": (lambda p, b: make_tar(p, lambda z: add(z, f"../{b.token}.txt")),
                  "archive-path", "{t}", ".."),
    "nested-traversal": (lambda p, b: make_tar(p, lambda z: add(z, f"closed/../../{b.token}/x.txt")),
                         "archive-path", "{t}", "traversal"),
    "absolute": (lambda p, b: make_tar(p, lambda z: add(z, f"{b.canary}/{b.token}.txt")),
                 "archive-absolute", "{t}", "absolute"),
    "symlink": (lambda p, b: make_tar(p, lambda z: add(z, "closed/link", b"", type=tarfile.SYMTYPE,
                                                       linkname=str(b.canary))),
                "archive-link", "closed/link", "symbolic"),
    "symlink-then-write-through": (lambda p, b: make_tar(p, lambda z: (
        add(z, "out", b"", type=tarfile.SYMTYPE, linkname=str(b.canary)),
        add(z, f"out/{b.token}.txt", b"pwned"))), "archive-link", "out", "symbolic"),
    "hardlink": (lambda p, b: make_tar(p, lambda z: add(z, "closed/passwd", b"", type=tarfile.LNKTYPE,
                                                        linkname="/etc/passwd")),
                 "archive-link", "passwd", "hard"),
    "char-device": (lambda p, b: make_tar(p, lambda z: add(z, "closed/tty", b"", type=tarfile.CHRTYPE,
                                                           devmajor=5, devminor=0)),
                    "archive-special", "tty", "device"),
    "block-device": (lambda p, b: make_tar(p, lambda z: add(z, "closed/sda", b"", type=tarfile.BLKTYPE,
                                                            devmajor=8, devminor=0)),
                     "archive-special", "sda", "device"),
    "fifo": (lambda p, b: make_tar(p, lambda z: add(z, "closed/pipe", b"", type=tarfile.FIFOTYPE)),
             "archive-special", "pipe", "FIFO"),
    "huge-declared-member": (lambda p, b: huge(p), "archive-size", "closed/huge.bin", "10,737,418,240"),
    "total-size": (lambda p, b: make_tar(p, lambda z: [add(z, f"closed/part{i}.bin", bytes(900 * 1024))
                                                       for i in range(3)]),
                   "archive-total-size", "part2", "", SMALL),
    "too-many-members": (lambda p, b: make_tar(p, lambda z: [add(z, f"closed/f{i:03d}.txt") for i in range(60)]),
                         "archive-count", "", "more than 50", SMALL),
    "malformed-json": (lambda p, b: make_tar(p, lambda z: add(z, "manifest.json", b'{"files": [')),
                       "json", "manifest.json", "malformed"),
    "non-utf8-results": (lambda p, b: make_tar(p, lambda z: tree(z, results=b"0726.010101 ulp-mlperf: "
                                                                     b"Top 1% = \xff\xfe90.2\n")),
                         "utf8", f"{TEST}/results.txt", "not UTF-8"),
    "gzip-bomb": (lambda p, b: make_tar(p, lambda z: add(z, "closed/zeros.bin", bytes(24 * MiB))),
                  "archive-ratio", "", "compression bomb"),
    "truncated-gzip": (lambda p, b: truncated(p), "archive-corrupt", "", "truncated"),
    "not-a-tar": (lambda p, b: write(p, b"PK\x03\x04 a zip, or anything else " * 40),
                  "archive-not-tar", "", "not a tar"),
    "empty-file": (lambda p, b: write(p, b""), "archive-not-tar", "", "not a tar"),
    "gzip-of-garbage": (lambda p, b: write(p, gzip.compress(bytes(range(256)) * 16, mtime=0)),
                        "archive-not-tar", "", ""),
    "bzip2-tar": (lambda p, b: make_tar(p, lambda z: add(z, "closed/a.txt"), mode="w:bz2"),
                  "archive-not-tar", "", "not a tar", Limits(), ".tar.bz2"),
    "duplicate-names": (lambda p, b: make_tar(p, lambda z: (add(z, "manifest.json", b"{}"),
                                                            add(z, "manifest.json", b'{"files": []}'))),
                        "archive-duplicate", "manifest.json", "more than once"),
    "dir-where-file-expected": (lambda p, b: make_tar(p, lambda z: tree(z, results_as_dir=True)),
                                "required-files", f"{TEST}/results.txt", "is a folder"),
    "file-then-folder": (lambda p, b: make_tar(p, lambda z: (add(z, "closed/a"), add(z, "closed/a/b.txt"))),
                         "archive-conflict", "closed/a/b.txt", "not a folder"),
    "backslash-name": (lambda p, b: make_tar(p, lambda z: add(z, f"..\\..\\{b.token}.txt")),
                       "archive-path", "{t}", "backslash"),
    "pax-path-override": (lambda p, b: make_tar(p, lambda z: add(z, "innocent.txt", b"x", pax_headers={
        "path": f"../../{b.token}.txt"}), fmt=tarfile.PAX_FORMAT), "archive-path", "{t}", "traversal"),
    "gnu-longname-traversal": (lambda p, b: make_tar(p, lambda z: add(z, "../" * 40 + f"{b.token}.txt")),
                               "archive-path", "{t}", "traversal"),
    "truncated-member": (lambda p, b: truncated_member(p), "archive-corrupt", "", ""),
    "plain-tar-traversal": (lambda p, b: make_tar(p, lambda z: add(z, f"../{b.token}.txt"), mode="w"),
                            "archive-path", "{t}", "traversal", Limits(), ".tar"),
    "huge-gnu-longname": (lambda p, b: make_tar(p, lambda z: add(z, "closed/" + "n" * 200_000)),
                          "archive-corrupt", "", "declares 200,008 bytes (at most 65,536)"),
    "huge-pax-header": (lambda p, b: make_tar(p, lambda z: add(z, "closed/x", b"x", pax_headers={
        "comment": "c" * 200_000}), fmt=tarfile.PAX_FORMAT), "archive-corrupt", "", "pax header"),
}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tree(tar: tarfile.TarFile, results: bytes = b"0726.010101 ulp-mlperf: Top 1% = 90.2\n",
         results_as_dir: bool = False) -> None:
    add(tar, f"{TEST}/log.txt", b"log\n")
    add(tar, f"{TEST}/results.json", b"[]\n")
    if results_as_dir:
        add(tar, f"{TEST}/results.txt", b"", type=tarfile.DIRTYPE)
        add(tar, f"{TEST}/results.txt/inner.txt", b"x")
    else:
        add(tar, f"{TEST}/results.txt", results)


def huge(path: Path) -> Path:
    """A member that declares 10 GiB without carrying them (a header and the end blocks only)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("closed/huge.bin")
        info.size = 10 * 1024**3
        tar.fileobj.write(info.tobuf(tarfile.GNU_FORMAT, tar.encoding, tar.errors))
    return path


def truncated(path: Path) -> Path:
    make_tar(path, lambda z: [add(z, f"closed/r{i}.bin", os.urandom(20_000)) for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_member(path: Path) -> Path:
    """A plain header declaring 100 000 bytes followed by 1 000, gzipped."""
    info = tarfile.TarInfo("closed/short.bin")
    info.size = 100_000
    path.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + os.urandom(1000), mtime=0))
    return path


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_archive_is_rejected_with_a_clear_message(box, name):
    build, rule, path_part, message, *rest = CASES[name]
    limits = rest[0] if rest else Limits()
    suffix = rest[1] if len(rest) > 1 else ".tar.gz"
    path = build(box.archives / f"{name}{suffix}", box)
    found = box.check(path, limits)
    violation = one(found, rule, path_part.replace("{t}", box.token), message)
    assert str(violation).startswith(f"{violation.path}: {rule}: ")
    assert len(violation.message) > 10
    assert sorted(p.name for p in box.canary.iterdir()) == ["keep.txt"]
    assert (box.canary / "keep.txt").read_text() == "untouched"


def test_cli_check_prints_every_violation_and_exits_1(box):
    path = make_tar(box.archives / "many.tar.gz", lambda z: (
        add(z, f"../{box.token}.txt"), add(z, "closed/link", b"", type=tarfile.SYMTYPE, linkname="/"),
        add(z, "closed/pipe", b"", type=tarfile.FIFOTYPE), add(z, "closed/a.txt")))
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "check", str(path)],
                          capture_output=True, text=True, env=dict(os.environ, TMPDIR=str(box.tmp)))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    for rule in ("archive-path", "archive-link", "archive-special", "manifest"):
        assert any(f": {rule}: " in line for line in lines), (rule, lines)
    assert "violations" in done.stderr
    assert not list(box.tmp.iterdir())


def test_cli_check_on_a_missing_path_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "check", str(tmp_path / "nope.tar.gz")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_the_temporary_folder_is_removed_even_when_the_checker_crashes(box, monkeypatch):
    from tinyharness.submission import check

    path = make_tar(box.archives / "ok.tar.gz", lambda z: add(z, "closed/a.txt"))

    def boom(self):
        raise RuntimeError("checker bug")

    monkeypatch.setattr(check.Checker, "run", boom)
    with pytest.raises(RuntimeError):
        check_package(path)
    assert not list(box.tmp.iterdir())


def test_links_never_become_links_on_disk(box, monkeypatch):
    """While the archive is open, the extracted tree holds only folders and regular files."""
    path = make_tar(box.archives / "mixed.tar.gz", lambda z: (
        add(z, "closed/a.txt"), add(z, "closed/l", b"", type=tarfile.SYMTYPE, linkname="a.txt"),
        add(z, "closed/h", b"", type=tarfile.LNKTYPE, linkname="closed/a.txt")))
    with archive.opened(path) as (root, found):
        kinds = {p.relative_to(root).as_posix(): (p.is_symlink(), p.is_file(), p.is_dir()) for p in root.rglob("*")}
        assert kinds == {"closed": (False, False, True), "closed/a.txt": (False, True, False)}
        assert {v.path for v in found} == {"closed/l", "closed/h"}
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert not root.exists()


# -- the writer --------------------------------------------------------------------------------
def test_write_tar_gz_is_deterministic_and_anonymous(tmp_path):
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "b" / "z.txt").write_text("z")
    (src / "a.json").write_text(json.dumps({"k": 1}))
    os.utime(src / "a.json", (1, 1))
    first, second = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    archive.write_tar_gz(src, first)
    (src / "b" / "z.txt").touch()  # a new mtime must not change the archive
    archive.write_tar_gz(src, second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.json", "b", "b/z.txt"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (archive.FIXED_MTIME, 0, 0, "", "")
        assert m.mode == (0o755 if m.isdir() else 0o644)
    raw = first.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime
    assert sorted(os.listdir(tmp_path)) == ["one.tar.gz", "src", "two.tar.gz"]  # no temp leftovers
    found = check_package(first)
    assert "manifest" in rules(found) and not any(r.startswith("archive") for r in rules(found))


# -- hardening: truncation, hostile names, interrupts, FIFOs, option bounds -------------------------
def members_tar(count: int = 3) -> bytes:
    """An uncompressed tar of ``count`` 2 000-byte members, with its end-of-archive blocks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for i in range(count):
            add(tar, f"closed/r{i}.bin", bytes([i]) * 2000)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("members_kept", [1, 2])
def test_a_tar_cut_at_a_member_boundary_is_truncated(box, compress, members_kept):
    """tarfile reads a tar that simply stops after a member as complete; each member here takes
    one header block and 4 data blocks (2 560 bytes)."""
    data = members_tar()[:members_kept * 2560]
    path = write(box.archives / ("cut.tar.gz" if compress else "cut.tar"),
                 gzip.compress(data, mtime=0) if compress else data)
    one(box.check(path), "archive-corrupt", path.name, "truncated")


def test_a_garbled_header_after_the_first_member_is_corrupt_not_the_end(box):
    data = bytearray(members_tar())
    data[2560:2560 + 512] = b"\x7f" * 512  # the second member's header
    path = write(box.archives / "garbled.tar.gz", gzip.compress(bytes(data), mtime=0))
    one(box.check(path), "archive-corrupt", path.name, "corrupt: the member header at byte 2,560 is invalid")


def test_a_truncated_package_archive_is_one_line_naming_it(box, tmp_path):
    from test_package import SERIAL_RUN, SUBMITTER, cli
    from tinyharness.submission.package import build

    system = tmp_path / "dut-board.json"
    system.write_bytes(system_json.render(filled_system(system_json.describe(sut="serial", submitter=SUBMITTER))))
    whole = build([SERIAL_RUN], SUBMITTER, "closed", [(None, system)], tmp_path / "whole.tar.gz").read_bytes()
    for cut in (len(whole) // 7, len(whole) // 2, len(whole) - 9):
        path = write(box.archives / f"cut{cut}.tar.gz", whole[:cut])
        code, out, err = cli("check", str(path))
        assert code == 1 and "Traceback" not in err and "aborted" not in err, err
        assert any(line.startswith(f"{path.name}: archive-corrupt: ") and "truncated" in line
                   for line in out.splitlines()), out
    assert not list(box.tmp.iterdir())


@pytest.mark.parametrize("name, why", [
    ("closed/" + "n" * 300 + ".json", "longer than 255 bytes"),
    ("closed/" + "d/" * 3000 + "x.json", "more than 32 levels"),
    ("closed/" + "/".join(["abcdefghij" * 10] * 12) + "/x", "more than 1024 bytes"),
])
def test_names_too_long_or_deep_are_refused_not_extracted(box, name, why):
    path = make_tar(box.archives / "long.tar.gz", lambda z: (add(z, name), add(z, "closed/ok.txt")))
    found = box.check(path)  # the Sandbox proves the temporary folder is gone
    one(found, "archive-path", name[:100], why)


class Terminated(KeyboardInterrupt):
    """What the CLI makes of SIGTERM (errors.raise_terminated); local, so the test stands alone."""


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, "SIGTERM"])
def test_an_interrupt_mid_read_leaves_no_temporary_folder(box, monkeypatch, interrupt):
    """SIGTERM reaches check as an exception (the CLI turns it into one): whatever is raised
    while members are being extracted, the temporary folder goes with it."""
    path = make_tar(box.archives / "many.tar.gz",
                    lambda z: [add(z, f"closed/f{i:04d}.bin", os.urandom(4096)) for i in range(200)])
    real, calls = archive._Guard.read, []

    def read(self, size=-1):
        calls.append(size)
        if len(calls) == 40:  # some members are on disk by now
            assert any(any(made.rglob("*.bin")) for made, _ in box.made)
            if interrupt == "SIGTERM":
                os.kill(os.getpid(), signal.SIGTERM)  # the handler raises on the next bytecode
            else:
                raise interrupt()
        return real(self, size)

    def terminate(signum, frame):
        raise Terminated("terminated (SIGTERM)")

    monkeypatch.setattr(archive._Guard, "read", read)
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with pytest.raises(Terminated if interrupt == "SIGTERM" else interrupt):
            check_package(path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(calls) == 40 and box.made and not list(box.tmp.iterdir())


def test_the_temporary_folder_is_removed_when_the_checker_is_interrupted(box, monkeypatch):
    from tinyharness.submission import check

    path = make_tar(box.archives / "ok.tar.gz", lambda z: add(z, "closed/a.txt"))
    monkeypatch.setattr(check.Checker, "run", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        check_package(path)
    assert box.made and not list(box.tmp.iterdir())


def run_check(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    """``tinyharness check`` in a child process: a check that blocks on a FIFO would hang this
    test run, so the child has a generous limit (a guard against a hang, not a time bound)."""
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", "check", *args], capture_output=True,
                          text=True, env=dict(os.environ, TMPDIR=str(tmp)), timeout=300)


def test_a_fifo_given_as_the_package_is_refused_before_it_is_opened(tmp_path):
    os.mkfifo(tmp_path / "package.tar.gz")
    done = run_check(str(tmp_path / "package.tar.gz"), tmp=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"tinyharness: error: package {tmp_path / 'package.tar.gz'} is a FIFO; " \
                                  "give a regular file"


def test_the_option_limits_must_be_finite_and_positive(tmp_path):
    from test_package import cli

    path = make_tar(tmp_path / "ok.tar.gz", lambda z: add(z, "closed/a.txt"))
    for option, value in (("--max-member-size", "nan"), ("--max-total-size", "inf"),
                          ("--max-member-size", "-1"), ("--max-total-size", "0"),
                          ("--max-members", "0"), ("--max-members", "99999999999")):
        code, out, err = cli("check", option, value, str(path))
        assert code == 2 and "Traceback" not in err and f"Invalid value for '{option}'" in err, (option, err)
    code, out, _ = cli("check", "--max-member-size", "0.5", "--max-members", "3", str(path))
    assert code == 1 and "manifest" in out  # accepted: the archive was read under those limits


def test_a_name_cannot_break_the_one_violation_per_line_output(tmp_path):
    from test_package import cli

    fake = "x\nevil.tar.gz: OK (manifest, layout)"  # a second line that looks like a clean check
    path = make_tar(tmp_path / "evil.tar.gz", lambda z: add(z, "closed/" + fake, b"x", pax_headers={
        "path": "closed/" + fake + "\udcff"}), fmt=tarfile.PAX_FORMAT)
    code, out, err = cli("check", str(path))
    assert code == 1 and not any("OK" in line and not line.startswith("closed/") for line in out.splitlines())
    assert "closed/x\\n" in out


def test_sigterm_during_check_leaves_no_temporary_files(tmp_path):
    """The issue's case: ``check`` on a large archive stopped with SIGTERM left ~5 000 extracted
    files behind. The CLI turns SIGTERM into an exception; the temporary folder goes with it."""
    path = make_tar(tmp_path / "large.tar.gz",
                    lambda z: [add(z, f"closed/f{i:05d}.bin", b"%d" % i) for i in range(9000)])
    temp = tmp_path / "tmp"
    temp.mkdir()
    child = subprocess.Popen([sys.executable, "-m", "tinyharness.cli", "check", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TMPDIR=str(temp)))
    try:
        while child.poll() is None:  # until extraction is well under way
            made = list(temp.glob("tinyharness-check-*/closed"))
            if made and len(os.listdir(made[0])) >= 50:
                child.send_signal(signal.SIGTERM)
                break
        _, err = child.communicate(timeout=300)  # a guard against a hang, not a time bound
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("tinyharness: ") and "Traceback" not in err
    assert os.listdir(temp) == []
