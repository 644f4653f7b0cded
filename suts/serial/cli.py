"""``tinyharness dut``: serial devices under test (the MLPerf Tiny / EEMBC serial protocol).

The serial plugin adds this group to the CLI through the ``register_commands`` hook. Only click is
imported here; the commands import the rest, so ``tinyharness --help`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from tinyharness.errors import UsageError

from .config import MAX_BAUD, MAX_TIMEOUT_S


@click.group()
def dut() -> None:
    """Serial DUTs speaking the MLPerf Tiny / EEMBC protocol.

    The protocol as the serial SUT and the emulator speak it: 'tinyharness docs dut-protocol'.
    """


# Imported after ``dut`` exists: importing tinyharness.cli.types runs tinyharness.cli, which
# registers the plugins' commands and so imports ``dut`` from this module while it is half done.
from tinyharness.cli.types import count, finite  # noqa: E402


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

    from .emulator import Emulator, Faults

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


@dut.command("list")
@click.option("--all", "include_all", is_flag=True, help="Also list ports without a USB ID or "
              "description (e.g. the idle /dev/ttyS* of a PC).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_ports_cmd(include_all, as_json) -> None:
    """List serial ports with their USB VID:PID, marking known development boards."""
    from .ports import list_ports

    ports = list_ports(include_all)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in ports], indent=1))
        return
    if not ports:
        click.echo("no serial ports found" + ("" if include_all else " (try --all)"))
        return
    for p in ports:
        board = f"known board: {p.board}" if p.known else "unknown device"
        click.echo(f"{p.device}\t{p.usb_id or '-'}\t{board}\t{p.description}")


@dut.command("probe")
@click.argument("port")
@click.option("--baud", type=count(1, MAX_BAUD), default=115200, show_default=True,
              help="Baud rate of the firmware (the AD reference uses 921600).")
@click.option("--timeout", type=finite(0, MAX_TIMEOUT_S, min_open=True), default=2.0,
              show_default=True, help="Seconds to wait for each response line.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def probe_cmd(port, baud, timeout, as_json) -> None:
    """Ask the DUT on PORT who it is: name%, profile% and timestamp% (MLPerf Tiny protocol)."""
    import serial

    from .ports import probe
    from .protocol import DUTError

    try:
        found = probe(port, baud, timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise UsageError(f"cannot open serial port {port}: {exc}") from None
    except DUTError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    for key in ("port", "baud", "name", "profile", "model", "timestamp_mode", "lap_us_sample",
                "seconds"):
        click.echo(f"{key:15s}: {found[key]}")
