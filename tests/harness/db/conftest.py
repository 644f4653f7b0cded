"""Real run directories for the results database's tests, made once per test session by
``tinyharness run`` (in-process, as tests/harness/cli/test_exit_codes.py runs it): the null SUT on
the embedded digits01 (a second or two each), and the fake SUT of tests/fakes.py made to fail and to
be interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import FakeSUT, registered
from tinyharness.cli import main
from tinyharness.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID


def tinyharness_run(output: Path, *args: str) -> tuple[int, Path]:
    """(exit code, the run directory) of one ``tinyharness run`` into ``output``."""
    with pytest.raises(SystemExit) as done:
        main(["run", "--output", str(output), "--quiet", "--db", str(output / "throwaway.db"), *args])
    (run_dir,) = [p for p in output.iterdir() if p.is_dir()]
    return done.value.code, run_dir


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """name -> run directory: single-stream and offline null runs (INVALID: shortened), a failed
    and an interrupted fake run."""
    root = tmp_path_factory.mktemp("real_runs")
    made, codes = {}, {}
    short = ("--sut", "null", "--min-duration", "0.1")
    codes["single"], made["single"] = tinyharness_run(root / "single", *short)
    codes["offline"], made["offline"] = tinyharness_run(root / "offline", *short, "--scenario", "offline")
    with registered(FakeSUT):
        fail = ("--sut", "fake", "--mode", "accuracy", "--sut-option", "fail_after=3")
        codes["failed"], made["failed"] = tinyharness_run(root / "failed", *fail)
        codes["interrupted"], made["interrupted"] = tinyharness_run(
            root / "interrupted", *fail, "--sut-option", "interrupt=1")
    assert codes == {"single": EXIT_INVALID, "offline": EXIT_INVALID, "failed": EXIT_FAILED,
                     "interrupted": EXIT_INTERRUPTED}
    return made
