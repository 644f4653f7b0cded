"""Building a serialized TensorRT 10 engine from an ONNX file (``tensorrt.Builder``,
``OnnxParser``, ``IBuilderConfig``, ``build_serialized_network``), with a bounded build time.

Precision is set through the builder flags of TensorRT 10's weakly typed networks: fp32 clears
``TF32`` (on by default, a 10-bit mantissa in matrix products), ``FP16`` lets
TensorRT choose fp16 kernels where faster (network inputs and outputs keep the model's types),
``INT8`` enables the explicit quantization of the graph's Q/DQ nodes. TensorRT 11 removed both
flags (strong typing only), which is why the SUT requires TensorRT 10.

A dynamic batch dimension gets one optimization profile: min 1, opt = max = the batch the SUT runs
(1 for single-stream, ``offline_batch`` offline). A build is cancelled through an
``IProgressMonitor`` once it passes its deadline (``step_complete`` returning False).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tinyharness.errors import UsageError
from tinyharness.sut import SUTError

TENSORRT_MAJOR = 10
MAX_ERRORS = 32


@dataclass(frozen=True)
class BuildRequest:
    model: Path
    precision: str  # fp32, fp16, int8 (already checked against the graph)
    input_rest: tuple[int, ...]  # the input's dimensions after the batch
    max_batch: int  # 1: a batch-1 profile; ignored when the model's batch is fixed
    dynamic_batch: bool
    workspace_mb: int | None
    timeout_s: float


_logger = None


def make_logger(trt):
    """The process's TensorRT logger, which keeps the error messages (for one-line errors) and
    drops the rest (TensorRT's warnings would go to stderr, outside the run's logs). One per
    process: TensorRT keeps the first logger it is given for its global uses and warns when
    another builder or runtime brings a different one."""
    global _logger
    if _logger is not None:
        return _logger

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                del self.errors[:-MAX_ERRORS]  # bounded: a long run keeps the latest few
                self.errors.append(" ".join(str(msg).split()))

    _logger = Logger()
    return _logger


def check_version(trt) -> str:
    version = str(trt.__version__)
    if version.split(".")[0] != str(TENSORRT_MAJOR):
        raise UsageError(f"SUT 'tensorrt-gpu' needs TensorRT {TENSORRT_MAJOR}.x, found {version} "
                         f"(11 removed the FP16/INT8 builder flags): pip install "
                         f"'tensorrt-cu12>={TENSORRT_MAJOR},<{TENSORRT_MAJOR + 1}'")
    return version


def _monitor(trt, deadline: float):
    class Deadline(trt.IProgressMonitor):
        """Cancels the build at ``deadline`` (time.monotonic); called from builder threads."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            pass

        def step_complete(self, phase_name, step) -> bool:
            if time.monotonic() > deadline:
                self.cancelled = True
            return not self.cancelled

        def phase_finish(self, phase_name) -> None:
            pass

    return Deadline()


def build(trt, logger, request: BuildRequest) -> bytes:
    """The serialized engine for ``request``. A model TensorRT's parser refuses is a one-line
    UsageError with the parser's first error; a failed or timed-out build is a SUTError."""
    logger.errors.clear()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(request.model)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        first = (errors or logger.errors or ["unknown parser error"])[0]
        raise UsageError(f"cannot load {request.model}: tensorrt: {' '.join(first.split())}")
    config = builder.create_builder_config()
    if request.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_mb << 20)
    if request.precision == "fp32":  # TF32 (on by default on Ampere and later) is not fp32
        config.clear_flag(trt.BuilderFlag.TF32)
    elif request.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif request.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if request.dynamic_batch:
        name, rest = network.get_input(0).name, request.input_rest
        profile = builder.create_optimization_profile()
        profile.set_shape(name, (1, *rest), (request.max_batch, *rest), (request.max_batch, *rest))
        config.add_optimization_profile(profile)
    monitor = _monitor(trt, time.monotonic() + request.timeout_s)
    config.progress_monitor = monitor
    serialized = builder.build_serialized_network(network, config)
    if monitor.cancelled:
        raise SUTError(f"TensorRT engine build of {request.model.name} cancelled after "
                       f"{request.timeout_s:g} s (--sut-option build_timeout_s)")
    if serialized is None:
        reason = logger.errors[0] if logger.errors else "no engine and no error message"
        raise SUTError(f"TensorRT engine build of {request.model.name} failed: {reason}")
    return bytes(memoryview(serialized))
