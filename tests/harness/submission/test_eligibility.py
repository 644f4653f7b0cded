"""The eligibility rules for serial runs: a run whose uploads were not verified (defect 2, made with
``--sut-option verify=0``, recorded in the run's SUT configuration) cannot stand in the closed
division; the open division, a verified run and a run of another SUT are not affected. Nor can a
device run whose model is not identified as a reference model (issue 12 §4: no model file named
with ``--sut-option model_file=PATH``, or one whose sha256 is no reference model of the benchmark).

Works on copies of the serial fixtures (schema 1), changed to carry a schema-2 SUT configuration."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from test_package import SERIAL_RUN, SERIAL_RUN_UNNAMED, SUBMITTER
from fakes import filled_system
from tinyharness.errors import UsageError
from tinyharness.benchmark import get_benchmark
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


# -- the model on the device ---------------------------------------------------------------------
def with_model(**changes) -> RunSummary:
    summary = read_summary(SERIAL_RUN)
    return dataclasses.replace(summary, model=dataclasses.replace(summary.model, **changes))


def test_a_device_run_without_its_model_file_is_refused_in_the_closed_division_only():
    summary = read_summary(SERIAL_RUN_UNNAMED)
    assert summary.model.on_device and summary.model.sha256 is None
    assert eligibility.problems(summary, "closed") == [("closed-model", (
        "the model on the device is not identified (sha256 n/a); name the reference model file its "
        "firmware was built from (serial: --sut-option model_file=PATH) and run again: the closed "
        "division requires a reference model"))]
    assert eligibility.problems(summary, "open") == []


def test_a_device_model_counts_by_its_checksum_against_the_rule_set():
    kws = {entry.file: entry.sha256 for entry in get_benchmark("kws01").models}
    assert eligibility.problems(with_model(), "closed") == []  # kws_ref_model.tflite
    # any reference model of the benchmark, whatever the file's name
    assert eligibility.problems(with_model(path="/fw/my-build.tflite", reference=None,
                                           sha256=kws["kws_ref_model_float32.tflite"]), "closed") == []
    # the run's own 'reference' is not trusted: the checksum decides
    vww = get_benchmark("vww01").models[0].sha256
    for digest in ("0" * 64, vww):
        found = eligibility.problems(with_model(path="/fw/kws_ref_model.tflite", sha256=digest), "closed")
        assert found == [("closed-model", f"the device's model kws_ref_model.tflite (sha256 {digest[:16]}...) "
                          "is not one of the kws01 rule set's reference models; the closed division "
                          "requires one (flash a reference model and name its file)")]
        assert eligibility.problems(with_model(sha256=digest), "open") == []


def test_the_checker_reports_an_embedded_device_run_without_its_model(tmp_path):
    package = build([SERIAL_RUN], SUBMITTER, "closed", [(None, system_file(tmp_path))], tmp_path / "package")
    path = package / EMBEDDED / "summary.json"
    document = json.loads(path.read_text())
    document["model"] = {"path": "device:unspecified on /dev/pts/0", "sha256": None, "format": "device",
                         "size": None, "found_in": "device", "reference": None}
    path.write_text(json.dumps(document, indent=1))
    archive.write_manifest(package)
    found = check_package(package)
    assert [(v.path, v.rule) for v in found] == [(f"{EMBEDDED}/summary.json", "closed-model")]
    assert "--sut-option model_file=PATH" in found[0].message
