"""An Edge Impulse Linux model (``.eim``, exported from Edge Impulse Studio) as a SUT.

The ``.eim`` is an executable that serves Edge Impulse's runner protocol on a Unix socket
(:mod:`.protocol`); the harness starts it in ``load``, talks to it, and stops it in ``close``. A
query is:

- ``prepare`` (untimed): the sample's features into the shared-memory segment the runner
  announced (else into a JSON request built now), and the request bytes with a new id;
- ``infer`` (timed on the host): send the request, read the reply up to its NUL, nothing parsed;
- ``output`` (untimed): the reply's ``classification`` scores as float32, in the benchmark's label
  order where the .eim has the same label names (Edge Impulse sorts labels), else in its own.

The input is the benchmark's float32 transform of a sample, flattened: Edge Impulse's raw-features
convention (``input_features_count`` floats). The runner's own figure for each query (``timing``:
dsp + classification + anomaly, whole milliseconds) is the runtime latency the single-stream pass
records beside the host's (``runtime_latency_us`` in summary.json); ``run_stats`` sums every
``timing`` field over the replies read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from tinyharness.errors import UsageError
from tinyharness.fileio import sha256_bounded
from tinyharness.sut import SUT, SUTDescription, SUTError, TensorSpec
from tinyharness.system import cpu_model

from .config import EimConfig
from .protocol import Hello, Runner

WARMUP = 10
CLASSIFIERS = ("classification",)  # model types whose result is one score per label


def check_executable(model: Path) -> None:
    """A regular file this user may execute, or a one-line UsageError with the fix."""
    try:
        info = os.stat(model)
    except OSError as exc:
        raise UsageError(f"model file {model}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"model file {model} is not a regular file; give the .eim file")
    if not os.access(model, os.X_OK):
        raise UsageError(f"{model} is not executable: chmod +x {model}")


def label_order(labels: tuple[str, ...], benchmark, name: str) -> tuple[tuple[str, ...], str]:
    """The labels in the order output() gives their scores, and where that order comes from."""
    if benchmark is None:
        return labels, "eim"
    wanted = tuple(benchmark.labels)
    if len(labels) != benchmark.output_count:
        raise UsageError(f"{name} has {len(labels)} labels ({', '.join(labels)}); benchmark "
                         f"{benchmark.id} needs {benchmark.output_count} outputs: not a model "
                         "for this benchmark")
    if sorted(labels) == sorted(wanted) and len(set(labels)) == len(labels):
        return wanted, "benchmark"
    return labels, "eim (its label names differ from the benchmark's)"


class EdgeImpulseEim(SUT):
    name = "eim"
    summary = "an Edge Impulse Linux .eim model, through its runner protocol on a Unix socket"
    # The client is tinyharness's own (standard library and numpy); the inference runs in the
    # .eim, which describe() names. Nothing to import, so nothing to check at registration.
    runtime = "tinyharness"
    extra = "edgeimpulse"
    model_formats = ("eim",)
    config_class = EimConfig
    reports_runtime_latency = True

    _runner: Runner | None = None

    def load(self, model: Path) -> None:
        model = Path(model)
        self._format = self.check_format(model)
        check_executable(model)
        try:
            self._start(model)
        except BaseException:  # the harness closes no SUT whose load failed: stop the .eim here
            self.close()
            raise

    def _start(self, model: Path) -> None:
        cfg = self.config
        self._runner = runner = Runner(model, cfg.start_timeout_s, cfg.timeout_s,
                                       cfg.max_reply_kib * 1024, cfg.transport == "auto")
        self._hello = hello = runner.start()
        if hello.model_type not in CLASSIFIERS or not hello.labels:
            raise UsageError(f"{model.name} is a {hello.model_type} model with "
                             f"{len(hello.labels)} labels: SUT {self.name!r} runs classification "
                             "models (one score per label)")
        self._labels, self._order_from = label_order(hello.labels, self.benchmark, model.name)
        self._in = TensorSpec("features", (1, hello.features), "float32")
        self._out = TensorSpec("scores", (1, len(self._labels)), "float32")
        self._sha256 = sha256_bounded(model, "model")
        # The runner's own bound methods: no frame of this class inside the timed call.
        self.prepare, self.infer = runner.prepare, runner.roundtrip
        warm = np.zeros(self._in.shape, dtype=np.float32)
        for _ in range(WARMUP):
            self.prepare(warm)
            self.infer()
        self.output()  # the reply's labels checked now, not first in the accuracy pass

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:  # replaced by the runner's in load()
        self._loaded().prepare(sample)

    def infer(self) -> None:  # replaced by the runner's in load()
        self._loaded().roundtrip()

    def output(self) -> np.ndarray:
        runner = self._loaded()
        result = runner.reply().get("result")
        scores = result.get("classification") if isinstance(result, dict) else None
        if not isinstance(scores, dict):
            raise SUTError(f"{runner.name}'s classify reply has no result.classification")
        try:
            values = [scores[label] for label in self._labels]
        except KeyError as exc:
            raise SUTError(f"{runner.name}'s classify reply has no score for label {exc.args[0]!r} "
                           f"(it has {', '.join(map(str, scores))})") from None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise SUTError(f"{runner.name}'s classify reply has a score that is not a number")
        return np.array(values, dtype=np.float32).reshape(self._out.shape)

    def runtime_latency_ns(self) -> int:
        return self._loaded().impulse_ns()

    def _loaded(self) -> Runner:
        if self._runner is None:
            raise SUTError(f"SUT {self.name!r} is not loaded (or was closed)")
        return self._runner

    def describe(self) -> SUTDescription:
        hello: Hello = self._hello
        project = hello.project
        version = project.get("deploy_version")
        runner = self._loaded()
        transport = runner.transport if runner.shm_refused is None else \
            f"{runner.transport} (shared memory not used: {runner.shm_refused})"
        extra: dict[str, Any] = {
            "project": {k: project.get(k) for k in ("id", "owner", "name", "deploy_version",
                                                    "impulse_id", "impulse_name") if k in project},
            "model_type": hello.model_type, "labels": list(hello.labels),
            "label_order": self._order_from, "input_features_count": hello.features,
            "sensor": hello.parameters.get("sensor"),
            "inferencing_engine": hello.engine if hello.engine is not None
            else hello.parameters.get("inferencing_engine"),
            "eim_sha256": self._sha256, "transport": transport,
            "runtime_latency": "the .eim's timing.dsp + timing.classification + timing.anomaly "
                               "(whole milliseconds, its own clock)"}
        return SUTDescription(name=self.name, runtime="edge-impulse (eim)",
                              runtime_version=f"deploy {version}" if version is not None
                              else "unknown", device=f"CPU ({cpu_model()})",
                              model_format=self._format, precision=self._in.dtype, threads=None,
                              extra=extra)

    def run_stats(self) -> dict[str, Any]:
        if self._runner is None:
            return {}
        t = self._runner.timings
        return {"replies_read": t.replies, "timing_ms_totals": dict(t.totals_ms),
                "transport": self._runner.transport}

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
        # back to the class's methods, which say the SUT is not loaded
        self.__dict__.pop("prepare", None)
        self.__dict__.pop("infer", None)
