"""TensorFlow Lite on the CPU through LiteRT (``ai-edge-litert``) or the legacy ``tflite-runtime``.

Both packages expose the same classic ``Interpreter`` API, so one class serves both; LiteRT is
preferred (tflite-runtime 2.14 needs numpy<2 and is 4-16x slower on int8). A query is
``set_tensor`` (untimed, 0.4 us) + ``invoke()`` (timed) + ``get_tensor`` (untimed, copies). The
newer CompiledModel API measured about 3 us slower per call on these models, so it is not used.

Int8 results depend on the kernel set: XNNPACK (the default delegate) and the built-in kernels
(what TFLite Micro matches on most models) differ by several output steps, so describe() names it.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.sut import SUT, SUTDescription, TensorSpec
from tinyharness.system import cpu_model

from .config import TFLiteConfig

WARMUP = 10
# (distribution, module holding Interpreter), in order of preference.
PACKAGES = (("ai-edge-litert", "ai_edge_litert.interpreter"),
            ("tflite-runtime", "tflite_runtime.interpreter"))


class TFLiteCPU(SUT):
    name = "tflite-cpu"
    summary = "TensorFlow Lite interpreter on the CPU (LiteRT; XNNPACK or built-in kernels)"
    runtime = "ai-edge-litert"
    distributions = tuple(dist for dist, _ in PACKAGES)  # LiteRT first
    extra = "litert"
    model_formats = ("tflite",)
    config_class = TFLiteConfig

    _interp = None

    def load(self, model: Path) -> None:
        model = Path(model)
        fmt = self.check_format(model)
        module = self._import()
        resolver = module.OpResolverType.AUTO
        if self.config.kernels == "builtin":
            resolver = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interp = module.Interpreter(model_path=str(model), num_threads=self.threads(),
                                        experimental_op_resolver_type=resolver)
            ins, outs = interp.get_input_details(), interp.get_output_details()
            if len(ins) != 1 or len(outs) != 1:
                raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one "
                                 f"output, the model has {len(ins)} and {len(outs)}")
            # The MLPerf Tiny files have a dynamic batch (shape_signature -1); run batch 1.
            if ins[0]["shape"][0] != 1:
                interp.resize_tensor_input(ins[0]["index"], [1, *ins[0]["shape"][1:]])
            interp.allocate_tensors()
        except UsageError:
            raise
        except Exception as exc:  # corrupt or unsupported file: the user's input
            raise UsageError(f"cannot load {model}: {self._package}: {first_line(exc)}") from None
        self._interp, self._format = interp, fmt
        in_detail, out_detail = interp.get_input_details()[0], interp.get_output_details()[0]
        self._in, self._out = self._spec(in_detail), self._spec(out_detail)
        self._in_index, self._out_index = in_detail["index"], out_detail["index"]
        # Bound methods looked up once: the timed call is then one attribute-free call.
        self._set, self._run, self._get = interp.set_tensor, interp.invoke, interp.get_tensor
        zeros = np.zeros(self._in.shape, dtype=self._in.dtype)
        for _ in range(WARMUP):
            self._set(self._in_index, zeros)
            self._run()
        # The timed call goes straight into the runtime: no Python frame of ours between the clocks.
        self.infer = self._run

    def _import(self):
        import importlib

        for dist, module in PACKAGES:
            try:
                found = importlib.import_module(module)
            except ImportError:
                continue
            self._package, self._version = dist, self._dist_version(dist)
            return found
        raise self.missing_runtime()

    @staticmethod
    def _dist_version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    @staticmethod
    def _spec(detail) -> TensorSpec:
        scale, zero = detail.get("quantization", (0.0, 0))
        return TensorSpec(detail["name"], tuple(int(d) for d in detail["shape"]),
                          np.dtype(detail["dtype"]).name, float(scale), int(zero))

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        self._set(self._in_index, sample)

    def infer(self) -> None:
        self._run()

    def output(self) -> np.ndarray:
        return self._get(self._out_index)  # get_tensor returns a copy

    def describe(self) -> SUTDescription:
        extra = {"kernels": self.config.kernels, "package": self._package}
        ops = getattr(self._interp, "_get_ops_details", None)  # private; absent in some versions
        if ops is not None:
            # XNNPACK shows up as DELEGATE nodes: proof that the requested kernel set is in use.
            extra["delegate_nodes"] = sum(op["op_name"] == "DELEGATE" for op in ops())
        return SUTDescription(name=self.name, runtime=self._package, runtime_version=self._version,
                              device=f"CPU ({cpu_model()})", model_format=self._format,
                              precision=self._in.dtype, threads=self.threads(), extra=extra)

    def close(self) -> None:
        self._set = self._run = self._get = None
        self.__dict__.pop("infer", None)
        self._interp = None

