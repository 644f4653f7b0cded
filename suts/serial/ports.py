"""Finding a DUT: the serial ports with their USB IDs and known boards, the handshake that
identifies the firmware on a port (boot banner, ``name%``, ``profile%``, timestamp mode), and a probe."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from .protocol import FLOOD, MAX_LINES, READY, DUTError, DUTLink, Response


@dataclass(frozen=True)
class DeviceInfo:
    """What the handshake learnt: vendor name, firmware profile, model id, timestamp mode."""

    name: str | None
    profile: str | None
    model: str | None
    timestamp_mode: str | None
    banner: tuple[str, ...] = ()
    lap_us: int | None = None  # a `timestamp%` reading, when one was taken

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "model": self.model,
                "timestamp_mode": self.timestamp_mode, "lap_us_sample": self.lap_us}


def read_banner(link: DUTLink, wait: float = 0.3) -> list[str]:
    """Lines the DUT printed at boot (if any): read until ``m-ready`` or ``wait`` s of silence,
    for at most a line timeout; more than :data:`MAX_LINES` lines without ``m-ready`` is a flood."""
    lines: list[str] = []
    deadline = time.monotonic() + max(link.line_timeout, wait)
    while True:
        try:
            line = link.readline(wait, deadline)
        except DUTError as exc:
            if not exc.retryable:
                raise
            return lines
        lines.append(line)
        if READY in line:
            return lines
        if len(lines) >= MAX_LINES:
            raise DUTError(f"{len(lines)} boot lines without m-ready ({FLOOD})", "boot", line,
                           retryable=False)


def identify(link: DUTLink, timestamp: bool | None = None) -> DeviceInfo:
    """Boot banner, ``name%`` and ``profile%`` (3 tries each), and the timestamp mode: from the
    banner, else (or when ``timestamp`` is True) from a ``timestamp%`` reading."""
    banner = read_banner(link)
    mode = Response("boot", tuple(banner)).timestamp_mode
    name = link.retrying("name", expect="m-name-dut-").name
    profile = link.retrying("profile", expect="m-model-")
    lap = None
    if timestamp or (timestamp is None and mode is None):
        # An energy build only pulses a GPIO: no m-lap-us line, twice (once could be a late
        # m-ready of an earlier command answering this one).
        for _ in range(2):
            laps = link.retrying("timestamp").laps
            if laps:
                lap = laps[0]
                break
        mode = mode or ("performance" if lap is not None else "energy")
    return DeviceInfo(name, profile.profile, profile.model, mode, tuple(banner), lap)


# (vendor id, product id or None for any) -> board / probe name. VID:PID of common MLPerf Tiny hosts.
KNOWN_BOARDS: dict[tuple[int, int | None], str] = {
    (0x0483, 0x374B): "ST-LINK/V2-1 (STM32 Nucleo / Discovery)",
    (0x0483, 0x374E): "ST-LINK/V3 (STM32 Nucleo)",
    (0x0483, 0x3752): "ST-LINK/V2-1 (STM32 Nucleo)",
    (0x0483, 0x3753): "ST-LINK/V3 (STM32 Nucleo / Discovery)",
    (0x0483, 0x5740): "STM32 virtual COM port",
    (0x2341, None): "Arduino",
    (0x2A03, None): "Arduino (arduino.org)",
    (0x1366, None): "SEGGER J-Link (NXP / Silicon Labs boards)",
    (0x1FC9, None): "NXP (LPC-Link2 / MCU-Link)",
    (0x0D28, 0x0204): "Arm DAPLink / mbed (NXP FRDM, micro:bit)",
    (0x1915, None): "Nordic Semiconductor",
    (0x0403, 0x6001): "FTDI FT232R USB-UART",
    (0x0403, 0x6010): "FTDI FT2232 (e.g. TI LaunchPad)",
    (0x0451, None): "Texas Instruments",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-UART",
    (0x2E8A, None): "Raspberry Pi (RP2040 / Pico)",
    (0x303A, None): "Espressif (ESP32)",
}


def known_board(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN_BOARDS.get((vid, pid)) or KNOWN_BOARDS.get((vid, None))


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    usb_id: str | None  # "0483:374B"
    serial_number: str | None
    manufacturer: str | None
    board: str | None  # a known board's name, None when the USB ID is not in the table

    @property
    def known(self) -> bool:
        return self.board is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"known": self.known}


def list_ports(include_all: bool = False) -> list[PortInfo]:
    """The serial ports pyserial finds; without ``include_all``, only ports with a USB ID or a
    real description (Linux lists dozens of idle /dev/ttyS*)."""
    from serial.tools import list_ports as lp

    found = []
    for p in sorted(lp.comports(), key=lambda p: p.device):
        usb = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else None
        if not include_all and usb is None and p.description in ("n/a", "", None):
            continue
        found.append(PortInfo(p.device, p.description or "", usb, p.serial_number, p.manufacturer,
                              known_board(p.vid, p.pid)))
    return found


def probe(port: str, baud: int = 115200, timeout: float = 2.0) -> dict[str, Any]:
    """Open ``port``, read any boot banner, send ``name%``, ``profile%`` and ``timestamp%``.

    Returns {port, baud, name, profile, model, timestamp_mode, lap_us_sample, banner, seconds};
    raises :class:`OSError`-derived serial errors when the port cannot be opened and
    :class:`DUTError` when nothing speaking the protocol answers.
    """
    import serial

    start = time.monotonic()
    ser = serial.serial_for_url(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
    try:
        link = DUTLink(ser, line_timeout=timeout)
        info = identify(link, timestamp=True)
    except DUTError as exc:
        raise DUTError(f"no MLPerf Tiny DUT answered on {port} at {baud} baud: {exc}",
                       retryable=False) from exc
    finally:
        ser.close()
    return {"port": port, "baud": baud, **info.to_dict(), "banner": list(info.banner),
            "seconds": round(time.monotonic() - start, 3)}
