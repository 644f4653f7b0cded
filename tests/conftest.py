"""Shared test fixtures: where the repository and the shared MLPerf Tiny data are, and the fake SUTs
of fakes.py registered for one test."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes import DeviceFake, FakeSUT, OfflineFake, registered

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
