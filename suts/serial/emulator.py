"""An emulated DUT on a real pseudo-terminal: the reference firmware (firmware.py) behind a tty.

The slave side (``emulator.port``, e.g. /dev/pts/7) is what a host opens with pyserial; it is put in
raw mode (no echo, no CR/LF translation) so bytes pass unchanged. A background thread reads the
master side and feeds the firmware, whose output is written back as it is produced. The emulator
keeps the slave open itself, so the host may open and close the port at will without a hang-up.

The boot banner is written once, at :meth:`Emulator.start`. pyserial flushes pending input when it
opens a port, so a host that wants to read the banner opens the port before ``start()`` (or calls
:meth:`Emulator.reset`, a press of the reset button).

Faults for tests are deterministic for a given seed and byte stream; see :class:`Faults`.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import math
import os
import random
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, fields
from pathlib import Path

from tinyharness.errors import UsageError

from .firmware import READY, Firmware, load_firmware

FAULT_HELP = ("drop=P (lose each received byte with probability P, 0..1), garble=P (flip one bit of a "
              "received byte; '%' is never made nor hit, so framing survives), ready-delay=S (each "
              "m-ready S seconds late, 0..3600), omit-ready=K (no m-ready after the K-th command), error=K "
              "(answer the K-th command with e-[...] instead of running it), disconnect=K (close the "
              "port after the K-th command's response)")


MAX_READY_DELAY_S = 3600.0  # ready-delay: at most an hour


@dataclass
class Faults:
    """Fault injection. Commands are counted from 1 after boot, garbled or not. Probabilities are
    finite numbers in [0, 1], the delay finite seconds in [0, 3600], K a whole number >= 1; anything
    else (``nan`` and ``inf`` included) is a one-line UsageError."""

    drop: float = 0.0
    garble: float = 0.0
    ready_delay: float = 0.0
    omit_ready: int | None = None
    error: int | None = None
    disconnect: int | None = None

    def __post_init__(self) -> None:
        for name in ("drop", "garble", "ready_delay"):
            value, top = getattr(self, name), MAX_READY_DELAY_S if name == "ready_delay" else 1.0
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0 <= value <= top:
                raise UsageError(f"fault {name.replace('_', '-')}={value!r}: must be a finite "
                                 f"number from 0 to {top:g}")
        for name in ("omit_ready", "error", "disconnect"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise UsageError(f"fault {name.replace('_', '-')}={value!r}: must be a command "
                                 "number >= 1")

    @classmethod
    def parse(cls, pairs: tuple[str, ...] | list[str]) -> Faults:
        """``["drop=0.1", "omit-ready=3"]`` -> Faults (a one-line UsageError on a bad pair)."""
        known = {f.name.replace("_", "-"): f.name for f in fields(cls)}
        values: dict[str, float | int] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            name = known.get(key.strip())
            try:
                if not sep or name is None:
                    raise ValueError
                values[name] = float(text) if name in ("drop", "garble", "ready_delay") else int(text)
            except ValueError:
                raise UsageError(f"bad --fault {pair!r}; expected one of: {FAULT_HELP}") from None
            try:
                cls(**{name: values[name]})  # the range check of __post_init__
            except UsageError as exc:
                raise UsageError(f"bad --fault {pair!r}: {exc}") from None
        return cls(**values)


class _Disconnect(Exception):
    """Raised from inside the firmware to unplug the device."""


class Emulator:
    """``Emulator(model)`` or ``Emulator(firmware=...)``; ``start()``/``stop()`` or ``with``."""

    def __init__(self, model: Path | str | None = None, *, runtime: str = "tflite-micro",
                 model_id: str | None = None, firmware: Firmware | None = None,
                 faults: Faults | None = None, seed: int = 0) -> None:
        if firmware is None:
            if model is None:
                raise UsageError("the emulator needs a model (or a firmware)")
            firmware = load_firmware(model, runtime, model_id)
        self.firmware, self.faults = firmware, faults or Faults()
        self._rng = random.Random(seed)
        firmware.sink, firmware.on_command = self._write, self._command
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)  # a host that stops reading must not block stop()
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._reset: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.disconnected = False
        self.error: BaseException | None = None  # what ended the loop unexpectedly, if anything

    def __del__(self) -> None:  # an emulator never started still holds its pty
        if getattr(self, "_thread", True) is None:
            self._close()

    def __enter__(self) -> Emulator:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Boot (the banner is written once) and serve the port in a background thread."""
        if self._thread is not None or self._closed:
            raise RuntimeError("an emulator starts once")
        self._boot()
        self._thread = threading.Thread(target=self._loop, name=f"dut-emulator {self.port}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the port. A command still running (a long ``infer``) finishes in
        its daemon thread, which then closes the port; its output is dropped."""
        self._stop.set()
        if self._thread is None:
            self._close()
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def reset(self, timeout: float = 5.0) -> None:
        """Press the reset button: power-on state, then a new boot banner."""
        if not self.running:
            raise RuntimeError("the emulator is not running")
        done = self._reset = threading.Event()  # the loop thread owns the firmware
        if not done.wait(timeout):
            raise TimeoutError("the emulator did not reset (busy with a command?)")

    def _boot(self) -> None:
        # Characters received before the parser is enabled are ignored: drop what is pending.
        with contextlib.suppress(termios.error, OSError):
            termios.tcflush(self._master, termios.TCIFLUSH)
        self.firmware.reset()
        self.firmware.boot()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if self._reset is not None:
                    self._boot()
                    self._reset.set()
                    self._reset = None
                if not select.select([self._master], [], [], 0.05)[0]:
                    continue
                try:
                    data = os.read(self._master, 4096)
                except BlockingIOError:
                    continue
                self.firmware.feed(self._inject(data))
        except _Disconnect:
            self._drain(2.0)
            self.disconnected = True
        except BaseException as exc:  # noqa: BLE001 (kept for the owner to inspect)
            self.error = exc
        finally:
            self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _write(self, data: bytes) -> None:
        """The UART: write everything unless stopping (the host may be slow to read)."""
        view = memoryview(data)
        while view and not self._stop.is_set() and not self._closed:
            if select.select([], [self._master], [], 0.05)[1]:
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(self._master, view):]

    def _drain(self, limit: float) -> None:
        """Before unplugging, let the host read the last response (closing loses unread bytes)."""
        pending, deadline, quiet = array.array("i", [0]), time.monotonic() + limit, 0
        while time.monotonic() < deadline and quiet < 5:  # written bytes reach the slave's queue
            time.sleep(0.01)                              # a little later: want 50 ms of empty
            with contextlib.suppress(OSError):
                fcntl.ioctl(self._slave, termios.FIONREAD, pending)
            quiet = quiet + 1 if pending[0] == 0 else 0

    def _inject(self, data: bytes) -> bytes:
        """Byte faults, decided byte by byte so that the outcome does not depend on read sizes."""
        drop, garble = self.faults.drop, self.faults.garble
        if not drop and not garble:
            return data
        out = bytearray()
        for c in data:
            if drop and self._rng.random() < drop:
                continue
            if garble and c != 0x25 and self._rng.random() < garble:
                c ^= 1 << self._rng.choice([b for b in range(8) if c ^ (1 << b) != 0x25])
            out.append(c)
        return bytes(out)

    def _command(self, fw: Firmware, cmd: bytes) -> None:
        """Firmware.on_command: run the command with the per-command faults applied."""
        k, f = fw.commands, self.faults
        if f.error == k:
            fw.emit(b"e-[Injected fault on command %d]\r\n" % k)
        else:
            fw.run_command(cmd, ready=False)
        if f.omit_ready != k:
            if f.ready_delay:
                self._stop.wait(f.ready_delay)
            fw.emit(READY)
        if f.disconnect == k:
            raise _Disconnect
