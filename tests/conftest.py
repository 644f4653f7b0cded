"""Shared test fixtures: where the repository and the shared MLPerf Tiny data are, and the fake SUTs
of fakes.py registered for one test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from fakes import DeviceFake, FakeSUT, OfflineFake, registered

# `tinyharness run` forks a supervised child; this process holds runtime thread pools (TBB,
# OpenMP) that a fork does not carry, so in-process tests run in-process. tests/harness/
# test_supervisor.py starts fresh interpreters, where the supervisor is on as for users.
os.environ["TINYHARNESS_SUPERVISE"] = "0"
# Every run is indexed in the results database: the tests' runs go to a throwaway one, never the
# user's (tests of the database pass their own --db).
os.environ["TINYHARNESS_DB"] = str(Path(tempfile.mkdtemp(prefix="tinyharness-tests-")) / "results.db")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "mlperf_tiny"


@pytest.fixture
def shared_data() -> Path:
    """../shared/mlperf_tiny, or a skip that says why."""
    if not SHARED.is_dir():
        pytest.skip(f"MLPerf Tiny reference data not found at {SHARED}")
    return SHARED


@pytest.fixture
def fake_suts():
    """``fake``, ``fake-offline`` and ``fake-device`` (tests/fakes.py) in the registry, for one test."""
    with registered(FakeSUT, OfflineFake, DeviceFake):
        yield
