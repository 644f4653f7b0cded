#!/usr/bin/env python3
"""torch-cpu single-stream overhead: the SUT's p50 (per-call perf_counter_ns pairs around infer(),
as the harness times it) against

- torch.utils.benchmark.Timer(...).blocked_autorange() median of the same call (the program's
  graph module with its parameters bound, inference mode, same input tensor and threads), and
  of ``ExportedProgram.module()(x)``, what a user would call;
- a raw tight loop of the same call (block time / calls, no per-call clock).

Medians of REPEATS interleaved repeats, with the spread (min..max). digits01 (and kws01 once a
.pt2 exists for it). Usage: python bench/torch_overhead.py [--threads N] [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.benchmark import Timer

from tinyharness.resources import data_dir
from tinyharness.suts.torch_cpu.sut import TorchCPU

REPEATS = 5
MODELS = {"digits01": data_dir("reference_models") / "digits01" / "digits01_float.pt2",
          "kws01": data_dir("reference_models") / "kws01" / "kws01_float.pt2"}


def sut_p50(sut: TorchCPU, calls: int) -> float:
    infer, clock = sut.infer, time.perf_counter_ns
    lat = np.empty(calls, dtype=np.int64)
    for i in range(calls):
        t0 = clock()
        infer()
        lat[i] = clock() - t0
    return float(np.median(lat)) / 1e3


def raw_loop(fn, x, calls: int) -> float:
    with torch.inference_mode():
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn(x)
        return (time.perf_counter_ns() - t0) / calls / 1e3


def timer_median(fn, x, threads: int) -> float:
    t = Timer(stmt="with torch.inference_mode(): fn(x)", globals={"fn": fn, "x": x, "torch": torch},
              num_threads=threads)
    return t.blocked_autorange(min_run_time=0.5).median * 1e6


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} ({min(values):.2f}..{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    for bench, path in MODELS.items():
        if not path.exists():
            print(f"{bench}: no {path.name} yet, skipped")
            continue
        module = torch.export.load(str(path)).module()
        for mode in ("eager", "compile"):
            sut = TorchCPU("single-stream", {"mode": mode, "threads": str(args.threads)})
            sut.load(path)
            sut.prepare(np.zeros(sut.input_spec().shape, dtype=sut.input_spec().dtype))
            fn, x = sut._fn, sut._in_tensor
            rows: dict[str, list[float]] = {k: [] for k in ("sut_p50", "timer", "raw", "timer_module")}
            for _ in range(REPEATS):  # interleaved: each repeat measures every path once
                rows["sut_p50"].append(sut_p50(sut, args.calls))
                rows["timer"].append(timer_median(fn, x, args.threads))
                rows["raw"].append(raw_loop(fn, x, args.calls))
                if mode == "eager":
                    rows["timer_module"].append(timer_median(module, x, args.threads))
            sut.close()
            print(f"{bench} {mode} threads={args.threads} (µs, median of {REPEATS} (min..max))")
            for key, label in (("sut_p50", "SUT p50 (per-call clock)"),
                               ("timer", "Timer median, same call"), ("raw", "raw tight loop, same call"),
                               ("timer_module", "Timer median, ExportedProgram.module()")):
                if rows[key]:
                    print(f"  {label:40s} {spread(rows[key])}")
            ratio_t = [s / t for s, t in zip(rows["sut_p50"], rows["timer"])]
            ratio_r = [s / r for s, r in zip(rows["sut_p50"], rows["raw"])]
            print(f"  {'ratio SUT p50 / Timer':40s} {spread(ratio_t)}")
            print(f"  {'ratio SUT p50 / raw loop':40s} {spread(ratio_r)}")
            if rows["timer_module"]:
                ratio_m = [s / m for s, m in zip(rows["sut_p50"], rows["timer_module"])]
                print(f"  {'ratio SUT p50 / Timer(module())':40s} {spread(ratio_m)}")


if __name__ == "__main__":
    main()
