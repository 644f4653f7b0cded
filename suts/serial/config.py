"""The ``serial`` SUT's options. Every number is bounded: timeouts are finite seconds > 0 with a
ceiling, so no option can make a read wait forever (``nan`` and ``inf`` are refused)."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinyharness.errors import UsageError
from tinyharness.model_store import MAX_MODEL_BYTES
from tinyharness.sut_config import SUTConfig, flag, option

PORT_HINT = "--sut-option port=/dev/ttyACM0"
MAX_TIMEOUT_S = 600.0  # per response line
MAX_INFER_TIMEOUT_S = 86_400.0  # per infer response: a day
MAX_BAUD = 20_000_000  # above any USB-UART bridge's rate
MAX_RETRIES = 20


def seconds(ceiling: float) -> Callable[[str], float]:
    """A parser of a finite number of seconds in (0, ``ceiling``]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0 < value <= ceiling:
            raise ValueError(f"must be a finite number of seconds > 0 and <= {ceiling:g}")
        return value
    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    """A parser of a whole number in [``low``, ``high``]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value
    return parse


def chunk_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0  # not a number: the same message as one out of range
    if not 1 <= value <= 38:
        raise ValueError("must be 1..38 bytes (a 'db <hex>%' command must fit the DUT's 80 "
                         "characters; 31 is the MLCommons runner's, 26 through an interface board)")
    return value


def model_path(text: str) -> str:
    """The model file a DUT's firmware was built from, as an absolute path: a regular file (links
    followed) of at most MAX_MODEL_BYTES. Only stat'ed here; the SUT hashes it when it loads."""
    path = Path(text).expanduser()
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("expected a model file (a regular file, e.g. kws_ref_model.tflite), "
                         f"not {'a folder' if stat.S_ISDIR(info.st_mode) else 'a special file'}")
    if info.st_size > MAX_MODEL_BYTES:
        raise ValueError(f"expected a model file of at most {MAX_MODEL_BYTES:,} bytes, not "
                         f"{info.st_size:,}")
    return str(path.resolve())


@dataclass(frozen=True)
class LinkConfig(SUTConfig):
    """How the host talks to a DUT over the MLPerf Tiny protocol (shared by ``serial`` and ``qemu``)."""

    timeout: float = option(f"seconds to wait for each response line (default 5, at most "
                            f"{MAX_TIMEOUT_S:g})", seconds(MAX_TIMEOUT_S), 5.0)
    infer_timeout: float = option(f"seconds to wait for an infer response (default 30, at most "
                                  f"{MAX_INFER_TIMEOUT_S:g}; raised automatically for long "
                                  "windows)", seconds(MAX_INFER_TIMEOUT_S), 30.0)
    chunk: int = option("bytes per 'db' upload command (default 31; 26 through an interface board)",
                        chunk_size, 31)
    retries: int = option("times a failed upload restarts from 'db load', and a failed infer is "
                          f"repeated (default 3, at most {MAX_RETRIES})", whole(0, MAX_RETRIES), 3)
    verify: bool = option("1 (default): read every upload back with 'db print' and upload again "
                          "when it differs (a flipped hex digit is still valid hex: nothing else "
                          "catches it; at 115200 baud the read-back takes about twice as long as "
                          "the upload: ~0.2 s per kws01 sample, ~10 s per vww01 image); "
                          "0: unverified uploads, recorded in the result and refused in the closed "
                          "division", flag, True)


@dataclass(frozen=True)
class SerialConfig(LinkConfig):
    port: str | None = option(f"serial port of the DUT, required ({PORT_HINT}; any pyserial URL, "
                              "e.g. socket://host:port)")
    baud: int | None = option("baud rate (default: 921600 for ad01, else 115200, as the reference "
                              "firmware)", whole(1, MAX_BAUD))
    model_file: str | None = option("the model file the DUT's firmware was built from (e.g. "
                                    "kws_ref_model.tflite): hashed (sha256) when the run starts and "
                                    "recorded as the run's model with the model id the DUT reports; "
                                    "read only here, never sent. The closed division requires it, "
                                    "and requires a reference model of the benchmark", model_path)

    def __post_init__(self) -> None:
        if not self.port:
            raise UsageError(f"SUT 'serial' needs the DUT's serial port: {PORT_HINT} "
                             "(list candidates with 'tinyharness dut list')")
