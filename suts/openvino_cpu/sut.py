"""OpenVINO on the CPU plugin: reads .onnx and .tflite directly.

Single-stream uses one reused InferRequest whose input tensor wraps a preallocated numpy array
(bound once), so a query is ``np.copyto`` (untimed) + ``request.infer()`` (timed); the convenience
``compiled_model(inputs)`` call costs 20-40 us more per query. Precision defaults to f32: on CPUs
with bf16 support OpenVINO otherwise silently runs float parts in bf16 and changes the results.

Offline measures at load (untimed) two ways and keeps the faster: one LATENCY request in a loop, or
the THROUGHPUT hint (one stream per core here) with one lane (thread) per infer request, each a
synchronous bound-tensor loop over a fixed stride of the samples (``infer()`` releases the GIL, so
the requests overlap); ``nstreams``/``nireq`` force the second. Measured on 2 vCPUs (kws int8, f32): 22 000-23 500
inferences/s, against about 10 000 for an AsyncInferQueue with bound inputs (7 000 when it copies
inputs per call), 14 000 for one request in a loop, and 11 600-13 000 FPS for ``benchmark_app -hint
throughput`` (the Python benchmark_app, which drives an AsyncInferQueue with callbacks).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.settings import Scenario
from tinyharness.sut import SUT, SUTDescription, TensorSpec, issue_in_lanes, offline_rate

from .config import OpenVINOConfig

WARMUP = 10
# Ops between a graph edge and the node that (de)quantizes it that do not change values.
_PASSTHROUGH = {"Convert", "Reshape", "Transpose", "Squeeze", "Unsqueeze"}
SOURCE_LOCATIONS = ("Exception from ",)  # OpenVINO error lines that only name a source file


def _const(port) -> np.ndarray | None:
    """The value feeding ``port`` if constant, also through the Convert after int8 constants."""
    node = port.get_node()
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    return node.get_data() if node.get_type_name() == "Constant" else None


def _scalars(*arrays) -> list[float] | None:
    if any(a is None or a.size != 1 for a in arrays):
        return None  # per-channel: not expressible in a TensorSpec
    return [float(a.reshape(())) for a in arrays]


def _f32(value: float) -> float:
    # Scales are float32 in both file formats; rounding there undoes the error of recomputing
    # them from FakeQuantize ranges, so they equal the file's value exactly.
    return float(np.float32(value))


def fastest_infer(request):
    """The binding's own synchronous infer with the inputs already bound (an empty feed) and output
    views instead of copies. ``InferRequest.infer`` wraps it in Python (input dispatch, an OVDict of
    the outputs), which costs 1.5 us a call here (7.6 -> 6.1 us on digits01, measured)."""
    try:
        from openvino._pyopenvino import InferRequest as Binding

        return functools.partial(Binding.infer, request, {}, True, True)
    except (ImportError, AttributeError):  # a release without that layout: the public call
        return request.infer


def _only_user(node):
    users = list(node.output(0).get_target_inputs())
    return users[0].get_node() if len(users) == 1 else None


def quant_params(model, is_input: bool) -> tuple[float, int] | None:
    """Scale and zero point of an integer input/output, read off the graph OpenVINO builds.

    .tflite int8 becomes FakeQuantize(levels=256) next to the edge; ONNX DequantizeLinear becomes
    Convert -> Subtract(zero point) -> Multiply(scale). None when neither pattern is found.
    """
    node = model.get_parameters()[0] if is_input else model.get_results()[0]
    for _ in range(8):  # the (de)quantizing node sits a few reshapes/converts from the edge
        node = _only_user(node) if is_input else node.input_value(0).get_node()
        kind = node.get_type_name() if node is not None else None
        if kind == "FakeQuantize":
            ranges = _scalars(*(_const(node.input_value(i)) for i in range(1, 5)))
            if ranges is None:
                return None
            in_lo, in_hi, out_lo, out_hi = ranges
            steps = node.get_attributes()["levels"] - 1
            if is_input:  # integer grid [in_lo, in_hi] -> real [out_lo, out_hi]
                scale = (out_hi - out_lo) / steps
                return _f32(scale), round(in_lo - out_lo / scale)
            scale = (in_hi - in_lo) / steps  # real [in_lo, in_hi] -> integer grid [out_lo, out_hi]
            return _f32(scale), round(out_lo - in_lo / scale)
        if is_input and kind in ("Subtract", "Multiply"):
            zero, mul = ([0.0], node) if kind == "Multiply" else (
                _scalars(_const(node.input_value(1))), _only_user(node))
            if zero is None or mul is None or mul.get_type_name() != "Multiply":
                return None
            scale = _scalars(_const(mul.input_value(1)))
            return (_f32(scale[0]), round(zero[0])) if scale else None
        if kind not in _PASSTHROUGH:
            return None
    return None


class OpenVINOCPU(SUT):
    name = "openvino-cpu"
    summary = "OpenVINO CPU plugin (.onnx, .tflite), bound input tensor; parallel requests offline"
    runtime = "openvino"
    extra = "openvino"
    model_formats = ("tflite", "onnx")  # the upstream reference file first
    config_class = OpenVINOConfig
    reports_runtime_latency = True  # InferRequest.latency: the C++ side of each request

    _requests: list | tuple = ()
    _compiled = None

    def load(self, model: Path) -> None:
        model = Path(model)
        fmt = self.check_format(model)
        try:
            import openvino as ov
        except ImportError:
            raise self.missing_runtime() from None
        self._ov, self._format = ov, fmt
        core = ov.Core()
        try:
            graph = core.read_model(str(model))
        except Exception as exc:  # corrupt or unsupported file: the user's input
            raise UsageError(f"cannot load {model}: openvino: "
                             f"{first_line(exc, SOURCE_LOCATIONS)}") from None
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one output, "
                             f"the model has {len(graph.inputs)} and {len(graph.outputs)}")
        pshape = graph.input(0).get_partial_shape()
        if pshape.is_dynamic:
            # The MLPerf Tiny .tflite files have a dynamic batch: fix it to 1 so that the CPU
            # plugin compiles static kernels and shapes are known.
            dims = [] if pshape.rank.is_dynamic else [
                d.get_length() if d.is_static else None for d in pshape]
            if not dims or None in dims[1:]:
                raise UsageError(f"{model.name}: input has a dynamic dimension other than batch "
                                 f"({pshape})")
            graph.reshape([1, *dims[1:]])
        self._in = self._spec(graph.input(0), quant_params(graph, True))
        self._out = self._spec(graph.output(0), quant_params(graph, False))

        self._device = f"CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')})"
        self._offline_rates: dict[str, float] = {}
        if self.scenario is not Scenario.OFFLINE:
            self._compile(core, graph, model, "LATENCY")
        elif self.config.nstreams or self.config.nireq:
            self._compile(core, graph, model, "THROUGHPUT")
        else:
            # Untimed: parallel requests (THROUGHPUT) win on models of tens of µs, one LATENCY
            # request in a loop wins on µs-scale ones where the GIL dominates; keep the faster.
            zeros = np.zeros(self._in.shape, dtype=self._in.dtype)
            for hint in ("LATENCY", "THROUGHPUT"):
                self._compile(core, graph, model, hint)
                self._offline_rates[hint.lower()] = round(offline_rate(self.issue_offline, [zeros]))
            if self._offline_rates["latency"] > self._offline_rates["throughput"]:
                self._compile(core, graph, model, "LATENCY")

    def _compile(self, core, graph, model: Path, hint: str) -> None:
        """Compile with a performance hint and create its requests: one for LATENCY, the optimal
        number (or ``nireq``) for THROUGHPUT, each with its own input array bound once (shared
        memory: OpenVINO reads the array in place, so prepare() is a plain copy into it)."""
        ov = self._ov
        # One request in a loop is fastest with one thread (as single-stream) unless told otherwise.
        threads = self.threads() if hint == "THROUGHPUT" else (self.config.threads or 1)
        config = {"INFERENCE_PRECISION_HINT": self.config.precision,
                  "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": hint}
        if hint == "THROUGHPUT" and self.config.nstreams:
            config["NUM_STREAMS"] = self.config.nstreams
        try:
            self._compiled = core.compile_model(graph, "CPU", config)
        except Exception as exc:
            raise UsageError(f"cannot compile {model} for CPU: openvino: "
                             f"{first_line(exc, SOURCE_LOCATIONS)}") from None
        nireq = 1
        if hint == "THROUGHPUT":
            nireq = (self.config.nireq
                     or self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests, self._inputs = [], []
        for _ in range(nireq):
            request = self._compiled.create_infer_request()
            array = np.zeros(self._in.shape, dtype=self._in.dtype)
            request.set_input_tensor(ov.Tensor(array, shared_memory=True))
            self._requests.append(request)
            self._inputs.append(array)
            for _ in range(WARMUP):
                request.infer()
        self._in_buf, self._request = self._inputs[0], self._requests[0]
        self._run = fastest_infer(self._request)
        # The timed call goes straight into the runtime: no Python frame of ours between the clocks.
        self.infer = self._run

    def _spec(self, port, quant) -> TensorSpec:
        dtype = port.get_element_type().to_dtype().name
        scale, zero = quant if quant and dtype.startswith(("int", "uint")) else (0.0, 0)
        return TensorSpec(port.get_any_name(), tuple(port.get_shape()), dtype, scale, zero)

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self._in_buf, sample)

    def infer(self) -> None:
        self._run()

    def runtime_latency_ns(self) -> int:
        return int(self._request.latency * 1e6)  # ms, as a float

    def output(self) -> np.ndarray:
        return self._request.get_output_tensor(0).data.copy()

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        if len(self._requests) == 1:
            return super().issue_offline(samples, completions)
        issue_in_lanes([(array, fastest_infer(request))
                        for array, request in zip(self._inputs, self._requests)], samples, completions)

    def describe(self) -> SUTDescription:
        get = self._compiled.get_property
        used = get("INFERENCE_PRECISION_HINT")
        extra = {"performance_hint": str(get("PERFORMANCE_HINT")),
                 "offline_rates_at_load": self._offline_rates,
                 "num_streams": int(get("NUM_STREAMS")), "nireq": len(self._requests),
                 "requested_precision": self.config.precision, "kernels": self._kernels()}
        return SUTDescription(name=self.name, runtime=self.runtime,
                              runtime_version=self._ov.get_version(), device=self._device,
                              model_format=self._format, precision=self._in.dtype,
                              inference_precision=used.get_type_name(),
                              threads=int(get("INFERENCE_NUM_THREADS")), extra=extra)

    def _kernels(self) -> dict[str, list[str]]:
        """The kernels the CPU plugin compiled, by layer type (its runtime model's primitiveType:
        ``brgconv_avx512_I8``, ``jit_avx2_I8``): the instructions the numbers came from (the int8
        convolutions were jit_avx2_I8 on an AVX2 CPU without VNNI, where their products saturate)."""
        found: dict[str, set[str]] = {}
        try:
            for op in self._compiled.get_runtime_model().get_ops():
                info = op.get_rt_info()
                layer, kernel = (info[k].astype(str) for k in ("layerType", "primitiveType"))
                if not kernel.startswith("unknown"):
                    found.setdefault(layer, set()).add(kernel)
        except (RuntimeError, KeyError, AttributeError):  # a plugin without a runtime model
            return {}
        return {layer: sorted(kernels) for layer, kernels in sorted(found.items())}

    def close(self) -> None:
        # Requests reference the compiled model and wrap our arrays: release them first.
        self._run = self._request = None
        self.__dict__.pop("infer", None)
        self._requests, self._inputs, self._in_buf = [], [], None
        self._compiled = None

