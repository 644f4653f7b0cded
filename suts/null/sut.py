"""The null SUT: returns at once, so the harness can measure its own per-query overhead."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyharness.sut import SUT, SUTDescription, TensorSpec
from tinyharness.sut_config import SUTConfig

# An empty dtype means "whatever the dataset gives": the QSL then hands over float32 samples.
ANY = TensorSpec(name="any", shape=(), dtype="")


class NullSUT(SUT):
    name = "null"
    summary = "does no work; measures the harness's own per-query overhead"
    runtime = "tinyharness"
    model_formats = ("onnx", "tflite")
    config_class = SUTConfig

    def load(self, model: Path) -> None:
        self._model_format = model.suffix.lstrip(".")
        self._out = np.zeros(1, dtype=np.float32)

    def input_spec(self) -> TensorSpec:
        return ANY

    def output_spec(self) -> TensorSpec:
        return TensorSpec(name="none", shape=(1,), dtype="float32")

    def prepare(self, sample: np.ndarray) -> None:
        pass

    def infer(self) -> None:
        pass

    def output(self) -> np.ndarray:
        return self._out.copy()

    def describe(self) -> SUTDescription:
        from tinyharness import __version__

        return SUTDescription(name=self.name, runtime="none", runtime_version=__version__,
                              device="cpu", model_format=self._model_format, precision="none",
                              threads=None)

