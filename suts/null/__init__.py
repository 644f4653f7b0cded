"""The null SUT: returns at once; the harness drives it to measure its own per-query overhead."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import NullSUT

    register(NullSUT)
