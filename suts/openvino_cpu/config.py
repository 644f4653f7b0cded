"""The ``openvino-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig, choice, option, thread_count

PRECISIONS = ("f32", "bf16", "f16")


@dataclass(frozen=True)
class OpenVINOConfig(HostConfig):
    precision: str = option("inference precision hint: f32 (default), bf16 or f16", choice(*PRECISIONS),
                            "f32")
    nstreams: int | None = option("offline: CPU streams (default: the THROUGHPUT hint's choice; at "
                                  "most 4 x the cores)", thread_count)
    nireq: int | None = option("offline: parallel infer requests, each on its own thread (default: "
                               "the compiled model's optimum; at most 4 x the cores)", thread_count)
