"""ExecuTorch on the CPU: a ``.pte`` program through ExecuTorch's Python runtime
(``executorch.runtime``: Runtime, Program, Method), the XNNPACK delegate running the partitions the
program was lowered to (``tinyharness models export BENCHMARK --to executorch``).

The input is a torch tensor over a numpy buffer allocated once in ``load``; a query costs one
``np.copyto`` (untimed), one ``Method.execute`` (timed: the runtime copies the input into its
planned memory and runs the plan) and one copy of the output (untimed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.sut import SUT, SUTDescription, TensorSpec
from tinyharness.system import cpu_model

from .config import ExecuTorchConfig

WARMUP = 10
# ExecuTorch's ScalarType (TensorInfo.dtype(): its number, or a name) as numpy dtype names.
_DTYPES = {"Byte": "uint8", "Char": "int8", "Short": "int16", "Int": "int32", "Long": "int64",
           "Half": "float16", "Float": "float32", "Double": "float64", "Bool": "bool"}
_SCALAR_TYPES = {0: "Byte", 1: "Char", 2: "Short", 3: "Int", 4: "Long", 5: "Half", 6: "Float",
                 7: "Double", 11: "Bool"}


def delegates(data: bytes) -> list[str]:
    """The backend ids of the delegates in a .pte program (e.g. ["XnnpackBackend"]), read from
    its flatbuffer with executorch.exir's deserializer; a byte search where that is missing."""
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary

        pte = deserialize_pte_binary(data)
        program = getattr(pte, "program", pte)
        return sorted({d.id for plan in program.execution_plan for d in plan.delegates})
    except Exception:  # exir missing or its layout changed: the id strings are in the flatbuffer
        return ["XnnpackBackend"] if b"XnnpackBackend" in data else []


def sidecar_precision(model: Path, digest: str) -> str | None:
    """The precision ``models export`` recorded beside the program (``<file>.json``), when that
    sidecar describes these bytes: an XNNPACK-lowered int8 program keeps float input and output,
    and its int8 kernels are inside the delegate's opaque payload."""
    try:
        meta = json.loads(model.with_name(model.name + ".json").read_bytes()[:1 << 20])
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("sha256") != digest:
        return None
    return meta.get("precision") if meta.get("precision") in ("int8", "float32") else None


def _spec(name: str, info) -> TensorSpec:
    raw = info.dtype()
    kind = _SCALAR_TYPES.get(raw, str(raw)) if isinstance(raw, int) else str(raw).rsplit(".", 1)[-1]
    dtype = _DTYPES.get(kind)
    if dtype is None:
        raise UsageError(f"tensor {name!r} has the ExecuTorch dtype {kind}, which no SUT input takes")
    shape = tuple(int(d) for d in info.sizes()) or (1,)
    return TensorSpec(name, shape, dtype)


class ExecuTorchCPU(SUT):
    name = "executorch-cpu"
    summary = "ExecuTorch Python runtime, .pte program, XNNPACK delegate where lowered to it"
    runtime = "executorch"
    extra = "executorch"
    model_formats = ("pte",)
    config_class = ExecuTorchConfig

    _method = None

    def load(self, model: Path) -> None:
        model = Path(model)
        self._format = self.check_format(model)
        try:
            import torch
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError:
            raise self.missing_runtime() from None
        self._torch = torch
        try:
            data = model.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {model}: {exc.strerror or exc}") from None
        # One thread pool per process (XNNPACK's): sized before the program's first run.
        self._threads = self.threads()
        portable_lib._unsafe_reset_threadpool(self._threads)
        self._pool = int(portable_lib._threadpool_get_thread_count())
        try:
            program = Runtime.get().load_program(data)
            if "forward" not in program.method_names:
                raise ValueError(f"no 'forward' method (methods: {sorted(program.method_names)})")
            self._program, self._method = program, program.load_method("forward")
            meta = self._method.metadata
        except Exception as exc:  # corrupt file, unknown op or backend: the user's input
            raise UsageError(f"cannot load {model}: executorch: {first_line(exc)}") from None
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise UsageError(f"{model.name}: SUT {self.name!r} supports one input and one output, "
                             f"the program has {meta.num_inputs()} and {meta.num_outputs()}")
        self._in = _spec("input", meta.input_tensor_meta(0))
        self._out = _spec("output", meta.output_tensor_meta(0))
        self._delegates = delegates(data)
        digest = hashlib.sha256(data).hexdigest()
        self._precision = self._pinned_precision(model, digest) or sidecar_precision(model, digest)
        self._in_buf = np.zeros(self._in.shape, dtype=self._in.dtype)
        # The tensor shares the numpy buffer's memory: prepare() writes what execute() reads.
        self._inputs = [torch.from_numpy(self._in_buf)]
        self._execute = self._method._method  # the pybind method: no wrapper frame when timed
        self._outputs: list = []
        for _ in range(WARMUP):
            self.infer()
        self.output()  # the output converts to the spec now, not first in the accuracy pass

    def _pinned_precision(self, model: Path, digest: str) -> str | None:
        """The rule set's precision for a reference program (digits01_pt2e_int8.pte)."""
        entry = self.benchmark.entry_for(model) if self.benchmark is not None else None
        if entry is None or entry.sha256 != digest:
            return None
        return entry.precision

    def input_spec(self) -> TensorSpec:
        return self._in

    def output_spec(self) -> TensorSpec:
        return self._out

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self._in_buf, sample.reshape(self._in.shape))

    def infer(self) -> None:
        self._outputs = self._execute(self._inputs)

    def output(self) -> np.ndarray:
        return np.array(self._outputs[0].numpy(), dtype=self._out.dtype, copy=True)

    def describe(self) -> SUTDescription:
        xnnpack = "XnnpackBackend" in self._delegates
        extra = {"api": "executorch.runtime (Runtime, Program, Method)",
                 "xnnpack_delegated": xnnpack, "delegates": list(self._delegates),
                 "threadpool_threads": self._pool, "torch_version": self._torch.__version__}
        return SUTDescription(name=self.name, runtime=self.runtime,
                              runtime_version=self.runtime_version() or "unknown",
                              device=f"CPU ({cpu_model()})", model_format=self._format,
                              precision=self._in.dtype, threads=self._threads, extra=extra,
                              inference_precision=self._precision if self._precision not in
                              (None, self._in.dtype) else None)

    def close(self) -> None:
        self._outputs, self._inputs = [], []
        self._execute = self._method = self._program = None
