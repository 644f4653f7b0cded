"""Fixtures for the firmware tests: skips when the ARM toolchain or QEMU is absent, the stub model
(stub_model.c, a predictable stand-in for a compiled model) and a session-scoped stub firmware."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STUB_SOURCE = HERE / "stub_model.c"


@dataclass(frozen=True)
class StubModel:
    """What build_firmware accepts in place of a compiled .tflite."""

    sources: tuple[Path, ...] = (STUB_SOURCE,)
    include_dirs: tuple[Path, ...] = ()


def need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not found (Debian package {package})")


@pytest.fixture(scope="session")
def toolchain() -> None:
    """Skips unless arm-none-eabi-gcc is installed."""
    need("arm-none-eabi-gcc", "gcc-arm-none-eabi")


@pytest.fixture(scope="session")
def qemu() -> None:
    """Skips unless qemu-system-arm is installed."""
    need("qemu-system-arm", "qemu-system-arm")


@pytest.fixture(scope="session")
def stub_model() -> StubModel:
    return StubModel()


@pytest.fixture(scope="session")
def firmware_cache(tmp_path_factory) -> Path:
    """A firmware cache shared by the session's tests (never the user's)."""
    return tmp_path_factory.mktemp("firmware-cache")


@pytest.fixture(scope="session")
def stub_firmware(toolchain, stub_model, firmware_cache):
    """The stub-model kws01 firmware for mps2-an386, built once per session."""
    from tinyharness.firmware.build import build_firmware

    return build_firmware("kws01", "mps2-an386", stub_model, cache_dir=firmware_cache)
