"""``tinyharness dut``: serial devices under test (the MLPerf Tiny / EEMBC serial protocol).

Only click is imported here; the commands import the rest, so ``tinyharness --help`` stays light.
Commands that find or probe real ports attach to this group with ``dut.add_command``.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def dut() -> None:
    """Serial DUTs speaking the MLPerf Tiny / EEMBC protocol (docs: mlperf-tiny.md §6)."""


@dut.command()
@click.option("--model", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="MODEL.tflite", help="Full-integer (int8) model the emulated firmware runs.")
@click.option("--runtime", type=click.Choice(["tflite-micro", "litert"]), default="tflite-micro",
              show_default=True, help="tflite-micro: the microcontroller runtime (slow reference "
              "kernels, device-exact); litert: LiteRT's built-in kernels (faster).")
@click.option("--model-id", type=click.Choice(["kws01", "vww01", "ic01", "ic02", "ad01"]),
              help="What 'profile' reports and which load/result code runs (default: from the "
              "model's input shape; ic02 must be given).")
@click.option("--fault", "faults", multiple=True, metavar="KEY=VALUE",
              help="Inject a fault, repeatable: drop=P, garble=P, ready-delay=S, omit-ready=K, "
              "error=K, disconnect=K (K counts commands from 1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the byte faults.")
def emulate(model, runtime, model_id, faults, seed) -> None:
    """Emulate a DUT running the MLPerf Tiny reference firmware on a pseudo-terminal.

    Prints the port path (one line), then serves it until Ctrl-C or SIGTERM. The boot banner is
    written once, at start: pyserial discards input pending when it opens a port, so a host opening
    the port afterwards sees no banner (as with a board that was already running). The DUT clock
    (m-lap-us) is the host's monotonic clock in microseconds, modulo 2**32.
    """
    import signal
    import sys
    import threading

    from .suts.serial.emulator import Emulator, Faults

    emulator = Emulator(model, runtime=runtime, model_id=model_id, faults=Faults.parse(faults),
                        seed=seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emulator.start()
    try:
        click.echo(emulator.port)
        sys.stdout.flush()
        while emulator.running and not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    if emulator.disconnected:
        click.echo("dut emulate: disconnected (injected fault)", err=True)
    if emulator.error is not None:
        raise click.ClickException(f"emulator failed: {emulator.error!r}")


from .cli_dut_ports import list_ports_cmd, probe_cmd  # noqa: E402 (imports only click)

dut.add_command(list_ports_cmd)
dut.add_command(probe_cmd)
