"""Generated bad input at the command line: 1 010 cases per run (420 option sets, 180 labels
files, 200 summaries, 170 packages, 40 serial byte streams). Each must end as an error:

- exit 1, 2 or 3 (never 0, never a crash);
- print one line on stderr, and no traceback;
- leave nothing outside the output folder (temporary folders included);
- never leave a run directory at ``running``.

The generator is seeded (``TINYHARNESS_FUZZ_SEED`` to change it; a failure names the seed and the
case). Every case goes through ``tinyharness.cli.main`` in this process, as a user's shell would
call it but without a process per case, so a thousand cases take well under a minute.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

import pytest

from tinyharness.cli import main

SEED = int(os.environ.get("TINYHARNESS_FUZZ_SEED", "20261202"))
DIGITS = Path(__file__).resolve().parents[3] / "datasets" / "digits01"
JUNK = ["", " ", "\t", "-", "--", "x" * 300, "ü∂ƒ", "../..", "/", "\\", "%s%n", "'", "\"", "null",
        "NaN", "1e999", "-0", "0x1f", "1_000", "１２", "\u202e", "a=b=c", "=", ","]


class Bench:
    """The place every case runs in: a working folder, an output folder, a temporary folder."""

    def __init__(self, root: Path, capfd, monkeypatch) -> None:
        self.root, self.capfd = root, capfd
        self.cwd, self.out, self.tmp = root / "cwd", root / "out", root / "tmp"
        for path in (self.cwd, self.out, self.tmp):
            path.mkdir()
        monkeypatch.chdir(self.cwd)
        monkeypatch.setattr(tempfile, "tempdir", str(self.tmp))
        self.cases = 0

    def invoke(self, argv: list[str], label: str) -> int:
        self.capfd.readouterr()
        try:
            main(argv)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        _, err = self.capfd.readouterr()
        where = f"seed {SEED}, {label}: tinyharness {' '.join(map(repr, argv))}"
        assert code in (1, 2, 3), f"{where}: exit {code}; stderr: {err!r}"
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) <= 1, f"{where}: {len(lines)} lines on stderr: {err[:2000]!r}"
        assert "Traceback" not in err, f"{where}: {err[:2000]!r}"
        assert code == 1 or lines, f"{where}: exit {code} without a message"
        self.cases += 1
        return code

    def finish(self) -> None:
        """Nothing outside the output folder; no run directory left running."""
        assert list(self.cwd.iterdir()) == [], f"seed {SEED}: files in the working folder"
        assert list(self.tmp.iterdir()) == [], f"seed {SEED}: temporary files left: {list(self.tmp.iterdir())[:5]}"
        for status in self.out.rglob("status.json"):
            state = json.loads(status.read_text())["state"]
            assert state != "running", f"seed {SEED}: {status.parent} left running"


@pytest.fixture
def bench(tmp_path, capfd, monkeypatch):
    b = Bench(tmp_path, capfd, monkeypatch)
    yield b
    b.finish()


# -- options ---------------------------------------------------------------------------------------
BAD_VALUES = {
    "--min-duration": ["nan", "inf", "-inf", "-1", "1e308", "86401", "ten", "1e"],
    "--min-queries": ["0", "-1", "1e10", str(2**70), "x", "134217729"],
    "--expected-qps": ["0", "-5", "nan", "inf", "1e10", "q"],
    "--seed": ["-1", str(2**64), "s", "1.5"],
    "--repeat": ["0", "-1", "101", "r"],
    "--query-timeout": ["0", "-1", "nan", "inf", "86401"],
    "--scenario": ["single_stream", "server", "SINGLE-STREAM"],
    "--mode": ["perf", "both", "ALL"],
    "--sut": ["no-such-sut", "../null", "null/", "NULL"],
    "--benchmark": ["nope", "../digits01", "digits01/..", "kws"],
}


def bad_option(rng: random.Random, paths: dict[str, Path]) -> list[str]:
    kind = rng.randrange(4)
    if kind == 0:
        option = rng.choice(sorted(BAD_VALUES))
        return [option, rng.choice(BAD_VALUES[option] + JUNK[:4])]
    if kind == 1:
        return ["--sut", "onnxruntime-cpu", "--sut-option",
                rng.choice(["threads=100000", "threads=nan", "threads=-1", "threads=0", "nokv",
                            "=1", "foo=bar", "threads=1e3", "lanes=9999", "threads="])]
    if kind == 2:
        return ["--model", str(rng.choice([paths["missing"], paths["folder"], paths["fifo"],
                                           Path("/dev/zero")]))]
    return ["--dataset", str(rng.choice([paths["missing"], paths["text"], paths["fifo"],
                                         paths["empty"], Path("/dev/null")]))]


def test_bad_options(bench):
    rng = random.Random(SEED)
    paths = {"missing": bench.root / "no" / "such", "folder": bench.root / "folder",
             "fifo": bench.root / "fifo", "text": bench.root / "text.csv", "empty": bench.root / "empty"}
    paths["folder"].mkdir()
    paths["empty"].mkdir()
    os.mkfifo(paths["fifo"])
    paths["text"].write_text("hello\n")
    for case in range(420):
        argv = ["run", "--sut", "null", "--mode", "accuracy", "--quiet", "--output", str(bench.out)]
        for _ in range(rng.randint(1, 2)):
            argv += bad_option(rng, paths)
        bench.invoke(argv, f"options case {case}")
    assert bench.cases == 420


# -- labels files ----------------------------------------------------------------------------------
def bad_labels(rng: random.Random, folder: Path) -> None:
    """A copy of digits01 whose y_labels.csv (or a file it names) is broken in one way."""
    shutil.copytree(DIGITS, folder)
    labels = folder / "y_labels.csv"
    rows = labels.read_text().splitlines()
    i = rng.randrange(len(rows))
    name = rows[i].split(",")[0]
    kind = rng.randrange(12)
    if kind == 0:
        labels.write_bytes(rng.randbytes(rng.randint(1, 4000)))
    elif kind == 1:
        rows[i] = rows[i].replace(",", "\x00,", 1)
    elif kind == 2:
        rows[i] = f"{name},10,{rng.choice(['10', '12', '50', '-1', str(10**26), 'x', '1.5', ''])}"
    elif kind == 3:
        rows[i] = rng.choice([name, f"{name},10", f"{name},10,3,4,5", ",,", ""])
    elif kind == 4:
        rows[i] = f"{name},10,{'7' * rng.randint(140_000, 200_000)}"
    elif kind == 5:
        (folder / name).unlink()
    elif kind == 6:
        (folder / name).unlink()
        os.mkfifo(folder / name)
    elif kind == 7:
        (folder / name).write_bytes(rng.randbytes(rng.choice([0, 1, 63, 65, 5000])))
    elif kind == 8:
        labels.write_text("")
    elif kind == 9:
        labels.write_bytes(b"\xff\xfe" + labels.read_bytes()[:50])
    elif kind == 10:
        rows[i] = f"../{rng.choice(['x.bin', name])},10,3"
    else:
        (folder / name).unlink()
        (folder / name).symlink_to("/dev/zero")
    if kind in (1, 2, 3, 4, 10):
        labels.write_text("\n".join(rows) + "\n")


@pytest.mark.skipif(not DIGITS.is_dir(), reason="the embedded digits01 dataset is missing")
def test_bad_labels_files(bench):
    rng = random.Random(SEED + 1)
    for case in range(180):
        folder = bench.root / "data" / str(case)
        bad_labels(rng, folder)
        bench.invoke(["run", "--sut", "null", "--mode", "accuracy", "--quiet", "--dataset",
                      str(folder), "--output", str(bench.out)], f"labels case {case}")
        shutil.rmtree(folder)


# -- summaries -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """One real run of the null SUT (both modes), whose summary the cases break."""
    out = tmp_path_factory.mktemp("good")
    with pytest.raises(SystemExit):
        main(["run", "--sut", "null", "--min-duration", "0.05", "--quiet", "--output", str(out)])
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def broken_summary(rng: random.Random, text: str) -> bytes:
    document = json.loads(text)
    kind = rng.randrange(8)
    if kind == 0:
        key = rng.choice(["valid", "latency_us", "benchmark", "settings", "schema_version", "sut",
                          "accuracy", "system", "invalid_reasons"])
        document[key] = rng.choice(["fast", [1, 2], {"a": 1}, 3.5, True, -7, "", [], {}])
        if key == "valid" and isinstance(document[key], bool):
            document[key] = "yes"
        return json.dumps(document).encode()
    if kind == 1:
        del document[rng.choice(["benchmark", "scenario", "settings", "system", "valid", "sut"])]
        return json.dumps(document).encode()
    if kind == 2:
        data = text.encode()
        return data[:rng.randrange(1, len(data) - 2)]
    if kind == 3:
        return rng.randbytes(rng.randint(0, 3000))
    if kind == 4:
        depth = rng.choice([100, 5000, 200_000])
        return ("[" * depth + "]" * depth).encode()
    if kind == 5:
        return text.replace('"count": ', '"count": ' + "9" * 5000 + "0 * ", 1).encode() \
            if '"count": ' in text else b"{" + b"9" * 5000
    if kind == 6:
        return text.encode().replace(b'"', b'\xff', 3)
    document["latency_us"] = {"count": "many", "p50": [], "p90": None}
    return json.dumps(document).encode()


def test_broken_summaries(bench, good_run):
    rng = random.Random(SEED + 2)
    text = (good_run / "summary.json").read_text()
    for case in range(200):
        run = bench.root / "runs" / str(case) / good_run.name
        shutil.copytree(good_run, run)
        (run / "summary.json").write_bytes(broken_summary(rng, text))
        command = rng.choice([["show", str(run)], ["compare", str(good_run), str(run)],
                              ["report", str(run), "--output", str(bench.out / f"r{case}.md")]])
        bench.invoke(command, f"summary case {case}")
        shutil.rmtree(run.parent)


# -- packages --------------------------------------------------------------------------------------
def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


def bad_package(rng: random.Random, where: Path, good: Path) -> Path:
    kind = rng.randrange(7)
    path = where / "pkg.tar.gz"
    if kind == 0:
        path.write_bytes(rng.randbytes(rng.randint(0, 5000)))
    elif kind == 1:
        path.write_bytes(gzip.compress(rng.randbytes(rng.randint(1, 5000))))
    elif kind == 2:
        names = ["/etc/passwd", "../up", "a/" * 400 + "deep", "x" * 300, "ok/summary.json",
                 "closed/org/results/sys/kws01/performance/run_1/../../x", "./."]
        path.write_bytes(tar_bytes([(rng.choice(names), rng.randbytes(rng.randint(0, 100)))
                                    for _ in range(rng.randint(1, 5))]))
    elif kind == 3:
        data = tar_bytes([("run/summary.json", (good / "summary.json").read_bytes()),
                          ("run/status.json", (good / "status.json").read_bytes())])
        path.write_bytes(data[:rng.randrange(10, len(data) - 1)])
    elif kind == 4:
        path = where / "folder"
        shutil.copytree(good, path / "closed" / "org" / "results" / good.name)
        os.mkfifo(path / "closed" / "org" / "results" / good.name / "stray")
    elif kind == 5:
        path = where / "fifo"
        os.mkfifo(path)
    else:
        path = where / "folder"
        path.mkdir()
        for _ in range(rng.randint(1, 6)):
            member = path / rng.choice(["a.json", "b", "summary.json", "manifest.json"])
            member.write_bytes(rng.randbytes(rng.randint(0, 300)))
    return path


def test_bad_packages(bench, good_run):
    rng = random.Random(SEED + 3)
    for case in range(170):
        where = bench.root / "pkgs" / str(case)
        where.mkdir(parents=True)
        package = bad_package(rng, where, good_run)
        bench.invoke(["check", str(package)], f"package case {case}")
        shutil.rmtree(where)


# -- serial byte streams ---------------------------------------------------------------------------
def garbage_peer(rng: random.Random, master: int, stop: threading.Event) -> None:
    """Answers whatever the host sends with random bytes, random lines and stray m-ready."""
    import select

    pieces = [b"m-ready\r\n", b"m-name-", b"\r\n", b"m-timestamp-", b"e-[", b"\x00", b"m-buffer-"]
    while not stop.is_set():
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 4096)
            except OSError:
                return
        reply = b"".join(rng.choice(pieces) if rng.random() < 0.5 else rng.randbytes(rng.randint(0, 40))
                         for _ in range(rng.randint(0, 6)))
        try:
            os.write(master, reply)
        except OSError:
            return


def test_garbage_on_the_serial_line(bench):
    pytest.importorskip("serial")
    rng = random.Random(SEED + 4)
    for case in range(40):
        master, slave = os.openpty()
        stop = threading.Event()
        peer = threading.Thread(target=garbage_peer, args=(random.Random(rng.random()), master, stop),
                                daemon=True)
        peer.start()
        try:
            bench.invoke(["dut", "probe", os.ttyname(slave), "--timeout", "0.2"], f"serial case {case}")
        finally:
            stop.set()
            peer.join(timeout=10)
            os.close(master)
            os.close(slave)

