"""The eligibility rule for serial runs whose uploads were not verified (defect 2): a run made with
``--sut-option verify=0`` (recorded in the run's SUT configuration) cannot stand in the closed
division; the open division, a verified run and a run of another SUT are not affected.

Works on copies of the schema-1 serial fixture, changed to carry a schema-2 SUT configuration."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from test_package import SERIAL_RUN, SUBMITTER
from fakes import filled_system
from tinyharness.errors import UsageError
from tinyharness.results.read import read_summary
from tinyharness.results.summary import RunSummary
from tinyharness.submission import archive, eligibility, system_json
from tinyharness.submission.check import check_package
from tinyharness.submission.package import build

SYSTEM = "dut-board"
EMBEDDED = f"closed/{SUBMITTER}/tinyharness/{SYSTEM}/kws/{SERIAL_RUN.name}"
CONFIG = {"port": "/dev/pts/0", "baud": None, "timeout": 5.0, "infer_timeout": 30.0, "chunk": 31,
          "retries": 3}


def serial(verify: bool | None, sut: str = "serial") -> RunSummary:
    summary = read_summary(SERIAL_RUN)
    config = None if verify is None else {**CONFIG, "verify": verify}
    return dataclasses.replace(summary, sut=sut,
                               settings=dataclasses.replace(summary.settings, sut_config=config))


def test_an_unverified_serial_run_is_refused_in_the_closed_division_only():
    found = eligibility.problems(serial(verify=False), "closed")
    assert found == [("closed-unverified", "the serial run did not verify its sample uploads "
                      "(--sut-option verify=0); the closed division requires each upload read back "
                      "from the device (verify=1, the default)")]
    assert eligibility.problems(serial(verify=False), "open") == []


def test_verified_runs_other_suts_and_unrecorded_configs_pass():
    assert eligibility.problems(serial(verify=True), "closed") == []
    # schema 1 recorded no parsed SUT configuration: nothing says verify=0 was chosen
    assert eligibility.problems(serial(verify=None), "closed") == []
    # another SUT's option of the same name means something else
    other = serial(verify=False, sut="tflite-cpu")
    assert "closed-unverified" not in [rule for rule, _ in eligibility.problems(other, "closed")]


def unverified_copy(tmp_path: Path) -> Path:
    run = tmp_path / SERIAL_RUN.name
    shutil.copytree(SERIAL_RUN, run)
    path = run / "summary.json"
    document = json.loads(path.read_text())
    document["settings"]["sut_config"] = {**CONFIG, "verify": False}
    path.write_text(json.dumps(document, indent=1))
    return run


def system_file(folder: Path) -> Path:
    path = folder / f"{SYSTEM}.json"
    path.write_bytes(system_json.render(filled_system(system_json.describe(sut="serial", submitter=SUBMITTER))))
    return path


def test_the_packager_refuses_it_for_the_closed_division(tmp_path):
    run = unverified_copy(tmp_path)
    with pytest.raises(UsageError, match=r"did not verify its sample uploads \(--sut-option verify=0\)"):
        build([run], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "closed")
    build([run], SUBMITTER, "open", [(None, system_file(tmp_path))], tmp_path / "open")


def test_the_checker_reports_an_embedded_unverified_run(tmp_path):
    package = build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))],
                    tmp_path / "package")
    assert check_package(package) == []
    path = package / EMBEDDED / "summary.json"
    document = json.loads(path.read_text())
    document["settings"]["sut_config"] = {**CONFIG, "verify": False}
    path.write_text(json.dumps(document, indent=1))
    archive.write_manifest(package)
    found = check_package(package)
    assert [(v.path, v.rule) for v in found] == [(f"{EMBEDDED}/summary.json", "closed-unverified")]
