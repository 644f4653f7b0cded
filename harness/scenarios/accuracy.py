"""Accuracy pass: every sample of the dataset once, outputs kept, the metric computed and checked
against the benchmark's quality target."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import scoring
from ..qsl import QSL
from ..results import Measurement
from ..results.sections import Accuracy, Tensor
from ..scoring import window_score
from ..sut import SUT, TensorSpec, Timing
from .base import Pass


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


def score(run: AccuracyRun, metric: str, target: float, output: TensorSpec) -> Accuracy:
    """The accuracy section: top-1 percent, or ROC AUC over the files' mean window scores (None
    when the label file has one class only: the metric does not exist)."""
    files = int(run.groups.max()) + 1
    if metric == "top1":
        value = scoring.top1_percent(run.outputs, run.labels)
    elif metric == "auc":
        file_labels = np.zeros(files, dtype=int)
        file_labels[run.groups] = run.labels
        try:
            value = scoring.roc_auc(file_labels, scoring.group_means(run.scores, run.groups))
        except ValueError:
            value = None
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return Accuracy(metric, None if value is None else round(value, 6), target,
                    value is not None and value >= target, len(run.indices), files, Tensor.of(output))


def accuracy_log(run: AccuracyRun, qsl: QSL) -> list[dict[str, Any]]:
    """LoadGen's accuracy-log form (``seq_id``, ``qsl_idx``, little-endian upper-case hex ``data``)
    plus the file, its label, and the prediction (or AD's window score)."""
    little = run.outputs.astype(run.outputs.dtype.newbyteorder("<"), copy=False)
    log = [{"seq_id": seq, "qsl_idx": int(idx), "data": little[seq].tobytes().hex().upper(),
            "file": qsl.dataset.entries[int(idx)].file, "label": int(run.labels[seq])}
           for seq, idx in enumerate(run.indices)]
    if run.scores is not None:
        for entry, value in zip(log, run.scores):
            entry["score"] = float(value)
    else:
        for entry, prediction in zip(log, run.outputs.argmax(axis=1)):
            entry["prediction"] = int(prediction)
    return log


class AccuracyPass(Pass):
    name = "accuracy"

    def run(self, sut: SUT, qsl: QSL) -> Measurement:
        ctx, bench = self.ctx, self.ctx.benchmark
        ctx.progress.phase(self.name, qsl.total_count, unit="sample")
        ctx.event("generic_message", "Starting accuracy mode")
        auc, device = bench.metric == "auc", sut.timing is Timing.DEVICE
        run = run_accuracy(sut, qsl, sut.output_spec() if auc and not device else None,
                           progress=ctx.progress.update)
        if auc and device:  # the DUT computes the window's reconstruction error itself
            run = dataclasses.replace(run, scores=run.outputs[:, 0].astype(np.float64))
        ctx.progress.update(qsl.total_count)
        accuracy = score(run, bench.metric, bench.target, sut.output_spec())
        ctx.event("accuracy_result", dataclasses.asdict(accuracy))
        return Measurement(accuracy=accuracy, reasons=accuracy.reasons(),
                           accuracy_log=accuracy_log(run, qsl))
