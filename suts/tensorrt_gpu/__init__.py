"""NVIDIA TensorRT 10 on a CUDA GPU: an engine built from the ONNX model and cached on disk."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import TensorRTGPU

    register(TensorRTGPU)
