"""The serial path's own costs over a pseudo-terminal, against the emulated DUT (prints figures).

1. Sample upload rate (payload bytes/s) for each MLPerf Tiny sample size: `db load N` plus 31-byte
   `db` chunks, each acknowledged with `m-ready`.
2. Protocol overhead per inference: host round trip of `infer 1 0` minus the device-timed
   T1 - T0 of the same command, against the emulator's own inference time.

A pty has no baud rate: these are the protocol's and the emulator's costs, not a UART's. A real
board at 115 200 baud uploads about 3.7 kB/s (docs/dut-protocol.md §4.1).
Usage: python bench/serial_link.py [--repeats 20] [--runtime tflite-micro|litert]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import serial

from tinyharness.suts.serial.emulator import Emulator
from tinyharness.suts.serial.protocol import DUTLink, LapClock

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "mlperf_tiny"
MODELS = {"kws01": SHARED / "models" / "kws" / "kws_ref_model.tflite",
          "ad01": SHARED / "models" / "ad" / "ad01_int8.tflite",
          "vww01": SHARED / "models" / "vww" / "vww_96_int8.tflite"}

def payload_for(model_id: str) -> bytes:
    """A real sample where one is shipped (kws01 file, the AD sample's first window); VWW bytes
    are a fixed pattern (any uint8 image is valid input)."""
    if model_id == "kws01":
        return sorted((SHARED / "datasets" / "kws01").glob("*.bin"))[0].read_bytes()
    if model_id == "ad01":
        return next((SHARED / "samples" / "ad01").glob("*.bin")).read_bytes()[:2560]
    return bytes((i * 37) % 256 for i in range(27_648))


def spread(values: list[float], fmt: str = ".1f") -> str:
    return f"{statistics.median(values):{fmt}} (min {min(values):{fmt}}, max {max(values):{fmt}}, n={len(values)})"


def measure(model_id: str, runtime: str, repeats: int) -> None:
    payload = payload_for(model_id)
    with Emulator(MODELS[model_id], runtime=runtime) as emulator:
        port = serial.Serial(emulator.port, 115200, timeout=1)
        link, clock = DUTLink(port, line_timeout=5, verify=False), LapClock()  # the raw link: no read-back
        link.drain(quiet=0.2, limit=2)
        rates, host_us, device_us = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            link.upload(payload)
            rates.append(len(payload) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            reply = link.infer(1, 0, timeout=30)
            host_us.append((time.perf_counter() - t0) * 1e6)
            device_us.append(clock.elapsed_us(reply))
        port.close()
    overhead = [h - d for h, d in zip(host_us, device_us)]
    print(f"{model_id} ({runtime}): upload {len(payload)} B at {spread([r / 1e3 for r in rates])} kB/s; "
          f"infer 1 0: host round trip {spread(host_us)} us, device T1-T0 {spread(device_us)} us, "
          f"protocol overhead {spread(overhead)} us "
          f"({statistics.median(overhead) / statistics.median(device_us):.2f}x the inference)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runtime", choices=["tflite-micro", "litert"], default="tflite-micro")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the MLPerf Tiny models in {SHARED}")
    for model_id in MODELS:
        measure(model_id, args.runtime, args.repeats)


if __name__ == "__main__":
    main()
