"""Accuracy pass: every sample of the accuracy set once, outputs kept, the metric computed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..qsl import QSL
from ..sut import SUT, TensorSpec


@dataclass(frozen=True)
class AccuracyRun:
    indices: np.ndarray  # QSL index of each response, in issue order
    outputs: np.ndarray  # raw outputs, one row per response, in the SUT's output dtype
    labels: np.ndarray

    def dequantized(self, spec: TensorSpec) -> np.ndarray:
        if spec.quantized:
            return (self.outputs.astype(np.float64) - spec.zero_point) * spec.scale
        return self.outputs.astype(np.float64)

    def top1_percent(self) -> float:
        # argmax is unchanged by the (monotonic) dequantization
        predictions = self.outputs.reshape(len(self.outputs), -1).argmax(axis=1)
        return float(np.mean(predictions == self.labels) * 100.0)


def run_accuracy(sut: SUT, qsl: QSL, progress: Callable[[int], None] | None = None) -> AccuracyRun:
    """Issue each sample of the QSL once, in label-file order, keeping every output."""
    indices = np.arange(qsl.total_count)
    rows = []
    for done, index in enumerate(indices, start=1):
        qsl.load([index])
        sut.prepare(qsl.sample(int(index)))
        sut.infer()
        rows.append(np.asarray(sut.output()).reshape(-1))
        if progress is not None and done % 64 == 0:
            progress(done)
    qsl.unload()
    labels = np.array([qsl.label(int(i)) for i in indices])
    return AccuracyRun(indices, np.stack(rows), labels)
