"""Instructions per inference of the firmware's int8 kernels, per kernel, on an emulated board.

QEMU at ``-icount shift=0`` advances virtual time 1 ns per guest instruction, so the firmware's own
clock counts instructions: ``infer N 0``'s two m-lap-us stamps give µs = thousands of instructions,
and a ``-DMODEL_PROFILE`` build adds the 25 MHz timer ticks spent in each operator (1 tick =
40 instructions). Each benchmark is built twice: the straightforward kernels
(``-DKERNELS_REFERENCE``) and the optimised ones (the default), with the same model and sample.
Instruction counts are not Cortex-M cycles (no wait states, pipeline or memory timing).

    python bench/firmware_instructions.py                      # kws01 on mps2-an386
    python bench/firmware_instructions.py --benchmark kws01 vww01 ic01 ad01 --board mps2-an500

Needs qemu-system-arm and gcc-arm-none-eabi, and the reference models (TINYHARNESS_MODEL_MIRROR
or the model cache). Prints one table per benchmark, then ROM/RAM of the optimised firmware.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mlperf_tiny"
VARIANTS = {"reference": ("KERNELS_REFERENCE",), "optimised": ()}
_OP = re.compile(r"m-op-ticks-\[(\d+),(\w+),(\d+)\]")
_RUNS = re.compile(r"m-profile-\[(\d+),(\d+)\]")


def sample(bench) -> bytes:
    """The first official file when the shared data is here, else seeded random bytes of the
    sample's size (the kernels' instruction count hardly depends on the values)."""
    folder = SHARED / "datasets" / bench.dataset_id
    labels = folder / "y_labels.csv"
    if labels.is_file():
        first = labels.read_text().splitlines()[0].split(",")[0]
        data = (folder / first).read_bytes()
        return data[:bench.sample_bytes]
    rng = np.random.default_rng(0)
    if bench.sample_dtype == "float32":
        return rng.normal(10, 3, bench.sample_bytes // 4).astype("<f4").tobytes()
    return rng.integers(0, 256, bench.sample_bytes, dtype=np.uint8).tobytes()


def profile(fw, board: str, data: bytes, iterations: int) -> tuple[float, dict[str, list[float]]]:
    """(instructions per inference from m-lap-us, {kernel: [instructions per inference per op]})."""
    import serial

    from tinyharness.firmware.qemu import QemuProcess
    from tinyharness.suts.serial.ports import identify
    from tinyharness.suts.serial.protocol import DUTLink, LapClock

    with QemuProcess(fw.elf, board, icount=0) as q:
        port = serial.serial_for_url(q.url, baudrate=115200, timeout=10, write_timeout=10)
        try:
            link = DUTLink(port, 10.0, 31, 3, True)
            identify(link)
            link.upload(data)
            reply = link.infer(iterations, 0, 600.0)
        finally:
            port.close()
    total = LapClock().elapsed_us(reply) * 1000 / iterations  # 1 ns per instruction at shift 0
    runs = hz = None
    per_kernel: dict[str, list[float]] = defaultdict(list)
    for line in reply.lines:
        if m := _RUNS.search(line):
            runs, hz = int(m.group(1)), int(m.group(2))
        elif m := _OP.search(line):
            per_kernel[m.group(2)].append(int(m.group(3)) * 1e9 / hz / runs)
    if not per_kernel:
        raise SystemExit("no m-op-ticks lines: the firmware was not built with MODEL_PROFILE")
    return total, dict(per_kernel)


def report(bench_id: str, board: str, iterations: int) -> None:
    from tinyharness.benchmark import get_benchmark
    from tinyharness.firmware.build import build_firmware
    from tinyharness.model_store import ModelStore

    bench = get_benchmark(bench_id)
    model = ModelStore().resolve(bench.default_entry(("tflite",))).path
    data = sample(bench)
    results, firmware = {}, {}
    for name, defines in VARIANTS.items():
        fw = build_firmware(bench_id, board, model, defines=("MODEL_PROFILE", *defines))
        firmware[name] = build_firmware(bench_id, board, model, defines=defines)
        results[name] = profile(fw, board, data, iterations)
    (ref_total, ref), (opt_total, opt) = results["reference"], results["optimised"]
    print(f"\n{bench_id} on {board}: instructions per inference (QEMU -icount shift=0, "
          f"{iterations} inferences; not cycles)")
    print(f"{'kernel':18s} {'ops':>4s} {'reference':>13s} {'optimised':>13s} {'ratio':>6s} "
          f"{'share':>6s}")
    for kernel in sorted(ref, key=lambda k: -sum(ref[k])):
        r, o = sum(ref[kernel]), sum(opt.get(kernel, [0.0]))
        print(f"{kernel:18s} {len(ref[kernel]):4d} {r:13,.0f} {o:13,.0f} {r / o if o else 0:6.2f} "
              f"{100 * o / opt_total:5.1f}%")
    print(f"{'total (m-lap-us)':18s} {'':4s} {ref_total:13,.0f} {opt_total:13,.0f} "
          f"{ref_total / opt_total:6.2f}")
    for name, fw in firmware.items():
        print(f"firmware ({name}, no profile): ROM {fw.rom_bytes:,} B, RAM {fw.ram_bytes:,} B, "
              f"sha256 {fw.sha256[:16]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", nargs="+", default=["kws01"])
    parser.add_argument("--board", default="mps2-an386")
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    for bench_id in args.benchmark:
        report(bench_id, args.board, args.iterations)


if __name__ == "__main__":
    main()
