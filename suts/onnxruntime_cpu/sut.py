"""ONNX Runtime on the CPU execution provider, driven through an IO binding.

The input and output numpy buffers are bound once in ``load``; a query then costs one
``np.copyto`` (untimed), one ``run_with_iobinding`` (timed) and one ``.copy()`` (untimed). That is
the fastest Python path: ``sess.run`` would build dicts and allocate the output on every call.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyharness.settings import Scenario
from tinyharness.errors import UsageError, first_line
from tinyharness.sut import SUT, SUTDescription, TensorSpec, issue_in_lanes, offline_rate
from tinyharness.system import cpu_model

from .config import OnnxRuntimeConfig

WARMUP = 10
# ONNX element type names (as ORT prints them in "tensor(...)") that differ from numpy's.
_DTYPES = {"float": "float32", "double": "float64"}
# Ops that move or reinterpret a tensor without changing its values: walked over when looking for
# the Quantize/DequantizeLinear node that holds an int8 input's or output's scale and zero point.
_PASSTHROUGH = {"Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Flatten"}


def batch1_shape(name: str, dims) -> tuple[int, ...]:
    """A static shape from ORT's dims: a symbolic/None batch dimension becomes 1."""
    shape = []
    for axis, dim in enumerate(dims):
        if isinstance(dim, int) and dim > 0:
            shape.append(dim)
        elif axis == 0:
            shape.append(1)
        else:
            raise UsageError(f"tensor {name!r} has a dynamic dimension {axis} ({dim!r}); "
                             "only the batch dimension may be dynamic")
    return tuple(shape)


