"""``tinyharness dut list`` and ``tinyharness dut probe``: find a DUT on the serial ports.

Plain click commands; the ``dut`` group (cli_dut.py) attaches them with ``add_command``.
"""

from __future__ import annotations

import json

import click

from .errors import UsageError


@click.command("list")
@click.option("--all", "include_all", is_flag=True, help="Also list ports without a USB ID or "
              "description (e.g. the idle /dev/ttyS* of a PC).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_ports_cmd(include_all, as_json) -> None:
    """List serial ports with their USB VID:PID, marking known development boards."""
    from .suts.serial.ports import list_ports

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


@click.command("probe")
@click.argument("port")
@click.option("--baud", type=int, default=115200, show_default=True,
              help="Baud rate of the firmware (the AD reference uses 921600).")
@click.option("--timeout", type=float, default=2.0, show_default=True,
              help="Seconds to wait for each response line.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def probe_cmd(port, baud, timeout, as_json) -> None:
    """Ask the DUT on PORT who it is: name%, profile% and timestamp% (MLPerf Tiny protocol)."""
    import serial

    from .suts.serial.ports import probe
    from .suts.serial.protocol import DUTError

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
