"""The MLPerf Tiny reference DUT firmware as a pure class: bytes in, bytes out.

A byte-for-byte model of upstream ``benchmark/api/internally_implemented.cpp`` and the reference
``submitter_implemented.cpp`` files (docs/dut-protocol.md §6), quirks included: the 80-character
command buffer, ``strtok``/``atoi`` parsing, VWW's trailing comma, the unprefixed LF-only size lines,
an oversized ``db load`` that keeps its size, inference on stale input after a short load.
Inference runs on TFLite Micro (what runs on the MCU; like the device, it reuses the input tensor's
memory during an inference, so only the first of several sees the loaded sample) or on LiteRT's
built-in kernels (faster, input preserved).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tinyharness.errors import UsageError

from .backend import RUNTIMES, Backend  # noqa: F401 (Backend and RUNTIMES are part of this API)

EE_CMD_SIZE = 80
MAX_DB_INPUT_SIZE = 96 * 96 * 3
FW_VERSION = b"ULPMark for tinyML Firmware V0.0.1"
READY = b"m-ready\r\n"
# model id -> (input elements, bytes per element in the db buffer, results printed)
MODELS = {"kws01": (490, 1, 12), "vww01": (27648, 1, 2), "ic01": (3072, 1, 10),
          "ic02": (3072, 1, 10), "ad01": (640, 4, 640)}
SHAPES = {(49, 10, 1): "kws01", (96, 96, 3): "vww01", (32, 32, 3): "ic01", (640,): "ad01"}
HELP = (FW_VERSION + b"\r\n\r\n"
        b"help         : Print this information\r\n"
        b"name         : Print the name of the device\r\n"
        b"timestsamp   : Generate a timetsamp\r\n"
        b"db SUBCMD    : Manipulate a generic byte buffer\r\n"
        b"  load N     : Allocate N bytes and set load counter\r\n"
        b"  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n"
        b"  print [N=16] [offset=0]\r\n"
        b"             : Print N bytes at offset as hex\r\n"
        b"infer N [W=0]: Load input, execute N inferences after W warmup loops\r\n"
        b"results      : Return the result fp32 vector\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def clock_us() -> int:
    """The device clock: a monotonic microsecond count (printed modulo 2**32, like us_ticker_read)."""
    return time.perf_counter_ns() // 1000


def atoi(text: bytes) -> int:
    """C ``atoi`` as newlib does it on a 32-bit MCU: leading blanks, a sign, digits, junk -> 0,
    saturated to the int32 range."""
    s = text.lstrip(b" \t\n\v\f\r")
    sign = -1 if s[:1] == b"-" else 1
    s = s[1:] if s[:1] in (b"-", b"+") else s
    digits = len(s) - len(s.lstrip(b"0123456789"))
    value = sign * int(s[:digits] or b"0")
    return max(-(1 << 31), min((1 << 31) - 1, value))


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """QuantizeFloatToInt8: float32 division, C ``round`` (halves away from zero), clamp."""
    v = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    r = np.nan_to_num(np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point, nan=0.0)
    return np.clip(r, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """DequantizeInt8ToFloat: ``(q - zp) * scale`` in float32."""
    return (np.asarray(q, np.int32) - zero_point).astype(np.float32) * np.float32(scale)


def resolve_model_id(backend: Backend, model_id: str | None) -> str:
    """The given id (checked against the model), else the one its input shape implies."""
    dims = tuple(backend.shape[1:])
    if model_id is None:
        model_id = SHAPES.get(dims)
        if model_id is None:
            raise UsageError(f"cannot tell the model id from input shape {list(dims)}; pass one of "
                             f"{', '.join(MODELS)}")
    if model_id not in MODELS:
        raise UsageError(f"unknown model id {model_id!r}; one of {', '.join(MODELS)}")
    elements, _, results = MODELS[model_id]
    if int(np.prod(dims)) != elements or backend.output_size < results:
        raise UsageError(f"model id {model_id} expects {elements} input elements and {results} "
                         f"outputs; the model has {int(np.prod(dims))} and {backend.output_size}")
    return model_id


class Firmware:
    """Feed received bytes with :meth:`feed`; output comes back from it and, as it is produced
    (the ``infer`` lines in real time), goes to ``sink``. Bytes before :meth:`boot` are ignored.

    ``on_command(firmware, command)``, when set, runs instead of ``run_command(command)`` for each
    complete command (fault injection); ``commands`` counts them from 1."""

    def __init__(self, backend: Backend, model_id: str | None = None, *,
                 clock: Callable[[], int] = clock_us, vendor: str = "unspecified",
                 sink: Callable[[bytes], None] | None = None) -> None:
        self.backend = backend
        self.model_id = resolve_model_id(backend, model_id)
        self.elements, self.element_size, self.result_count = MODELS[self.model_id]
        self.clock, self.vendor, self.sink = clock, vendor.encode(), sink
        self.on_command: Callable[[Firmware, bytes], None] | None = None
        self._out: list[bytes] = []
        self.reset()

    def reset(self) -> None:
        """Power-on state: zeroed statics, parser disabled until :meth:`boot`."""
        self.booted = False
        self.commands = 0
        self._cmd = bytearray()  # g_cmd_buf: EE_CMD_SIZE + 1 slots
        self.buffer = bytearray(MAX_DB_INPUT_SIZE)  # gp_buff
        self.size = self.pos = 0  # g_buff_size, g_buff_pos
        self._ad_input = np.zeros(640, np.float32)  # AD's global input_float

    def emit(self, data: bytes) -> None:
        """th_printf."""
        self._out.append(data)
        if self.sink is not None:
            self.sink(data)

    def _collect(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def boot(self) -> bytes:
        """ee_benchmark_initialize: the banner, then the parser is enabled."""
        self._out = []
        self.emit(b"m-timestamp-mode-performance\r\n")
        self._timestamp()
        if self.model_id == "ad01":
            self.emit(b"Initialized\r\n")  # the AD reference's th_final_initialize
        self.emit(b"m-init-done\r\n")
        self.booted = True
        self.emit(READY)
        return self._collect()

    def feed(self, data: bytes) -> bytes:
        """ee_serial_callback for each byte; returns everything printed meanwhile."""
        self._out = []
        if self.booted:
            for c in data:
                if c == 0x25:  # '%': the NUL goes at g_cmd_pos (<= 80), so at most 80 characters
                    cmd, self._cmd = bytes(self._cmd[:EE_CMD_SIZE]), bytearray()
                    self.commands += 1
                    if self.on_command is not None:
                        self.on_command(self, cmd)
                    else:
                        self.run_command(cmd)
                elif len(self._cmd) <= EE_CMD_SIZE:
                    self._cmd.append(c)
                else:  # full: keep overwriting the last slot
                    self._cmd[EE_CMD_SIZE] = c
        return self._collect()

    def run_command(self, cmd: bytes, ready: bool = True) -> None:
        """ee_serial_command_parser_callback: one command (C string, ``strtok(" ")``)."""
        tokens = [t for t in cmd.split(b"\0", 1)[0].split(b" ") if t]
        tok = tokens[0] if tokens else None
        if tok == b"name":
            self.emit(b"m-name-dut-[%s]\r\n" % self.vendor)
        elif tok == b"timestamp":
            self._timestamp()
        elif tok == b"profile":
            self.emit(b"m-profile-[%s]\r\nm-model-[%s]\r\n" % (FW_VERSION, self.model_id.encode()))
        elif tok == b"help":
            self.emit(HELP)
        elif tok == b"db":
            self._db(tokens[1:])
        elif tok == b"infer":
            self._infer_command(tokens[1:])
        elif tok == b"results":
            self._results()
        else:  # an empty command: strtok gives NULL, newlib prints it as "(null)"
            self.emit(b"e-[Unknown command: %s]\r\n" % (tok if tok is not None else b"(null)"))
        if ready:
            self.emit(READY)

    def _timestamp(self) -> None:
        self.emit(b"m-lap-us-%d\r\n" % (self.clock() & 0xFFFFFFFF))

    def _db(self, args: list[bytes]) -> None:
        """ee_buffer_parse."""
        if not args:
            self.emit(b"e-[Command 'db' requires a subcommand]\r\n")
        elif args[0] == b"load":
            if len(args) < 2:
                self.emit(b"e-[Command 'db load' requires the # of bytes]\r\n")
                return
            self.size = atoi(args[1]) & 0xFFFFFFFF  # size_t: kept even when rejected below
            if self.size == 0:
                self.emit(b"e-[Command 'db load' must be >0 bytes]\r\n")
                return
            self.pos = 0
            if self.size > MAX_DB_INPUT_SIZE:
                self.emit(b"Supplied buffer size %d exceeds maximum of %d\n"
                          % ((self.size ^ 1 << 31) - (1 << 31), MAX_DB_INPUT_SIZE))  # %d of a size_t
            else:
                self.emit(b"m-[Expecting %d bytes]\r\n" % self.size)
        elif args[0] == b"print":
            self.emit(self._print_buffer())
        else:
            digits = args[0]
            if len(digits) & 1:
                self.emit(b"e-[Insufficent number of hex digits]\r\n")
                return
            for i in range(0, len(digits), 2):
                pair = digits[i:i + 2]
                if not _HEX.issuperset(pair):
                    self.emit(b"e-[Invalid hex digit '%s']\r\n" % pair)
                    return
                if self.pos < MAX_DB_INPUT_SIZE:  # the reference overruns gp_buff; we drop the byte
                    self.buffer[self.pos] = int(pair, 16)
                self.pos += 1
                if self.pos == self.size:
                    self.emit(b"m-load-done\r\n")
                    return  # the rest of the digits are discarded

    def _print_buffer(self) -> bytes:
        """``db print``: g_buff_size bytes (capped at the buffer: the reference would read past it),
        8 per line, plus the reference's extra CRLF when the count is not a multiple of 8."""
        n, out = min(self.size, MAX_DB_INPUT_SIZE), []
        for start in range(0, n, 8):
            out.append(b"m-buffer-" + self.buffer[start:min(start + 8, n)].hex("-").encode() + b"\r\n")
        if n % 8:
            out.append(b"\r\n")
        return b"".join(out)

    def _infer_command(self, args: list[bytes]) -> None:
        n, w = 1, 10  # the firmware's defaults (its help text wrongly says W=0)
        if args:
            n = atoi(args[0])
            if n <= 0:
                self.emit(b"e-[Inference iterations must be >0]\r\n")
                return
            if len(args) > 1:
                w = atoi(args[1])
                if w < 0:
                    self.emit(b"e-[Inference warmup must be >=0]\r\n")
                    return
        self.infer(n, w)

    def infer(self, n: int, warmup: int) -> None:
        """ee_infer: load (untimed), W warm-ups, then N inferences between two timestamps."""
        self._load_tensor()
        self.emit(b"m-warmup-start-%d\r\n" % warmup)
        invoke = self.backend.invoke
        for _ in range(warmup):
            invoke()
        self.emit(b"m-warmup-done\r\nm-infer-start-%d\r\n" % n)
        self._timestamp()
        for _ in range(n):
            invoke()
        self._timestamp()
        self.emit(b"m-infer-done\r\n")
        self._results()

    def _load_tensor(self) -> None:
        """th_load_tensor: ee_get_buffer copies min(received, input size) bytes; a short load is
        reported and leaves the model input as it was (AD's float input is partly overwritten)."""
        nbytes = min(self.pos, self.elements * self.element_size)
        raw = np.frombuffer(self.buffer, np.uint8, nbytes).copy()
        if self.model_id == "ad01":
            self._ad_input.view(np.uint8)[:nbytes] = raw
        if nbytes // self.element_size != self.elements:
            self.emit(b"Input db has %d elemented, expected %d\n"
                      % (nbytes // self.element_size, self.elements))
            return
        if self.model_id == "kws01":
            q = raw.view(np.int8)
        elif self.model_id == "ad01":
            q = quantize(self._ad_input, *self.backend.input_quant)
        else:  # VWW / IC: u8 - 128 as int8
            q = (raw ^ 0x80).view(np.int8)
        self.backend.set_input(q)

    def _results(self) -> None:
        """th_results for the output of the last inference."""
        out = self.backend.output()
        values = dequantize(out[:self.result_count], *self.backend.output_quant)
        if self.model_id == "ad01":  # float32 running sum, as the reference's loop
            d = values - self._ad_input
            mse = np.cumsum(d * d, dtype=np.float32)[-1] / np.float32(640)
            self.emit(b"m-results-[%0.3f]\r\n" % float(mse))
            return
        if self.model_id == "kws01":  # "0." + 3 digits by hand: no %f on some embedded printf
            # float32 products truncated to int; C's % keeps the dividend's sign, as math.fmod
            fields = [b"0.%d%d%d" % (int(v * np.float32(10)), math.fmod(int(v * np.float32(100)), 10),
                                      math.fmod(int(v * np.float32(1000)), 10)) for v in values]
            line = b",".join(fields)
        else:  # VWW prints a comma after i < 3 - 1, so after both of its 2 values
            commas = 3 if self.model_id == "vww01" else self.result_count
            line = b"".join(b"%0.3f" % float(v) + (b"," if i < commas - 1 else b"")
                            for i, v in enumerate(values))
        self.emit(b"m-results-[" + line + b"]\r\n")


def load_firmware(model: Path | str, runtime: str = "tflite-micro", model_id: str | None = None,
                  **kwargs) -> Firmware:
    """A firmware for a .tflite model on the given runtime (``tflite-micro`` or ``litert``)."""
    return Firmware(Backend(model, runtime), model_id, **kwargs)
