"""PyTorch on the CPU: a ``torch.export`` program (.pt2) or TorchScript (.pt), eager or
``torch.compile`` (inductor)."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import TorchCPU  # imports no torch: the runtime is imported in load()

    register(TorchCPU)
