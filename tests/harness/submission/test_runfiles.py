"""Hostile files in a run folder (defects 15 and 16): deep or huge-integer JSON, FIFOs, links to
devices, a .npy header that lies. ``check`` reports each as a violation at that file and carries
on; ``package`` refuses the run in one line. Nothing blocks, recurses without bound or reads
without a limit.

Works on the schema-1 serial fixture packaged into a folder (no benchmark run).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_package import FIXTURES, SERIAL_RUN, SUBMITTER, cli
from test_schema1 import EMBEDDED, MODEL, system_file
from tinyharness.submission import archive
from tinyharness.submission.check import check_package
from tinyharness.submission.package import build

DIGITS = FIXTURES / "20261201-224010_digits01_onnxruntime-cpu_single-stream"
DEEP = "[" * 200_000 + "]" * 200_000
HUGE_INT = '{"files": ' + "7" * 5000 + "}"


@pytest.fixture
def packaged(tmp_path) -> Path:
    return build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "package")


def violations_at(root: Path, rel: str) -> list[str]:
    found = check_package(root)
    return [f"{v.rule}: {v.message}" for v in found if v.path == rel]


@pytest.mark.parametrize("rel", [
    "manifest.json", f"closed/{SUBMITTER}/systems/dut-board.json", f"{MODEL}/accuracy/results.json",
    f"{EMBEDDED}/summary.json", f"{EMBEDDED}/status.json", f"{EMBEDDED}/accuracy.json"])
@pytest.mark.parametrize("content, says", [(DEEP, "JSON nested too deeply (limit 64)"),
                                           (HUGE_INT, "malformed JSON: Exceeds the limit")])
def test_hostile_json_anywhere_in_a_package_is_a_violation(packaged, rel, content, says):
    (packaged / rel).write_text(content)
    if rel != "manifest.json":
        archive.write_manifest(packaged)
    found = violations_at(packaged, rel)
    assert any(says in line for line in found), found


def test_a_hostile_detail_line_is_a_violation_at_its_line(packaged):
    with open(packaged / EMBEDDED / "detail.txt", "a") as handle:
        handle.write(":::MLLOG " + DEEP + "\n")
    archive.write_manifest(packaged)
    lines = (packaged / EMBEDDED / "detail.txt").read_text().count("\n")
    assert violations_at(packaged, f"{EMBEDDED}/detail.txt:{lines}") == [
        "run-dir: JSON nested too deeply (limit 64)"]


def test_the_cli_reports_hostile_json_and_exits_1(packaged):
    (packaged / f"{EMBEDDED}/summary.json").write_text(DEEP)
    archive.write_manifest(packaged)
    code, out, err = cli("check", str(packaged))
    assert code == 1 and "Traceback" not in err
    assert f"{EMBEDDED}/summary.json: run-dir: JSON nested too deeply (limit 64)" in out.splitlines()


def check_in_child(path: Path, tmp: Path) -> subprocess.CompletedProcess:
    """A check that blocks on a FIFO would hang this test run: it runs in a child process with a
    generous limit (a guard against a hang, not a time bound)."""
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", "check", str(path)], capture_output=True,
                          text=True, env=dict(os.environ, TMPDIR=str(tmp)), timeout=300)


@pytest.mark.parametrize("name", ["accuracy.json", "detail.txt", "status.json", "summary.json"])
def test_a_fifo_in_an_embedded_run_is_reported_not_opened(packaged, tmp_path, name):
    (packaged / EMBEDDED / name).unlink()
    os.mkfifo(packaged / EMBEDDED / name)
    done = check_in_child(packaged, tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert f"{EMBEDDED}/{name}: hygiene: not a regular file (a device, FIFO or socket)" in lines
    assert f"{EMBEDDED}/{name}: run-dir: a FIFO, not a regular file; not read" in lines


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_link_to_a_fifo_or_device_in_an_embedded_run_is_reported_not_followed(packaged, tmp_path, target):
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    (packaged / EMBEDDED / "detail.txt").unlink()
    os.symlink(target, packaged / EMBEDDED / "detail.txt")
    done = check_in_child(packaged, tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert f"{EMBEDDED}/detail.txt: hygiene: symbolic link" in lines
    assert f"{EMBEDDED}/detail.txt: run-dir: a symbolic link, not a regular file; not read" in lines


def npy(header: dict, body: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + body


@pytest.mark.parametrize("data, says", [
    (npy({"descr": "<i8", "fortran_order": False, "shape": (10 ** 12,)}, b"\0" * 64),
     "the header declares 1,000,000,000,000 values but the file holds 64 bytes"),
    (npy({"descr": "|O", "fortran_order": False, "shape": (3,)}, b"\0" * 24), "object values"),
    (npy({"descr": "<i8", "fortran_order": False, "shape": (2, 2)}, b"\0" * 32), "of shape (2, 2)"),
    (b"PK\x03\x04 not an npy file at all", "not a readable .npy file"),
])
def test_a_latencies_file_whose_header_lies_is_refused_before_allocation(tmp_path, data, says):
    from tinyharness.submission.runfiles import read_run

    run = Path(shutil.copytree(DIGITS, tmp_path / "run"))
    (run / "latencies.npy").write_bytes(data)
    problems = read_run(run).problems
    assert len(problems) == 1 and problems[0].startswith("latencies.npy: ") and says in problems[0], problems


def test_package_refuses_a_run_with_a_fifo_in_one_line(tmp_path):
    run = Path(shutil.copytree(SERIAL_RUN, tmp_path / "run"))
    (run / "summary.txt").unlink()
    os.mkfifo(run / "summary.txt")
    system = system_file(tmp_path)
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "package", str(run), "--submitter",
                           SUBMITTER, "--division", "closed", "--system", str(system), "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "tinyharness: error: run run: summary.txt: a FIFO, not a regular file; not read"
    assert not (tmp_path / "out").exists()


def test_package_refuses_hostile_json_in_a_run_or_a_system_file(tmp_path):
    run = Path(shutil.copytree(SERIAL_RUN, tmp_path / "run"))
    (run / "summary.json").write_text(DEEP)
    system = system_file(tmp_path)
    args = ["--submitter", SUBMITTER, "--division", "closed", "--output", str(tmp_path / "out")]
    code, _, err = cli("package", str(run), "--system", str(system), *args)
    assert code == 2 and err.strip() == "tinyharness: error: run run: summary.json: JSON nested too deeply (limit 64)"
    system.write_text(HUGE_INT)
    code, _, err = cli("package", str(SERIAL_RUN), "--system", str(system), *args)
    assert code == 2 and "\n" not in err.strip() and f"system description {system}: not readable JSON" in err
    assert not (tmp_path / "out").exists()
    assert json.loads((SERIAL_RUN / "status.json").read_text())["state"] == "done"  # the fixture untouched


def test_a_count_of_thousands_of_digits_in_results_txt_is_unparseable_not_a_crash(packaged):
    results = packaged / MODEL / "performance" / "results.txt"
    results.write_text(results.read_text().replace("# Inferences : 2910", "# Inferences : " + "9" * 5000, 1))
    archive.write_manifest(packaged)
    found = violations_at(packaged, f"{MODEL}/performance/results.txt")
    assert "results-txt: window 1: no parseable inferences line" in found
    assert "window-mismatch: the windows differ from the embedded run's summary.json" in found


def test_package_refuses_a_status_json_that_lists_files_outside_the_run(tmp_path):
    run = Path(shutil.copytree(SERIAL_RUN, tmp_path / "runs" / "run"))
    (tmp_path / "secret.txt").write_text("not for the package")
    status = json.loads((run / "status.json").read_text())
    status["files"].append("../../secret.txt")
    (run / "status.json").write_text(json.dumps(status))
    code, _, err = cli("package", str(run), "--submitter", SUBMITTER, "--division", "closed", "--system",
                       str(system_file(tmp_path)), "--output", str(tmp_path / "out"))
    assert code == 2 and err.strip() == ("tinyharness: error: run run: status.json lists '../../secret.txt', "
                                         "not a file of the run folder")
    assert sorted(os.listdir(tmp_path)) == ["dut-board.json", "runs", "secret.txt"]
