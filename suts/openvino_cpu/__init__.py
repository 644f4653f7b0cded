"""OpenVINO on the CPU plugin (.onnx and .tflite read directly)."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import OpenVINOCPU

    register(OpenVINOCPU)
