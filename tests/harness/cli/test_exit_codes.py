"""The exit codes scripts rely on (errors.py): 0 success or VALID, 1 INVALID (or violations), 2 usage
or input error, 3 run failed, 130 interrupted — for every command, through ``main()``."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from tinyharness.cli import main
from tinyharness.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_USAGE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"
SERIAL_RUN = next(FIXTURES.glob("*_kws01_serial_*"))
# the same run with the firmware's model file named: the closed division takes only such a run
NAMED_SERIAL_RUN = next((FIXTURES.parent / "device_model").glob("*_kws01_serial_*"))


def exit_code(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
        raise SystemExit(0)  # a command that returns normally succeeded
    return done.value.code or 0


def test_codes_are_the_documented_ones():
    assert (EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)


def test_run(fake_suts, tmp_path):
    out = ["--output", str(tmp_path), "--quiet"]
    assert exit_code("run", "--sut", "onnxruntime-cpu", "--mode", "accuracy", *out) == EXIT_OK
    assert exit_code("run", "--sut", "fake", "--mode", "accuracy", *out) == EXIT_INVALID  # 10 % top-1
    assert exit_code("run", "--sut", "no-such-sut", *out) == EXIT_USAGE
    assert exit_code("run", "--sut", "fake", "--repeat", "0", *out) == EXIT_USAGE
    assert exit_code("run", "--sut", "fake", "--sut-option", "fail_after=3", *out) == EXIT_FAILED
    assert exit_code("run", "--sut", "fake", "--sut-option", "fail_after=3",
                     "--sut-option", "interrupt=1", *out) == EXIT_INTERRUPTED
    states = sorted(p.name.split("_", 1)[1] for p in tmp_path.iterdir())
    assert len(states) == 4  # the four runs that started each left a directory


def test_listings_and_show():
    assert exit_code("suts", "--json") == EXIT_OK
    assert exit_code("benchmarks", "--json") == EXIT_OK
    assert exit_code("show", str(SERIAL_RUN)) == EXIT_OK
    assert exit_code("show", "/no/such/run") == EXIT_USAGE
    assert exit_code("--no-such-option") == EXIT_USAGE


def test_check_package_and_system(tmp_path):
    assert exit_code("check", "/no/such/package") == EXIT_USAGE
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "stray.txt").write_text("x")
    assert exit_code("check", str(broken)) == EXIT_INVALID  # violations found
    system = tmp_path / "board.json"
    assert exit_code("system", "init", "--output", str(system)) == EXIT_OK
    assert exit_code("system", "init", "--output", str(system)) == EXIT_USAGE  # exists, no --force
    from fakes import filled_system
    from tinyharness.submission import system_json

    system.write_bytes(system_json.render(filled_system(json.loads(system.read_text()))))  # by hand
    assert exit_code("package", str(NAMED_SERIAL_RUN), "--submitter", "org", "--division", "closed",
                     "--system", str(system), "--output", str(tmp_path / "pkg")) == EXIT_OK
    assert exit_code("check", str(tmp_path / "pkg")) == EXIT_OK
    assert exit_code("package", str(NAMED_SERIAL_RUN), "--submitter", "bad name", "--division", "closed",
                     "--system", str(system), "--output", str(tmp_path / "pkg2")) == EXIT_USAGE


def test_report_models_and_dut(tmp_path):
    assert exit_code("report", str(SERIAL_RUN), "--output", str(tmp_path / "r.html")) == EXIT_OK
    assert exit_code("report", str(tmp_path / "nothing-here")) == EXIT_USAGE
    assert exit_code("models", "list", "--json") == EXIT_OK
    assert exit_code("models", "fetch", "no-such-benchmark") == EXIT_USAGE
    assert exit_code("dut", "probe", "/dev/no-such-tty") == EXIT_USAGE
