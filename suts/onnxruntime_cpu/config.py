"""The ``onnxruntime-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig, option, thread_count


@dataclass(frozen=True)
class OnnxRuntimeConfig(HostConfig):
    lanes: int | None = option("offline: parallel lanes, each a single-threaded run on its own IO "
                               "binding; 1 = one run with 'threads' intra-op threads (default: "
                               "measured at load, the faster of 'threads' lanes and one run; at "
                               "most 4 x the cores)", thread_count)
