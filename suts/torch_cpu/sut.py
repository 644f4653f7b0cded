"""PyTorch on the CPU: a ``torch.export`` program (``.pt2``) or a TorchScript module (``.pt``).

The fastest call path measured on digits01 (bench/torch_overhead.py): the exported program's own
graph module called with its parameters bound (``ExportedProgram.graph_module``), not
``ExportedProgram.module()``, whose per-call input checks and pytree flattening cost several times
the model on a model of tens of µs. The input is one preallocated tensor whose memory a numpy view
shares: ``prepare`` copies the sample into it (untimed), ``infer`` calls the program once under
``torch.inference_mode`` and keeps the result tensor, ``output`` copies it out (untimed).

``mode=compile`` wraps that call in ``torch.compile`` (inductor, static shapes, whole graph); the
compile and its first calls happen in ``load`` and count as load time, never inside a query.

Offline: one call per batch of samples when the model has a dynamic batch dimension (a fixed batch
size, the last batch padded so that a compiled graph never sees a new shape), else parallel lanes
with one intra-op thread each, else one sample after another; load() measures the candidates
(untimed) and keeps the fastest, as onnxruntime-cpu does.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.settings import Scenario
from tinyharness.sut import SUT, SUTDescription, SUTError, TensorSpec, issue_in_lanes, offline_rate
from tinyharness.system import cpu_model

from .config import TorchConfig

WARMUP = 10
DEFAULT_BATCH = 64


def _dtype_name(dtype) -> str:
    """A torch dtype as numpy names it (torch.float32 -> "float32")."""
    return str(dtype).removeprefix("torch.")


def _static_shape(name: str, shape) -> tuple[tuple[int, ...], bool]:
    """A batch-1 shape from a (possibly symbolic) shape, and whether the batch dimension is
    dynamic; a dynamic dimension other than the batch is a UsageError."""
    dims, dynamic = [], False
    for axis, dim in enumerate(shape):
        if isinstance(dim, int):
            dims.append(dim)
        elif axis == 0:
            dims.append(1)
            dynamic = True
        else:
            raise UsageError(f"tensor {name!r} has a dynamic dimension {axis} ({dim}); only the "
                             "batch dimension may be dynamic")
    return tuple(dims), dynamic


class TorchCPU(SUT):
    name = "torch-cpu"
    summary = ("PyTorch on the CPU: torch.export program (.pt2) or TorchScript (.pt), eager or "
               "torch.compile (inductor)")
    runtime = "torch"
    extra = "torch"
    model_formats = ("pt2", "pt")
    config_class = TorchConfig

    _torch = _fn = None
    _saved_threads: int | None = None
    _quantized: list[str] = []

    # -- load ---------------------------------------------------------------------------------
    def load(self, model: Path) -> None:
        model = Path(model)
        fmt = self.check_format(model)
        try:
            import torch
        except ImportError:
            raise self.missing_runtime() from None
        self._torch, self._model, self._format = torch, model, fmt
        self._mode = self.config.mode
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads())
        # inference mode entered per call (it is thread-local): the C++ guard itself where torch
        # has it (a fresh one each time: reentrant, half the cost of torch.inference_mode())
        self._guard = getattr(torch._C, "_InferenceMode", torch.inference_mode)
        started = time.perf_counter()
        if fmt == "pt2":
            fn, self._call_path = self._load_program(model)
        else:
            fn, self._call_path = self._load_script(model)
        self._in_tensor = torch.zeros(self._in.shape, dtype=getattr(torch, self._in.dtype))
        self._in_buf = self._in_tensor.numpy()  # shares the tensor's memory
        if self._mode == "compile":
            if fmt != "pt2":
                raise UsageError(f"{model.name}: mode=compile needs a torch.export program (.pt2); "
                                 "torch.compile does not trace TorchScript")
            fn = torch.compile(fn, backend="inductor", dynamic=False, fullgraph=True)
        self._fn = fn
        with self._guard(True):
            try:
                result = fn(self._in_tensor)  # mode=compile: the compile happens here
            except Exception as exc:
                raise SUTError(f"{model.name}: the first call failed: {type(exc).__name__}: "
                               f"{first_line(exc)}") from None
            self._tuple = isinstance(result, (tuple, list))
            out = result[0] if self._tuple else result
            if self._out is None:  # TorchScript: the output is known once it ran
                self._out = TensorSpec("output", tuple(out.shape), _dtype_name(out.dtype))
            for _ in range(WARMUP):
                fn(self._in_tensor)
        self._result = result
        self._first_call_s = time.perf_counter() - started
        self._offline_setup()

    def _load_program(self, model: Path):
        torch = self._torch
        from torch.export.graph_signature import InputKind, OutputKind

        try:  # registers the quantized_decomposed ops a PT2E (int8) program calls
            import torch.ao.quantization.fx._decomposed  # noqa: F401
        except ImportError:
            pass
        try:
            ep = torch.export.load(str(model))
        except Exception as exc:  # corrupt or unsupported file: the user's input
            raise UsageError(f"cannot load {model}: torch: {first_line(exc)}") from None
        sig = ep.graph_signature
        users = [s for s in sig.input_specs if s.kind == InputKind.USER_INPUT]
        outs = [s for s in sig.output_specs if s.kind == OutputKind.USER_OUTPUT]
        if len(users) != 1 or len(outs) != 1 or len(sig.output_specs) != 1:
            raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one output "
                             f"(and no mutated buffers), the program has {len(users)} and "
                             f"{len(outs)} ({len(sig.output_specs)} outputs in all)")
        self._quantized = sorted({str(n.target).split(".")[1] for n in ep.graph.nodes
                                  if str(n.target).startswith("quantized_decomposed.")})
        nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
        out_node = next(n for n in ep.graph.nodes if n.op == "output")
        in_val = nodes[users[0].arg.name].meta["val"]
        out_val = out_node.args[0][0].meta["val"]
        in_shape, self._batch_dynamic = _static_shape(users[0].arg.name, in_val.shape)
        out_shape, _ = _static_shape(outs[0].arg.name, out_val.shape)
        self._in = TensorSpec(users[0].arg.name, in_shape, _dtype_name(in_val.dtype))
        self._out = TensorSpec(outs[0].arg.name, out_shape, _dtype_name(out_val.dtype))
        # The lifted graph takes the parameters, buffers and constants first, the input last.
        if sig.input_specs[-1].kind != InputKind.USER_INPUT:
            return ep.module(), "ExportedProgram.module()"
        lifted = []
        for spec in sig.input_specs[:-1]:
            if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                value = ep.state_dict[spec.target] if spec.target in ep.state_dict else ep.constants[spec.target]
            else:
                value = ep.constants[spec.target]
            lifted.append(value.detach() if isinstance(value, torch.Tensor) else value)
        return (functools.partial(ep.graph_module.forward, *lifted),
                "ExportedProgram.graph_module, parameters bound")

    def _load_script(self, model: Path):
        torch = self._torch
        try:
            module = torch.jit.load(str(model), map_location="cpu")
        except Exception as exc:
            raise UsageError(f"cannot load {model}: torch: {first_line(exc)}") from None
        if self.benchmark is None:
            raise UsageError(f"{model.name}: a TorchScript module does not record its input shape; "
                             "run it with a benchmark (its sample shape, batch 1, float32), or "
                             "export it with torch.export (.pt2)")
        module.eval()
        try:  # constants folded, no attribute lookups per call
            module = torch.jit.freeze(module)
        except Exception:  # a module freeze cannot handle still runs as loaded
            pass
        self._in = TensorSpec("input", (1, *self.benchmark.sample_shape), "float32")
        self._out = None
        self._batch_dynamic = True  # probed with a batch in _offline_setup
        return module.forward, "TorchScript forward (frozen)"

    # -- offline ------------------------------------------------------------------------------
    def _offline_setup(self) -> None:
        self._offline, self._batch, self._lanes = "sequential", 1, 1
        self._offline_rates: dict[str, int] = {}
        if self.scenario is not Scenario.OFFLINE:
            return
        torch, cfg = self._torch, self.config
        candidates = {"sequential": super().issue_offline}
        if self._batch_dynamic and cfg.batch != 1:
            batch = cfg.batch or DEFAULT_BATCH
            self._batch_in = torch.zeros((batch, *self._in.shape[1:]), dtype=self._in_tensor.dtype)
            try:
                with self._guard(True):
                    for _ in range(3):  # mode=compile: the batch shape compiles here
                        result = self._fn(self._batch_in)
                out = result[0] if self._tuple else result
                if out.shape[0] == batch:
                    self._batch = batch
                    candidates["batch"] = self._issue_batch
            except Exception:  # the batch is not dynamic after all (TorchScript)
                pass
        lanes = cfg.lanes or self.threads()
        if lanes > 1:
            self._lane_inputs = [self._in_tensor] + [self._in_tensor.clone()
                                                     for _ in range(lanes - 1)]
            self._lanes = lanes
            candidates["lanes"] = self._issue_lanes
        chosen = ("lanes" if cfg.lanes and "lanes" in candidates else
                  "batch" if cfg.batch and "batch" in candidates else None)
        if chosen is None and len(candidates) > 1:
            zeros = [np.zeros(self._in.shape, dtype=self._in.dtype)]
            self._offline_rates = {k: round(offline_rate(fn, zeros)) for k, fn in candidates.items()}
            chosen = max(self._offline_rates, key=self._offline_rates.get)
        self._offline = chosen or "sequential"
        if self._offline != "lanes":
            self._lanes = 1
        if self._offline != "batch":
            self._batch = 1

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        if self._offline == "batch":
            return self._issue_batch(samples, completions)
        if self._offline == "lanes":
            return self._issue_lanes(samples, completions)
        super().issue_offline(samples, completions)

    def _issue_batch(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        """One call per ``batch`` samples; the last batch runs at full size (rows past the
        samples hold stale data, their outputs unused) so that the shape never changes. Every
        sample of a batch completes when the call returns."""
        fn, tensor, batch, clock = self._fn, self._batch_in, self._batch_in.shape[0], time.perf_counter_ns
        buf = tensor.numpy()
        row = self._in.shape[1:]
        with self._guard(True):
            for start in range(0, len(samples), batch):
                chunk = samples[start:start + batch]
                for j, sample in enumerate(chunk):
                    buf[j] = sample.reshape(row)
                fn(tensor)
                completions[start:start + len(chunk)] = clock()

    def _issue_lanes(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        torch, fn, guard = self._torch, self._fn, self._guard

        def bound(tensor):
            def call():
                with guard(True):  # thread-local: entered on the lane's own thread
                    fn(tensor)
            return call

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one intra-op thread per lane (the setting is process-wide)
        try:
            issue_in_lanes([(t.numpy(), bound(t)) for t in self._lane_inputs], samples, completions)
        finally:
            torch.set_num_threads(threads)

    # -- queries ------------------------------------------------------------------------------
    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self._in_buf, sample.reshape(self._in_buf.shape))

    def infer(self) -> None:
        with self._guard(True):
            self._result = self._fn(self._in_tensor)

    def output(self) -> np.ndarray:
        result = self._result[0] if self._tuple else self._result
        return result.numpy().copy()

    def describe(self) -> SUTDescription:
        torch = self._torch
        extra: dict[str, Any] = {
            "mode": self._mode, "call_path": self._call_path, "inference_mode": True,
            "load_and_first_calls_s": round(self._first_call_s, 3),
            "offline": self._offline, "offline_batch": self._batch, "offline_lanes": self._lanes,
            "offline_rates_at_load": self._offline_rates,
            "interop_threads": torch.get_num_interop_threads(),
        }
        if self._mode == "compile":
            extra["compile"] = {"backend": "inductor", "dynamic": False, "fullgraph": True}
        if self._quantized:  # PT2E: int8 weights and activations inside a float-in/out program
            extra["quantized_ops"] = self._quantized
        return SUTDescription(name=self.name, runtime=self.runtime,
                              runtime_version=torch.__version__, device=f"CPU ({cpu_model()})",
                              model_format=self._format, precision=self._in.dtype,
                              inference_precision="int8" if self._quantized else None,
                              threads=self.threads(), extra=extra)

    def close(self) -> None:
        self._fn = self._result = None
        self.__dict__.pop("_lane_inputs", None)
        self.__dict__.pop("_batch_in", None)
        if self._torch is not None and self._saved_threads is not None:
            self._torch.set_num_threads(self._saved_threads)  # the setting is process-wide
            self._saved_threads = None
