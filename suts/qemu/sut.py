"""The project's MLPerf Tiny firmware on an emulated Cortex-M board (QEMU), driven over its UART.

``load`` compiles the benchmark's int8 ``.tflite`` to C, builds the firmware for the board (cached
by a hash of sources, model, board and toolchain), starts QEMU with UART0 on a local TCP socket and
then behaves exactly as the ``serial`` SUT on that port: the same protocol code, the same checks.
The device clock is QEMU's virtual time under ``-icount``: deterministic, 2^shift ns per guest
instruction, *not* cycle-accurate (no wait states, pipeline or memory timing); every result says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyharness.sut import SUTDescription, SUTError
from tinyharness.suts.serial.protocol import DUTError
from tinyharness.suts.serial.sut import DEFAULT_BAUD, SerialSUT

from .config import QemuConfig


def _quiet(read) -> str:
    try:
        return read()
    except Exception:  # noqa: BLE001 - QEMU absent: the description still renders
        return "(version unknown)"


def clock_label(shift: int | None) -> str:
    if shift is None:
        return "host time (QEMU without -icount): not reproducible, not cycle-accurate"
    return f"virtual time: 2^{shift} ns per instruction, not cycle-accurate"


class QemuSUT(SerialSUT):
    name = "qemu"
    summary = ("the project's C firmware (int8 kernels) on an emulated Cortex-M board in QEMU, "
               "device-timed in virtual time")
    runtime = "pyserial"
    model_formats = ("tflite",)
    devices = ("qemu",)
    needs_model = True  # the benchmark's int8 .tflite, compiled into the firmware
    config_class = QemuConfig

    _qemu = None
    _qemu_version: str | None = None
    firmware = None

    def load(self, model: Path | None) -> None:
        from tinyharness.firmware.build import build_firmware, describe_elf
        from tinyharness.firmware.qemu import QemuError, QemuProcess

        c, bench = self.config, self.benchmark
        if bench is None or model is None:
            raise SUTError("SUT 'qemu' needs a benchmark and its model")
        self._model_file = self._hash_model(Path(model))
        if c.firmware is not None:  # the user's own build: recorded as it is
            self.firmware = describe_elf(Path(c.firmware), c.board, bench.id)
        else:
            self.firmware = build_firmware(bench.id, c.board, Path(model), rom_limit=c.rom_limit,
                                           ram_limit=c.ram_limit)
        self._qemu = QemuProcess(self.firmware.elf, c.board, c.icount)
        self._qemu_version = self._qemu.version
        try:
            url = self._qemu.start()
        except QemuError as exc:
            raise SUTError(str(exc)) from None
        self._guarded(lambda: self._connect(url, DEFAULT_BAUD))

    # -- a QEMU that died says so, instead of a bare "disconnected" ----------------------------
    def _guarded(self, step):
        try:
            return step()
        except DUTError as exc:
            qemu = self._qemu
            if qemu is not None and qemu.exited(within=2.0):
                code = qemu.returncode
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
                tail = qemu.log_tail().strip().splitlines()
                said = f"; it said: {tail[-1][:200]}" if tail else ""
                raise DUTError(f"QEMU ({self.config.board}) stopped ({how}){said}; the DUT link "
                               f"failed: {exc}", retryable=False) from exc
            raise

    def prepare(self, sample) -> None:
        self._guarded(lambda: SerialSUT.prepare(self, sample))

    def infer(self) -> None:
        self._guarded(lambda: SerialSUT.infer(self))

    def run_window(self, iterations: int, warmup: int) -> int:
        return self._guarded(lambda: SerialSUT.run_window(self, iterations, warmup))

    # -- the record ---------------------------------------------------------------------------
    def describe(self) -> SUTDescription:
        base = super().describe()
        fw, c = self.firmware, self.config
        qemu: dict[str, Any] = {
            "qemu_version": self._qemu_version,
            "board": c.board, "core": fw.core if fw else None, "icount_shift": c.icount,
            "device_clock": clock_label(c.icount), "emulated": True,
        }
        if fw is not None:
            qemu.update({"firmware_sha256": fw.sha256, "firmware_rom_bytes": fw.rom_bytes,
                         "firmware_ram_bytes": fw.ram_bytes, "firmware_elf": str(fw.elf),
                         "firmware_key": fw.key, "toolchain": fw.toolchain,
                         "rom_limit": c.rom_limit, "ram_limit": c.ram_limit})
        core = fw.core if fw else "Cortex-M"
        return SUTDescription(
            name=self.name, runtime="tinyharness firmware (int8 C kernels) on QEMU",
            runtime_version=qemu["qemu_version"] or "unknown",
            device=f"QEMU {c.board} ({core}, emulated board)", model_format="tflite",
            precision="int8", threads=None, extra={**base.extra, **qemu})

    @classmethod
    def system_fields(cls, recorded=None) -> dict[str, str]:
        """The emulated board as an MLPerf Tiny system description says it: board, core, memories,
        the virtual clock, the compilers (from a run's record; else the default board)."""
        from tinyharness.firmware.boards import get_board
        from tinyharness.firmware.qemu import qemu_version

        r = dict(recorded or {})
        board = get_board(r.get("board") or QemuConfig().board)
        qemu = r.get("qemu_version") or _quiet(qemu_version)
        shift = r["icount_shift"] if "icount_shift" in r else QemuConfig().icount
        rom, ram = r.get("firmware_rom_bytes"), r.get("firmware_ram_bytes")
        used = f" (firmware: {rom:,} B flash, {ram:,} B RAM)" if rom and ram else ""
        return {
            "Board Name": f"QEMU {board.name} (emulated Arm MPS2 board; not hardware)",
            "Processor(s) Name": f"Arm {board.core} (emulated by QEMU {qemu})",
            "Processor(s) Frequencies": f"{clock_label(shift)}; 25 MHz timer",
            "Processor memory type and capacity":
                f"{board.rom[1] // 1024} KiB code SRAM, {board.ram[1] // 1024} KiB data SRAM{used}",
            "Accelerator": "N/A", "Accelerator(s) Frequencies": "N/A",
            "Accelerator memory type and capacity": "N/A",
            "Hardware Notes": f"An emulated board: QEMU {qemu} -machine {board.name}"
                              + (f" -icount shift={shift}" if shift is not None else "")
                              + ". Latency and throughput are QEMU virtual time (an instruction "
                                "count), deterministic but not cycle-accurate: no wait states, "
                                "pipeline or memory timing. Not comparable with hardware results.",
            "Inference Framework": "tinyharness firmware: int8 C kernels and a model compiled "
                                   "from the .tflite (TFLite reference arithmetic)",
            "Operating System": "none (bare metal)",
            "ML Model Compiler(s)": "tinyharness.firmware.compiler (.tflite to C)",
            "General Compiler(s)": r.get("toolchain") or "arm-none-eabi-gcc",
        }

    def close(self) -> None:
        try:
            super().close()
        finally:
            qemu, self._qemu = self._qemu, None
            if qemu is not None:
                qemu.stop()
