"""Neural Magic DeepSparse (1.8, the last release with wheels) on the CPU, ONNX models."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import DeepSparseCPU

    register(DeepSparseCPU)
