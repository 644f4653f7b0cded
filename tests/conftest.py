"""Shared test fixtures: where the repository and the shared MLPerf Tiny data are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "mlperf_tiny"


@pytest.fixture
def shared_data() -> Path:
    """../shared/mlperf_tiny, or a skip that says why."""
    if not SHARED.is_dir():
        pytest.skip(f"MLPerf Tiny reference data not found at {SHARED}")
    return SHARED
