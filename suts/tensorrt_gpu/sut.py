"""NVIDIA TensorRT 10 on a CUDA GPU: an engine built from the benchmark's ONNX model, cached on disk.

``load`` checks the graph against the precision (:mod:`.graph`, no GPU needed), then builds the
engine (:mod:`.builder`) or takes it from the cache (:mod:`.engine_cache`), and allocates once:
device input and output buffers, pinned host buffers, one non-blocking stream, two CUDA events.
A query is then:

- ``prepare`` (untimed): copy the sample into the pinned input buffer and on to the device;
- ``infer`` (timed by the harness, issue to completion): record an event, ``execute_async_v3``,
  record an event, synchronize the stream. The time between the two events is the GPU compute
  time (what ``trtexec`` reports as "GPU Compute Time"), reported as the runtime's own latency
  (``runtime_latency_ns``, recorded as ``runtime_latency_us`` beside the harness's latency);
- ``output`` (untimed): copy the output back to the pinned buffer and return a copy of it.

Offline: a model with a dynamic batch dimension gets an engine whose optimization profile allows
1 to ``offline_batch`` rows; the query runs in batches of that size, one after the other, each
host-to-device copy + enqueue + device-to-host copy + synchronize, and stamps the batch's samples
at its completion. A model with a fixed batch of 1 runs its samples one by one (the base class).
No CUDA graphs, no overlap of copies and compute between batches: simple, and said here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyharness.settings import Scenario
from tinyharness.sut import SUT, SUTDescription, SUTError, TensorSpec

from . import graph
from .builder import BuildRequest, build, check_version, make_logger
from .config import TensorRTConfig
from .engine_cache import EngineCache, KeyParts, cache_key
from .gpu import Buffers, import_cudart, open_device

WARMUP = 10
_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "int8": "int8"}


class TensorRTGPU(SUT):
    name = "tensorrt-gpu"
    summary = "NVIDIA TensorRT 10 engine from the ONNX model (cached), CUDA-event GPU time"
    runtime = "tensorrt"
    extra = "tensorrt"
    model_formats = ("onnx",)
    devices = ("gpu",)
    config_class = TensorRTConfig
    distributions = ("tensorrt-cu12", "tensorrt", "tensorrt-cu13", "tensorrt-cu11")
    reports_runtime_latency = True  # CUDA events around execute_async_v3: the GPU compute time

    _context = _engine = _trt_runtime = _buffers = None

    def load(self, model: Path) -> None:
        model = Path(model)
        self._format, self._model_path = self.check_format(model), model
        try:
            import onnx
        except ImportError:
            raise self.missing_runtime() from None
        facts = graph.inspect(onnx, model)  # before any GPU call: a wrong precision is cheap
        graph.check_io(facts, model, self.name)
        self._precision = graph.resolve_precision(self.config.precision, facts, model)
        try:
            import tensorrt as trt

            cudart = import_cudart()
        except ImportError:
            raise self.missing_runtime() from None
        self._trt, self._cudart = trt, cudart
        self._version = check_version(trt)
        self._device = open_device(cudart, self.config.device)
        offline = self.scenario is Scenario.OFFLINE
        self._max_batch = self.config.offline_batch if offline and facts.dynamic_batch else 1
        parts = KeyParts(facts.sha256, self._version, self._device.name,
                         self._device.compute_capability, self._precision, self._max_batch,
                         self.config.workspace_mb)
        self._key = cache_key(parts)
        self._logger = make_logger(trt)
        self._trt_runtime = trt.Runtime(self._logger)
        cache = EngineCache()
        entry = cache.get(parts, model.stem)
        engine = None
        if entry is not None:
            start = time.perf_counter()
            engine = self._trt_runtime.deserialize_cuda_engine(entry.engine)
            self._deserialize_s = time.perf_counter() - start
            self._cache = {"hit": True, "path": str(entry.path), "build_s": entry.build_s}
        if engine is None:  # a miss, or an entry this TensorRT will not take: build, replace
            start = time.perf_counter()
            data = build(trt, self._logger, BuildRequest(
                model, self._precision, tuple(facts.input_dims[1:]), self._max_batch,
                facts.dynamic_batch, self.config.workspace_mb, self.config.build_timeout_s))
            build_s = time.perf_counter() - start
            path = cache.put(parts, model.stem, data, build_s)
            start = time.perf_counter()
            engine = self._trt_runtime.deserialize_cuda_engine(data)
            self._deserialize_s = time.perf_counter() - start
            self._cache = {"hit": False, "path": str(path), "build_s": round(build_s, 3)}
            if engine is None:
                raise SUTError(f"TensorRT could not deserialize the engine it just built: "
                               f"{self._logger.errors[0] if self._logger.errors else 'no message'}")
        self._engine = engine
        self._bind(facts)
        for _ in range(WARMUP):
            self.prepare(np.zeros(self._in.shape, dtype=self._in.dtype))
            self.infer()
        if self._max_batch > 1:  # the first full batch is not the one a query times
            self._run_rows(self._max_batch)

    def _bind(self, facts: graph.GraphFacts) -> None:
        """Context, tensor specs, buffers and tensor addresses, once."""
        trt, engine = self._trt, self._engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise SUTError("TensorRT could not create an execution context (device memory?)")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        ins = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if n not in ins]
        if len(ins) != 1 or len(outs) != 1:
            raise SUTError(f"the engine has {len(ins)} inputs and {len(outs)} outputs, not 1 and 1")
        self._in_name, self._out_name = ins[0], outs[0]
        self._dynamic = facts.dynamic_batch
        self._in_rest = tuple(int(d) for d in facts.input_dims[1:])
        self._rows = 0
        self._set_rows(1)
        out_shape = tuple(int(d) for d in self._context.get_tensor_shape(self._out_name))
        in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self._in_name)))
        out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self._out_name)))
        self._in = self._spec(self._in_name, (1, *self._in_rest), in_dtype, True)
        self._out = self._spec(self._out_name, out_shape, out_dtype, False)
        self._buffers = buf = Buffers(self._cudart)
        self._in_bytes = int(np.prod(self._in.shape)) * in_dtype.itemsize  # one row
        self._out_bytes = int(np.prod(out_shape)) * out_dtype.itemsize
        self._host_in = buf.pinned((self._max_batch, *self._in.shape[1:]), in_dtype)
        self._host_out = buf.pinned((self._max_batch, *out_shape[1:]), out_dtype)
        self._host_in[...] = 0  # page-locked memory comes uninitialized; warm-up reads it
        self._dev_in = buf.device(self._max_batch * self._in_bytes)
        self._dev_out = buf.device(self._max_batch * self._out_bytes)
        for name, ptr in ((self._in_name, self._dev_in), (self._out_name, self._dev_out)):
            if not self._context.set_tensor_address(name, ptr):
                raise SUTError(f"IExecutionContext.set_tensor_address({name!r}) failed")
        # Bound once: the timed call looks up no attribute chain.
        self._execute = self._context.execute_async_v3
        self._record = self._cudart.cudaEventRecord
        self._sync = self._cudart.cudaStreamSynchronize
        self._ok = self._cudart.cudaError_t.cudaSuccess

    def _spec(self, name: str, shape: tuple[int, ...], dtype: np.dtype, is_input: bool) -> TensorSpec:
        scale, zero = 0.0, 0
        if dtype.kind in "iu":  # a Q/DQ graph's integer edge: its scale from the graph
            from tinyharness.suts.onnxruntime_cpu.sut import qdq_params

            scale, zero = qdq_params(self._model_path, name, is_input) or (0.0, 0)
        return TensorSpec(name, tuple(shape), dtype.name, scale, zero)

    def _set_rows(self, rows: int) -> None:
        """The input's batch for the next enqueue (a dynamic batch only; untimed)."""
        if rows == self._rows:
            return
        if self._dynamic and not self._context.set_input_shape(self._in_name, (rows, *self._in_rest)):
            raise SUTError(f"IExecutionContext.set_input_shape({self._in_name!r}, batch {rows}) failed")
        self._rows = rows

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        self._set_rows(1)
        np.copyto(self._host_in[:1], sample.reshape(self._in.shape))
        self._buffers.to_device(self._dev_in, self._host_in, self._in_bytes)
        self._buffers.synchronize()

    def infer(self) -> None:
        buf = self._buffers
        self._record(buf.start, buf.stream)
        if not self._execute(buf.stream_handle):
            raise SUTError("IExecutionContext.execute_async_v3 failed: "
                           f"{self._logger.errors[-1] if self._logger.errors else 'no message'}")
        self._record(buf.stop, buf.stream)
        err = self._sync(buf.stream)[0]
        if err != self._ok:
            raise SUTError(f"cudaStreamSynchronize after the inference failed: {err}")

    def runtime_latency_ns(self) -> int:
        return int(self._buffers.elapsed_ms() * 1e6)

    def output(self) -> np.ndarray:
        self._buffers.to_host(self._host_out, self._dev_out, self._out_bytes)
        self._buffers.synchronize()
        return self._host_out[:1].copy()

    def _run_rows(self, rows: int) -> None:
        """Copy ``rows`` pinned inputs in, run, copy their outputs back, wait."""
        self._set_rows(rows)
        buf = self._buffers
        buf.to_device(self._dev_in, self._host_in, rows * self._in_bytes)
        if not self._execute(buf.stream_handle):
            raise SUTError(f"IExecutionContext.execute_async_v3 failed on a batch of {rows}")
        buf.to_host(self._host_out, self._dev_out, rows * self._out_bytes)
        buf.synchronize()

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        if self._max_batch == 1:
            return super().issue_offline(samples, completions)
        clock, batch = time.perf_counter_ns, self._max_batch
        for first in range(0, len(samples), batch):
            rows = min(batch, len(samples) - first)
            np.concatenate(samples[first:first + rows], axis=0, out=self._host_in[:rows])
            self._run_rows(rows)
            completions[first:first + rows] = clock()

    def describe(self) -> SUTDescription:
        dev = self._device
        extra = {"tensorrt_version": self._version, "gpu": dev.name, "gpu_index": dev.index,
                 "compute_capability": dev.compute_capability, "gpu_memory_mib": dev.memory_mib,
                 "cuda_driver_supports": dev.driver_cuda, "cuda_runtime_bindings": dev.runtime_cuda,
                 "precision": self._precision, "requested_precision": self.config.precision,
                 "tf32": self._precision != "fp32", "engine_cache_key": self._key,
                 "engine_cache_hit": self._cache["hit"], "engine_path": self._cache["path"],
                 "build_s": self._cache["build_s"], "deserialize_s": round(self._deserialize_s, 3),
                 "workspace_mb": self.config.workspace_mb,
                 "offline": (f"batches of up to {self._max_batch} (optimization profile 1..."
                             f"{self._max_batch})" if self._max_batch > 1 else "one sample at a time"),
                 "runtime_latency": "GPU compute time: CUDA events around execute_async_v3"}
        computed = _DTYPE_NAMES[self._precision]
        return SUTDescription(name=self.name, runtime=self.runtime, runtime_version=self._version,
                              device=f"GPU {dev.index} ({dev.name}, compute {dev.compute_capability})",
                              model_format=self._format, precision=self._in.dtype, threads=None,
                              extra=extra,
                              inference_precision=None if computed == self._in.dtype else computed)

    def close(self) -> None:
        # The context uses the engine, which the runtime deserialized: release in that order,
        # then the memory they were bound to.
        self._execute = self._context = None
        self._engine = self._trt_runtime = None
        self._host_in = self._host_out = None
        buffers, self._buffers = self._buffers, None
        if buffers is not None:
            buffers.free()
