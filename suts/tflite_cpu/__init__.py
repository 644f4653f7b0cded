"""The TensorFlow Lite interpreter (LiteRT, or tflite-runtime) on the CPU."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import TFLiteCPU

    register(TFLiteCPU)
