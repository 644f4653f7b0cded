"""The ``deepsparse-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig, option, thread_count


@dataclass(frozen=True)
class DeepSparseConfig(HostConfig):
    """``threads`` is DeepSparse's ``num_cores``: the cores its engine runs on."""

    lanes: int | None = option("offline: parallel lanes, one engine stream each (DeepSparse's "
                               "multi-stream scheduler), at most 'threads'; 1 = one stream on "
                               "'threads' cores (default: measured at load, the faster of "
                               "'threads' lanes and one lane)", thread_count)
