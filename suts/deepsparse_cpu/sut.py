"""Neural Magic DeepSparse on the CPU: an ONNX model compiled by ``deepsparse.Engine`` for batch 1.

DeepSparse is end-of-life (June 2025): 1.9.0 on PyPI is an sdist that refuses to install, so
``deepsparse==1.8.0`` (cp38-cp311 manylinux wheels, x86-64 AVX2/AVX-512 and aarch64) is the last
usable release; it needs ``numpy<2``.

A query costs one ``np.copyto`` into the input array the engine reads (untimed), one
``execute_list_out`` (timed: the engine's pybind call; DeepSparse has no API that writes into a
caller's output buffer, so the call allocates its outputs) and one copy of the output (untimed).

What DeepSparse runs itself is recorded, because it is often nothing: the engine hands every graph
node it does not support to the ONNX Runtime (1.15) bundled inside it. The MLPerf Tiny int8 QDQ
graphs (per-channel weight scales, int32 bias) get ``fraction_of_supported_ops`` 0.0
("non-scalar or non-uniform scales"): DeepSparse quantizes per tensor only.

Offline runs parallel lanes on one multi-stream engine, never a batched engine: compiling the
digits01 model for any batch above 1 ends the process from native code (an assertion in
``planner.hpp``, exit status 1), which no ``except`` can catch.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.settings import Scenario
from tinyharness.sut import SUT, SUTDescription, TensorSpec, issue_in_lanes, offline_rate
from tinyharness.suts.onnxruntime_cpu.sut import batch1_shape, qdq_params
from tinyharness.system import cpu_model

from .config import DeepSparseConfig

WARMUP = 10


def engine_error(exc: BaseException) -> str:
    """DeepSparse's compile error in a line: without its "NM: error:" prefix and the C++ source
    location and check that precede the reason ("... status.IsOK() was false. <reason>")."""
    line = first_line(exc).removeprefix("NM: error: ")
    return line.rsplit(" was false. ", 1)[-1]


def graph_dtypes(path: Path) -> dict[str, str]:
    """The numpy dtype name of every graph input and output of an ONNX file, by tensor name
    (DeepSparse reports shapes only). ``onnx`` is a dependency of deepsparse."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(path), load_external_data=False).graph
    return {v.name: np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).name
            for v in (*graph.input, *graph.output)}


def runs_on(fraction: float) -> str:
    """Who computes the graph, from the engine's fraction_of_supported_ops."""
    if fraction >= 1.0:
        return "DeepSparse"
    if fraction <= 0.0:
        return "ONNX Runtime bundled in DeepSparse (no node supported by DeepSparse)"
    return "DeepSparse with an ONNX Runtime fallback for the unsupported nodes"


