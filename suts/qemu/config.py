"""The ``qemu`` SUT's options: the board and its clock, memory limits that emulate a smaller MCU,
and the serial link settings it shares with the ``serial`` SUT."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tinyharness.errors import UsageError
from tinyharness.firmware.qemu import MAX_SHIFT  # noqa: F401 (re-exported for the CLI)
from tinyharness.sut_config import option
from tinyharness.suts.serial.config import LinkConfig

DEFAULT_BOARD = "mps2-an386"
DEFAULT_SHIFT = 3
MAX_MEMORY = 1 << 30
_SIZE = re.compile(r"(\d+)\s*([kKmM]?)(i?[bB])?")


def board_name(text: str) -> str:
    from tinyharness.firmware.boards import BOARDS

    name = text.strip().lower()
    if name not in BOARDS:
        raise ValueError(f"expected one of {', '.join(sorted(BOARDS))}")
    return name


def icount_shift(text: str) -> int | None:
    """A shift 0..MAX_SHIFT, or ``off`` (the device clock follows the host: not reproducible)."""
    value = str(text).strip().lower()
    if value in ("off", "none"):
        return None
    if not value.isdigit() or not 0 <= int(value) <= MAX_SHIFT:
        raise ValueError(f"expected a shift from 0 to {MAX_SHIFT} (2^shift ns per instruction) "
                         "or off")
    return int(value)


def memory_size(text: str) -> int:
    """Bytes: ``262144``, ``256K`` or ``1M`` (binary units)."""
    match = _SIZE.fullmatch(str(text).strip())
    value = int(match.group(1)) << {"": 0, "k": 10, "m": 20}[match.group(2).lower()] if match else 0
    if not 1024 <= value <= MAX_MEMORY:
        raise ValueError("expected a size from 1K to 1G, like 256K or 2M (bytes, binary units)")
    return value


def elf_path(text: str) -> str:
    path = Path(text).expanduser()
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    if magic != b"\x7fELF":
        raise ValueError("expected an ELF file (the linked firmware, e.g. firmware.elf)")
    return str(path.resolve())


@dataclass(frozen=True)
class QemuConfig(LinkConfig):
    board: str = option(f"emulated board (default {DEFAULT_BOARD}, Cortex-M4; mps2-an500 is a "
                        "Cortex-M7, mps2-an385 a Cortex-M3; 'tinyharness dut boards' lists them)",
                        board_name, DEFAULT_BOARD)
    icount: int | None = option(f"QEMU -icount shift (default {DEFAULT_SHIFT}): the device clock "
                                "advances 2^shift ns per guest instruction, deterministic; 'off' "
                                "follows the host clock (not reproducible)", icount_shift,
                                DEFAULT_SHIFT)
    rom_limit: int | None = option("flash to link against instead of the board's (e.g. 1M): "
                                   "emulates a smaller MCU; a firmware that does not fit is refused",
                                   memory_size)
    ram_limit: int | None = option("RAM to link against instead of the board's (e.g. 320K)",
                                   memory_size)
    firmware: str | None = option("a firmware ELF to run instead of building one (e.g. your own "
                                  "port of the EEMBC API, linked for the board): its sha256 and "
                                  "sizes are recorded; the model is then only hashed", elf_path)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.firmware is not None and (self.rom_limit or self.ram_limit):
            raise UsageError("--sut-option firmware=ELF runs a firmware as built: rom_limit and "
                             "ram_limit apply only to the firmware tinyharness builds")
