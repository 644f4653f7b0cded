"""Edge Impulse Linux models (.eim): the executable serves Edge Impulse's runner protocol on a Unix
socket; the harness starts it, classifies through it and stops it."""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import EdgeImpulseEim

    register(EdgeImpulseEim)
