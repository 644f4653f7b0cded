"""The ``executorch-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig


@dataclass(frozen=True)
class ExecuTorchConfig(HostConfig):
    """``threads``: the size of ExecuTorch's process-wide thread pool (XNNPACK's kernels)."""
