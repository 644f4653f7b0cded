"""The hooks tinyharness calls: pyproject.toml's entry point names this module.

Keep it light: tinyharness imports it for every command, --help included. Import the SUT (numpy,
the runtime's bindings) inside the hook, never here.
"""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import AcmeNpuSUT

    register(AcmeNpuSUT)
