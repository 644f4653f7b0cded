"""kws01 through ``tinyharness dut qemu`` on the 1 000 official files, checked against tflite-micro.

Runs accuracy then performance on the emulated board, decodes every file's printed result back to
its 12 int8 output bytes (kws01 prints ``0.`` + three digits of (q + 128) / 256, distinct per
level) and compares them with tflite-micro's, then runs performance once more and compares the
window times (virtual time: equal to the microsecond). Prints the figures; exits 1 on a mismatch.

    python bench/qemu_kws01.py [--board mps2-an386] [--icount 3]

Needs ../shared/mlperf_tiny (models and the kws01 files), qemu-system-arm and gcc-arm-none-eabi.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mlperf_tiny"
MODEL = SHARED / "models" / "kws" / "kws_ref_model.tflite"


def levels_from_print(values: list[float]) -> list[int]:
    table = {(1000 * k) // 256: k - 128 for k in range(256)}
    return [table[round(v * 1000)] for v in values]


def tflite_micro(files: list[Path]) -> np.ndarray:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(MODEL))
    out = []
    for f in files:
        interp.set_input(np.fromfile(f, np.int8).reshape(1, 49, 10, 1), 0)
        interp.invoke()
        out.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(out)


def dut_qemu(out: Path, *args: str) -> tuple[dict, Path, float]:
    env = dict(os.environ, TINYHARNESS_MODEL_MIRROR=str(SHARED / "models"))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tinyharness.cli", "dut", "qemu", "--benchmark",
                           "kws01", *args, "--dataset", str(SHARED / "datasets"), "--json",
                           "--quiet", "--output", str(out)], capture_output=True, text=True,
                          env=env, timeout=3600)
    wall = time.monotonic() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"dut qemu failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return json.loads(done.stdout), run_dir, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", default="mps2-an386")
    parser.add_argument("--icount", default="3")
    args = parser.parse_args()
    options = ["--board", args.board, "--icount", args.icount]
    with tempfile.TemporaryDirectory() as tmp:
        summary, run_dir, wall = dut_qemu(Path(tmp) / "all", *options, "--mode", "all")
        log = json.loads((run_dir / "accuracy.json").read_text())
        again, _, wall2 = dut_qemu(Path(tmp) / "perf", *options, "--mode", "performance")
    device = np.array([levels_from_print(np.frombuffer(bytes.fromhex(e["data"]), "<f4").tolist())
                       for e in log], dtype=np.int8)
    expected = tflite_micro([SHARED / "datasets" / "kws01" / e["file"] for e in log])
    equal = int((device == expected).all(axis=1).sum())
    win = [d["runtime_s"] for d in summary["windows"]["details"]]
    win2 = [d["runtime_s"] for d in again["windows"]["details"]]
    diff_us = max(abs(round(a * 1e6) - round(b * 1e6)) for a, b in zip(win, win2))
    extra = summary["system"]["sut"]["extra"]
    print(f"board {extra['board']} ({extra['core']}), QEMU {extra['qemu_version']}, "
          f"{extra['device_clock']}")
    print(f"firmware sha256 {extra['firmware_sha256'][:16]}…, ROM {extra['firmware_rom_bytes']:,} B, "
          f"RAM {extra['firmware_ram_bytes']:,} B")
    print(f"accuracy: {summary['accuracy']['value']} % on {len(log)} files; output bytes equal to "
          f"tflite-micro on {equal}/{len(log)} files")
    print(f"performance: {'VALID' if summary['valid'] else 'INVALID'}, "
          f"{summary['windows']['latency_us'] / 1e3:.3f} ms per inference (virtual), windows "
          f"{win} s; second run {win2} s: largest difference {diff_us} µs")
    print(f"wall: {wall:.1f} s (accuracy + performance), {wall2:.1f} s (performance)")
    return 0 if equal == len(log) and diff_us <= 1 and summary["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
