"""Accuracy pass: every sample of the dataset once, outputs kept, the metric computed and checked
against the benchmark's quality target, and the further quality metrics (:mod:`..metrics`)
computed over the same outputs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .. import scoring
from ..errors import RunFailed, first_line
from ..logs import json_safe
from ..metrics.base import ANOMALY, Metric, MetricValue, kind_of
from ..qsl import QSL
from ..results import Measurement
from ..results.sections import Accuracy, MetricResult, Tensor
from ..scoring import window_score
from ..sut import SUT, TensorSpec, Timing
from .base import Context, Pass


@dataclass(frozen=True)
class AccuracyRun:
    indices: np.ndarray  # QSL index of each response, in issue order
    outputs: np.ndarray  # raw outputs, one row per response, in the SUT's output dtype
    labels: np.ndarray
    groups: np.ndarray  # the label row (file) of each response
    scores: np.ndarray | None = None  # AD: per-window reconstruction error


def spec_text(spec: TensorSpec) -> str:
    """A tensor spec as messages show it: ``float32[1, 12]``."""
    return f"{spec.dtype or 'any'}[{', '.join(str(d) for d in spec.shape)}]"


class OutputCheck:
    """Every output of the accuracy pass against the SUT's declared output spec, untimed: numbers
    (integers or floats) of the spec's dtype, its shape up to batch-1 dimensions ([1, 12] and [12]
    hold the same 12 values, as the scoring reads them flat), all finite. A mismatch is RunFailed
    naming the sample, what the spec says and what came: a wrong output must never be scored.

    A spec without a dtype (and without a shape) declares nothing: the first output's dtype (and
    shape) is then what every later one must match."""

    def __init__(self, spec: TensorSpec, sut: str) -> None:
        self.spec, self.sut = spec, sut
        self.dtype = self._dtype(spec.dtype) if spec.dtype else None
        if any(not isinstance(d, (int, np.integer)) or d < 1 for d in spec.shape):
            raise RunFailed(f"SUT {sut!r} declares output spec {spec_text(spec)}, with a dimension "
                            "that is not a positive integer: output_spec() must give a static shape")
        self._expect(spec.shape if (spec.dtype or spec.shape) else None)

    def _dtype(self, name: str) -> np.dtype:
        try:
            dtype = np.dtype(name)
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "iuf":
            raise RunFailed(f"SUT {self.sut!r} declares output dtype {name!r}, not a numpy integer "
                            "or float dtype: output_spec() must name one (e.g. 'float32', 'int8')")
        return dtype

    def _expect(self, shape: tuple[int, ...] | None) -> None:
        self.size = None if shape is None else math.prod(shape)
        self.core = None if shape is None else tuple(int(d) for d in shape if d != 1)

    def _fail(self, index: int, came: str) -> RunFailed:
        return RunFailed(f"SUT {self.sut!r} returned {came} for sample {index}; its output spec is "
                         f"{spec_text(self.spec)} (output() must return one output of that dtype "
                         "and shape, all finite)")

    def __call__(self, value: Any, index: int) -> np.ndarray:
        """The output for QSL sample ``index`` as a flat row, or RunFailed."""
        if value is None:
            raise self._fail(index, "None")
        try:
            out = np.asarray(value)
        except Exception:
            raise self._fail(index, f"a {type(value).__name__} that is not an array") from None
        if out.dtype.kind not in "iuf":
            came = "strings" if out.dtype.kind in "US" else f"{out.dtype} values (not numbers)"
            raise self._fail(index, came)
        if self.size is None:  # nothing declared: the first output sets the expectation
            self._expect(out.shape)
        if out.size != self.size:
            raise self._fail(index, f"{out.size} values")
        if tuple(d for d in out.shape if d != 1) != self.core:
            raise self._fail(index, f"an output of shape [{', '.join(map(str, out.shape))}]")
        if self.dtype is None:
            self.dtype = out.dtype
        if out.dtype != self.dtype:
            raise self._fail(index, f"{out.dtype} values")
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            flat = out.reshape(-1)
            bad = int(np.flatnonzero(~np.isfinite(flat))[0])
            raise self._fail(index, f"a non-finite value ({flat[bad]} at position {bad})")
        return out.reshape(-1)


def run_accuracy(sut: SUT, qsl: QSL, score_with: TensorSpec | None = None,
                 progress: Callable[[int], None] | None = None) -> AccuracyRun:
    """Issue each sample of the QSL once, in label-file order, keeping every output (checked
    against the SUT's output spec, copied into one array: a SUT that hands out its own buffer
    cannot make every row its last output).

    With ``score_with`` (the output spec), also score each response against its raw float input
    (AD), untimed, as the reference DUT does after its timed loop.
    """
    indices = np.arange(qsl.total_count)
    check = OutputCheck(sut.output_spec(), sut.name)
    outputs: np.ndarray | None = None
    scores = []
    for done, index in enumerate(indices, start=1):
        index = int(index)
        qsl.load([index])
        sut.prepare(qsl.sample(index))
        sut.infer()
        row = check(sut.output(), index)
        if outputs is None:  # the dtype and size are known once the first output is checked
            outputs = np.empty((len(indices), row.size), dtype=check.dtype)
        outputs[done - 1] = row
        if score_with is not None:
            raw = qsl.dataset.read(index)
            if raw.size != row.size:  # a reconstruction of another size cannot be scored
                raise RunFailed(f"SUT {sut.name!r} returned {row.size} values for window {index}, "
                                f"which has {raw.size}; an AD output must reconstruct its input "
                                f"window (output spec {spec_text(check.spec)})")
            scores.append(window_score(row, raw, score_with))
        qsl.unload()  # one sample at a time: AD's 48 608 windows need not sit in memory
        if progress is not None and done % 64 == 0:
            progress(done)
    entries = qsl.dataset.entries
    return AccuracyRun(indices, outputs, np.array([entries[i].label for i in indices]),
                       np.array([entries[i].group for i in indices]),
                       np.array(scores) if score_with is not None else None)


def score(run: AccuracyRun, metric: str, target: float, output: TensorSpec) -> Accuracy:
    """The accuracy section: top-1 percent, or ROC AUC over the files' mean window scores (None
    when the label file has one class only: the metric does not exist)."""
    files = int(run.groups.max()) + 1
    if metric == "top1":
        value = scoring.top1_percent(run.outputs, run.labels)
    elif metric == "auc":
        try:
            value = scoring.file_auc(run.labels, run.scores, run.groups)
        except ValueError:
            value = None
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return Accuracy(metric, None if value is None else round(value, 6), target,
                    value is not None and value >= target, len(run.indices), files, Tensor.of(output))


def _read_only(values: np.ndarray) -> np.ndarray:
    view = values.view()
    view.flags.writeable = False  # a metric must not change what the next one reads
    return view


def _lists(value: Any) -> Any:
    """numpy arrays (anywhere in a detail) as lists, for json_safe."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return [_lists(item) for item in value] if isinstance(value, (list, tuple)) else value


