"""Accuracy pass: every sample of the accuracy set once, outputs kept, the metric computed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..qsl import QSL
from ..scoring import window_score
from ..sut import SUT, TensorSpec


@dataclass(frozen=True)
class AccuracyRun:
    indices: np.ndarray  # QSL index of each response, in issue order
    outputs: np.ndarray  # raw outputs, one row per response, in the SUT's output dtype
    labels: np.ndarray
    groups: np.ndarray  # the label row (file) of each response
    scores: np.ndarray | None = None  # AD: per-window reconstruction error


def run_accuracy(sut: SUT, qsl: QSL, score_with: TensorSpec | None = None,
                 progress: Callable[[int], None] | None = None) -> AccuracyRun:
    """Issue each sample of the QSL once, in label-file order, keeping every output.

    With ``score_with`` (the output spec), also score each response against its raw float input
    (AD), untimed, as the reference DUT does after its timed loop.
    """
    indices = np.arange(qsl.total_count)
    rows, scores = [], []
    for done, index in enumerate(indices, start=1):
        index = int(index)
        qsl.load([index])
        sut.prepare(qsl.sample(index))
        sut.infer()
        rows.append(np.asarray(sut.output()).reshape(-1))
        if score_with is not None:
            scores.append(window_score(rows[-1], qsl.dataset.read(index), score_with))
        qsl.unload()  # one sample at a time: AD's 48 608 windows need not sit in memory
        if progress is not None and done % 64 == 0:
            progress(done)
    entries = qsl.dataset.entries
    return AccuracyRun(indices, np.stack(rows), np.array([entries[i].label for i in indices]),
                       np.array([entries[i].group for i in indices]),
                       np.array(scores) if score_with is not None else None)
