"""Serial DUTs: the MLPerf Tiny / EEMBC serial protocol, host side and a firmware emulator.

The plugin registers the ``serial`` SUT and the ``tinyharness dut`` commands; this module stays
light (the CLI imports it for ``--help``).
"""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import SerialSUT

    register(SerialSUT)


@hookimpl
def register_commands(cli):
    from .cli import dut

    cli.add_command(dut)