def _problem(got: Any) -> str | None:
    """Why a metric's result cannot be recorded as it is (None: it can)."""
    if not isinstance(got, MetricValue):
        return f"returned a {type(got).__name__}, not a MetricValue"
    value = got.value
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if value is not None and (not number or not np.isfinite(value)):
        return f"returned the value {value!r}, not a finite number or None"
    if not isinstance(got.detail, dict):
        return f"returned a detail of type {type(got.detail).__name__}, not a dict"
    if got.reason is not None and not isinstance(got.reason, str):
        return f"returned a reason of type {type(got.reason).__name__}, not a string"
    return None


def measure(metrics: Sequence[Metric], run: AccuracyRun, kind: str, spec: TensorSpec,
            classes: tuple[str, ...], warn: Callable[[str], None] = lambda _: None
            ) -> dict[str, MetricResult]:
    """Each metric over the pass, values rounded to 6 digits, details as JSON holds them. A metric
    that raises or returns something else than a finite MetricValue is recorded as undefined with
    why (and ``warn`` told): the outputs were measured, and the rule set's metric decides VALID."""
    outputs = _read_only(run.scores if kind == ANOMALY else run.outputs)
    labels, groups = _read_only(run.labels), _read_only(run.groups)
    out = {}
    for metric in metrics:
        try:
            got = metric.compute(outputs, labels, spec=spec, groups=groups, classes=tuple(classes))
            problem = _problem(got)
        except Exception as exc:  # a plugin's bug must not cost the measured run
            got, problem = None, f"raised {type(exc).__name__}: {first_line(exc)}"
        if problem is not None:
            warn(f"metric {metric.name!r} {problem}")
            out[metric.name] = MetricResult(None, metric.unit, metric.higher_is_better, problem)
            continue
        detail, _ = json_safe(_lists(got.detail), metric.name)  # numpy to numbers, NaN to null
        value = None if got.value is None else round(float(got.value), 6)
        out[metric.name] = MetricResult(value, metric.unit, metric.higher_is_better,
                                        got.reason if value is None else None, detail)
    return out


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
    """The accuracy pass; ``metrics``: what it reports beside the rule set's metric (None: the
    defaults of the benchmark's kind, :func:`tinyharness.metrics.select.resolve`)."""

    name = "accuracy"

    def __init__(self, context: Context, metrics: Sequence[Metric] | None = None) -> None:
        super().__init__(context)
        self.metrics = metrics

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
        if self.metrics is None:
            from ..metrics.select import resolve

            self.metrics = resolve(bench)
        values = measure(self.metrics, run, kind_of(bench), sut.output_spec(), bench.labels,
                         lambda message: ctx.event("metric_warning", message))
        accuracy = dataclasses.replace(accuracy, metrics=values)
        ctx.event("accuracy_result", dataclasses.asdict(accuracy))
        return Measurement(accuracy=accuracy, reasons=accuracy.reasons(),
                           accuracy_log=accuracy_log(run, qsl))
