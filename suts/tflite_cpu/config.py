"""The ``tflite-cpu`` options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.sut_config import HostConfig, choice, option


@dataclass(frozen=True)
class TFLiteConfig(HostConfig):
    kernels: str = option("xnnpack (default: LiteRT's default delegate) or builtin (TFLite "
                          "reference-style kernels, closer to TFLite Micro)", choice("xnnpack", "builtin"),
                          "xnnpack")
