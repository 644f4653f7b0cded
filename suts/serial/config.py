"""The ``serial`` SUT's options."""

from __future__ import annotations

from dataclasses import dataclass

from tinyharness.errors import UsageError
from tinyharness.sut_config import SUTConfig, flag, non_negative_int, option, positive_float, positive_int

PORT_HINT = "--sut-option port=/dev/ttyACM0"


def chunk_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 38:
        raise ValueError("must be 1..38 bytes (a 'db <hex>%' command must fit the DUT's 80 "
                         "characters; 31 is the MLCommons runner's, 26 through an interface board)")
    return value


@dataclass(frozen=True)
class SerialConfig(SUTConfig):
    port: str | None = option(f"serial port of the DUT, required ({PORT_HINT}; any pyserial URL, "
                              "e.g. socket://host:port)")
    baud: int | None = option("baud rate (default: 921600 for ad01, else 115200, as the reference "
                              "firmware)", positive_int)
    timeout: float = option("seconds to wait for each response line (default 5)", positive_float, 5.0)
    infer_timeout: float = option("seconds to wait for an infer response (default 30; raised "
                                  "automatically for long windows)", positive_float, 30.0)
    chunk: int = option("bytes per 'db' upload command (default 31; 26 through an interface board)",
                        chunk_size, 31)
    retries: int = option("times a failed upload restarts from 'db load', and a failed infer is "
                          "repeated (default 3)", non_negative_int, 3)
    verify: bool = option("1: read every upload back with 'db print' (catches corrupted hex digits "
                          "the protocol cannot see; about doubles the upload time; default 0)", flag,
                          False)

    def __post_init__(self) -> None:
        if not self.port:
            raise UsageError(f"SUT 'serial' needs the DUT's serial port: {PORT_HINT} "
                             "(list candidates with 'tinyharness dut list')")
