"""The emulated boards a firmware is built for, with their memories as QEMU maps them.

On QEMU's MPS2 AN385/AN386/AN500 images code runs from ZBT SSRAM1 at 0x0 (the vector table is read
there: the "ROM") and data lives in SSRAM2/3 at 0x20000000 (the "RAM"), 4 MiB each (checked with
``info mtree``). A build may set smaller limits to emulate a smaller target MCU.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.errors import UsageError

MiB = 1 << 20


@dataclass(frozen=True)
class Board:
    """One QEMU machine (``name`` is its ``-machine`` value) and how to compile for it. ``rom`` and
    ``ram`` are (origin, size in bytes); ``family`` names the folder under ``src/board``."""

    name: str
    core: str
    cpu_flags: tuple[str, ...]
    rom: tuple[int, int]
    ram: tuple[int, int]
    description: str
    family: str = "mps2"

    def to_dict(self) -> dict:
        return {"name": self.name, "core": self.core, "cpu_flags": list(self.cpu_flags),
                "rom": list(self.rom), "ram": list(self.ram), "family": self.family}


_MPS2_ROM, _MPS2_RAM = (0x0000_0000, 4 * MiB), (0x2000_0000, 4 * MiB)

BOARDS: dict[str, Board] = {b.name: b for b in (
    # Its own -mcpu: newlib's v7e-m libraries use DSP instructions a Cortex-M3 lacks.
    Board("mps2-an385", "Cortex-M3", ("-mcpu=cortex-m3",), _MPS2_ROM, _MPS2_RAM,
          "ARM MPS2 FPGA image AN385 (Cortex-M3) in QEMU"),
    Board("mps2-an386", "Cortex-M4", ("-mcpu=cortex-m4",), _MPS2_ROM, _MPS2_RAM,
          "ARM MPS2 FPGA image AN386 (Cortex-M4) in QEMU"),
    Board("mps2-an500", "Cortex-M7", ("-mcpu=cortex-m7",), _MPS2_ROM, _MPS2_RAM,
          "ARM MPS2 FPGA image AN500 (Cortex-M7) in QEMU"),
)}
DEFAULT_BOARD = "mps2-an386"


def get_board(name: str) -> Board:
    """The board called ``name``; a one-line UsageError listing the boards otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UsageError(f"unknown board {name!r}; one of {', '.join(BOARDS)}") from None
