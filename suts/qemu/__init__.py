"""The ``qemu`` SUT: the project's C firmware on an emulated Cortex-M board, over the serial protocol.

Registers the SUT and ``tinyharness dut qemu`` / ``dut boards`` (added to the serial plugin's
``dut`` group); light to import: the CLI imports it for ``--help``.
"""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import QemuSUT

    register(QemuSUT)


@hookimpl
def register_commands(cli):
    from tinyharness.suts.serial.cli import dut

    from .cli import boards, qemu

    dut.add_command(qemu)
    dut.add_command(boards)
