"""ONNX Runtime on the CPU execution provider (IO binding)."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import OnnxRuntimeCPU

    register(OnnxRuntimeCPU)
