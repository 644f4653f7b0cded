"""ExecuTorch's Python runtime on the CPU: a .pte program, XNNPACK-delegated where it was lowered."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import ExecuTorchCPU

    register(ExecuTorchCPU)