def qdq_params(path: Path, tensor: str, is_input: bool) -> tuple[float, int] | None:
    """Scale and zero point of a QDQ graph's int8 input/output, read from the DequantizeLinear
    the input feeds (or the QuantizeLinear the output comes from), looking through reshapes.

    Needs the ``onnx`` package (a dev dependency, not the runtime's); None when it is missing or
    the graph has no per-tensor Q/DQ node there.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    graph = onnx.load(str(path), load_external_data=False).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for inp in n.input[:1]:
            consumers.setdefault(inp, []).append(n)
    want = "DequantizeLinear" if is_input else "QuantizeLinear"
    name = tensor
    for _ in range(16):  # a bounded walk: the Q/DQ node sits right next to the graph edge
        if is_input:
            nexts = consumers.get(name, [])
            node = nexts[0] if len(nexts) == 1 else None
        else:
            node = producer.get(name)
        if node is None:
            return None
        if node.op_type == want:
            scale = consts.get(node.input[1])
            zero = consts.get(node.input[2]) if len(node.input) > 2 else np.zeros(1)
            if scale is None or zero is None or scale.size != 1 or zero.size != 1:
                return None  # per-channel or computed: not expressible in a TensorSpec
            return float(scale.reshape(())), int(zero.reshape(()))
        if node.op_type not in _PASSTHROUGH:
            return None
        name = node.output[0] if is_input else node.input[0]
    return None


class OnnxRuntimeCPU(SUT):
    name = "onnxruntime-cpu"
    summary = "ONNX Runtime, CPU execution provider, inputs and outputs bound once (IO binding)"
    runtime = "onnxruntime"
    extra = "onnxruntime"
    model_formats = ("onnx",)
    config_class = OnnxRuntimeConfig

    _sess = _binding = None

    def load(self, model: Path) -> None:
        model = Path(model)
        fmt = self.check_format(model)
        try:
            import onnxruntime as ort
        except ImportError:
            raise self.missing_runtime() from None
        self._ort, self._model, self._format = ort, model, fmt
        # Offline may run one lane per thread, each a single-threaded run on its own IO binding:
        # 2.3x the throughput of one run with 2 intra-op threads on kws01 (21 400 vs 9 200/s on
        # 2 vCPUs, measured) but 0.6x on digits01, where the GIL dominates; load() measures both.
        offline = self.scenario is Scenario.OFFLINE
        self._lanes = (self.config.lanes or self.threads()) if offline else 1
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1 if self._lanes > 1 else self.threads()
        # One graph branch at a time: no inter-op pool whose threads would compete with intra-op.
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # corrupt or unsupported file: the user's input
            raise UsageError(f"cannot load {model}: onnxruntime: {first_line(exc)}") from None
        ins, outs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one output, "
                             f"the model has {len(ins)} and {len(outs)}")
        self._quant_params: dict[str, str] = {}  # where an integer tensor's scale came from
        self._in = self._spec(ins[0], is_input=True)
        self._out = self._spec(outs[0], is_input=False)
        self._run = self._sess.run_with_iobinding
        self._values: list = []
        self._bound = [self._bind() for _ in range(self._lanes)]
        self._in_buf, self._out_buf, self._binding = self._bound[0]
        for _ in range(WARMUP):
            for _, _, binding in self._bound:
                self._run(binding)
        # The timed call goes straight into the runtime: no Python frame of ours between the clocks.
        self.infer = functools.partial(self._run, self._binding)
        self._offline_rates: dict[str, float] = {}
        if self._lanes > 1 and not self.config.lanes:  # untimed: keep the lanes only where faster
            zeros = np.zeros(self._in.shape, dtype=self._in.dtype)
            self._offline_rates = {"lanes": round(offline_rate(self._issue_lanes, [zeros])),
                                   "sequential": round(offline_rate(super().issue_offline, [zeros]))}
            if self._offline_rates["sequential"] > self._offline_rates["lanes"]:
                self._lanes = 1

    def _bind(self) -> tuple[np.ndarray, np.ndarray, object]:
        """An input and an output buffer bound once to a fresh IO binding. OrtValues over numpy
        arrays share their memory (CPU): ORT reads and writes these buffers on every run."""
        ort = self._ort
        in_buf = np.zeros(self._in.shape, dtype=self._in.dtype)
        out_buf = np.zeros(self._out.shape, dtype=self._out.dtype)
        binding = self._sess.io_binding()
        values = [ort.OrtValue.ortvalue_from_numpy(buf) for buf in (in_buf, out_buf)]
        binding.bind_ortvalue_input(self._in.name, values[0])
        binding.bind_ortvalue_output(self._out.name, values[1])
        self._values += values  # the bindings point into these: keep them alive with the SUT
        return in_buf, out_buf, binding

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        if self._lanes == 1:
            return super().issue_offline(samples, completions)
        self._issue_lanes(samples, completions)

    def _issue_lanes(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        issue_in_lanes([(in_buf, functools.partial(self._run, binding))
                        for in_buf, _, binding in self._bound], samples, completions)

    def _spec(self, meta, is_input: bool) -> TensorSpec:
        kind = meta.type[len("tensor("):-1] if meta.type.startswith("tensor(") else meta.type
        dtype = _DTYPES.get(kind, kind)
        scale, zero = 0.0, 0
        if dtype in ("int8", "uint8", "int16", "uint16"):
            found = qdq_params(self._model, meta.name, is_input)
            self._quant_params[meta.name] = "graph Q/DQ node" if found else "unknown, scale 0.0"
            scale, zero = found or (0.0, 0)
        return TensorSpec(meta.name, batch1_shape(meta.name, meta.shape), dtype, scale, zero)

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self._in_buf, sample)

    def infer(self) -> None:
        self._run(self._binding)

    def output(self) -> np.ndarray:
        return self._out_buf.copy()

    def describe(self) -> SUTDescription:
        extra = {"providers": self._sess.get_providers(), "io_binding": True,
                 "offline_lanes": self._lanes, "offline_rates_at_load": self._offline_rates,
                 "inter_op_threads": 1, "execution_mode": "sequential",
                 "graph_optimization": "all (default)"}
        if self._quant_params:
            extra["quantization_params"] = dict(self._quant_params)
        return SUTDescription(name=self.name, runtime=self.runtime,
                              runtime_version=self._ort.__version__, device=f"CPU ({cpu_model()})",
                              model_format=self._format, precision=self._in.dtype,
                              threads=self.threads(), extra=extra)

    def close(self) -> None:
        # The binding and OrtValues reference the buffers and the session: drop them all.
        self._binding = self._run = None
        self._bound, self._values = [], []
        self.__dict__.pop("infer", None)
        self._sess = None