class DeepSparseCPU(SUT):
    name = "deepsparse-cpu"
    summary = "Neural Magic DeepSparse 1.8 (end-of-life) engine, ONNX models, batch 1"
    runtime = "deepsparse"
    extra = "deepsparse"
    model_formats = ("onnx",)
    config_class = DeepSparseConfig

    _engine = None

    def load(self, model: Path) -> None:
        model = Path(model)
        self._format = self.check_format(model)
        # Before the import: sparsezoo otherwise looks up the machine's country and posts usage
        # events from a thread whose request has no timeout. A benchmark must not phone home.
        os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
        try:
            import deepsparse
        except ImportError:
            raise self.missing_runtime() from None
        self._version = deepsparse.__version__
        self._threads = self.threads()
        self._lanes = self._offline_lanes()
        try:
            self._engine = deepsparse.Engine(
                str(model), batch_size=1, num_cores=self._threads, num_streams=self._lanes,
                scheduler="multi_stream" if self._lanes > 1 else "single_stream")
        except Exception as exc:  # unreadable file, unsupported graph: the user's input
            raise UsageError(f"cannot load {model}: deepsparse: {engine_error(exc)}") from None
        engine = self._engine
        if len(engine.input_names) != 1 or len(engine.output_names) != 1:
            raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one output, "
                             f"the model has {len(engine.input_names)} and "
                             f"{len(engine.output_names)}")
        dtypes = graph_dtypes(model)
        self._quant_params: dict[str, str] = {}  # where an integer tensor's scale came from
        in_name, out_name = engine.input_names[0], engine.output_names[0]
        self._in = self._spec(model, in_name, dtypes[in_name], engine.input_shapes[0], True)
        self._execute = engine._eng_net.execute_list_out  # the pybind call: no wrapper frame
        self._lane_inputs = [[np.zeros(self._in.shape, dtype=self._in.dtype)]
                             for _ in range(self._lanes)]
        self._inputs = self._lane_inputs[0]  # the list execute() reads: prepare() fills it
        self._in_buf = self._inputs[0]
        self._outputs = self._execute(self._inputs)
        # The engine leaves an output's dims unknown where ONNX Runtime runs it: take the result's.
        shape = engine.output_shapes[0] or self._outputs[0].shape
        self._out = self._spec(model, out_name, dtypes[out_name], shape, False)
        for _ in range(WARMUP):
            for inputs in self._lane_inputs:
                self._execute(inputs)
        self._offline_rates: dict[str, float] = {}
        if self._lanes > 1 and not self.config.lanes:  # untimed: keep the lanes only where faster
            zeros = np.zeros(self._in.shape, dtype=self._in.dtype)
            sequential = super().issue_offline
            self._offline_rates = {"lanes": round(offline_rate(self._issue_lanes, [zeros])),
                                   "sequential": round(offline_rate(sequential, [zeros]))}
            if self._offline_rates["sequential"] > self._offline_rates["lanes"]:
                self._lanes = 1

    def _offline_lanes(self) -> int:
        """Engine streams: 1 for single-stream; offline the option, else one per thread. DeepSparse
        runs at most one stream per core (it caps more with a warning): more is a UsageError."""
        if self.scenario is not Scenario.OFFLINE:
            return 1
        lanes = self.config.lanes or self._threads
        if lanes > self._threads:
            raise UsageError(f"--sut-option lanes={lanes} exceeds threads={self._threads}: "
                             "DeepSparse runs at most one stream per core; raise threads or "
                             "lower lanes")
        return lanes

    def _spec(self, model: Path, name: str, dtype: str, dims, is_input: bool) -> TensorSpec:
        scale, zero = 0.0, 0
        if dtype in ("int8", "uint8", "int16", "uint16"):
            found = qdq_params(model, name, is_input)
            self._quant_params[name] = "graph Q/DQ node" if found else "unknown, scale 0.0"
            scale, zero = found or (0.0, 0)
        return TensorSpec(name, batch1_shape(name, list(dims)), dtype, scale, zero)

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        if self._lanes == 1:
            return super().issue_offline(samples, completions)
        self._issue_lanes(samples, completions)

    def _issue_lanes(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        # The engine releases the GIL while it runs: one Python thread per stream overlaps.
        issue_in_lanes([(inputs[0], functools.partial(self._execute, inputs))
                        for inputs in self._lane_inputs], samples, completions)

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self._in_buf, sample)

    def infer(self) -> None:
        self._outputs = self._execute(self._inputs)

    def output(self) -> np.ndarray:
        return self._outputs[0].copy()

    def describe(self) -> SUTDescription:
        engine = self._engine
        fraction = float(engine.fraction_of_supported_ops)
        extra = {"api": "deepsparse.Engine, execute_list_out", "num_cores": engine.num_cores,
                 "num_streams": engine.num_streams, "scheduler": engine.scheduler.value,
                 "fraction_of_supported_ops": fraction, "runs_on": runs_on(fraction),
                 "cpu_avx_type": engine.cpu_avx_type, "cpu_vnni": bool(engine.cpu_vnni),
                 "offline_lanes": self._lanes, "offline_rates_at_load": self._offline_rates,
                 "analytics": "off" if os.environ.get("NM_DISABLE_ANALYTICS") else "on"}
        if self._quant_params:
            extra["quantization_params"] = dict(self._quant_params)
        return SUTDescription(name=self.name, runtime=self.runtime, runtime_version=self._version,
                              device=f"CPU ({cpu_model()})", model_format=self._format,
                              precision=self._in.dtype, threads=self._threads, extra=extra)

    def close(self) -> None:
        self._outputs, self._inputs, self._lane_inputs = [], [], []
        self._execute = self._engine = None
