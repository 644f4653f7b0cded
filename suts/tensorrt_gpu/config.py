"""The ``tensorrt-gpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import SUTConfig, choice, float_range, int_range, option

from .graph import PRECISIONS

MAX_WORKSPACE_MB = 1 << 20  # 1 TiB: more than any GPU has; TensorRT caps it at the free memory
MAX_BATCH = 4096


@dataclass(frozen=True)
class TensorRTConfig(SUTConfig):
    """No ``threads``: the GPU runs the model; the host thread only enqueues and waits."""

    precision: str | None = option(
        "fp32, fp16 (BuilderFlag.FP16: TensorRT may pick fp16 kernels; inputs and outputs stay "
        "as the model has them) or int8 (explicit quantization: only for a graph with symmetric "
        "Q/DQ nodes); default: int8 for a Q/DQ graph, else fp32", choice(*PRECISIONS))
    device: int = option("CUDA device index (default 0)", int_range(0, 63), 0)
    workspace_mb: int | None = option(
        "the builder's workspace memory pool limit in MiB (default: TensorRT's, the device's "
        "memory); part of the engine cache key", int_range(1, MAX_WORKSPACE_MB))
    offline_batch: int = option(
        "offline: the largest batch of one enqueue, the optimization profile's opt and max "
        "(default 256); a model with a fixed batch of 1 runs its samples one by one",
        int_range(1, MAX_BATCH), 256)
    build_timeout_s: float = option(
        "the longest an engine build may take before it is cancelled (default 900)",
        float_range(1, 86400), 900.0)
