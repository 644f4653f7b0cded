#!/usr/bin/env python3
"""torch-cpu and executorch-cpu single-stream overhead (issue 14: the seed's PyTorch row): each SUT's p50 (per-call
perf_counter_ns pairs around infer(), as the harness times it) against

- torch.utils.benchmark.Timer(...).blocked_autorange() median of the same call (torch-cpu: the
  program's graph module with its parameters bound, inference mode, same input tensor and
  threads), and of ``ExportedProgram.module()(x)``, what a user would call;
- a raw tight loop of the same call (block time / calls, no per-call clock): the graph module for
  torch-cpu, ``Method.execute`` for executorch-cpu.

Medians of REPEATS interleaved repeats (each repeat measures every path once), with the spread
(min..max). digits01 uses the committed .pt2/.pte; kws01 the float ONNX model exported with
``tinyharness models export`` (into --exported, default the model cache; needs the MLPerf Tiny
models, e.g. TINYHARNESS_MODEL_MIRROR=../shared/mlperf_tiny/models_onnx).

    python bench/torch_overhead.py [--threads 1] [--calls 5000] [--benchmarks digits01,kws01]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.benchmark import Timer

from tinyharness.model_store import ModelStore
from tinyharness.resources import data_dir

REPEATS = 5
DIGITS01 = data_dir("reference_models") / "digits01"


def models(bench: str, exported: Path) -> dict[str, Path]:
    if bench == "digits01":
        return {"pt2": DIGITS01 / "digits01_float.pt2", "pte": DIGITS01 / "digits01_float.pte"}
    found = {}
    for to, suffix in (("torch", "pt2"), ("executorch", "pte")):
        path = exported / f"kws_ref_model_fp32.{suffix}"
        if not path.exists():
            subprocess.run([sys.executable, "-m", "tinyharness.cli", "models", "export", bench,
                            "--to", to, "--output", str(exported)], check=True)
        found[suffix] = path
    return found


def sut_p50(sut, calls: int) -> float:
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
    return f"{statistics.median(values):8.3f} ({min(values):.3f}..{max(values):.3f})"


def measure(label: str, sut, paths: dict, calls: int, threads: int, module=None) -> None:
    """Interleaved repeats of the SUT's p50, its raw loop and (torch) the Timer medians."""
    rows: dict[str, list[float]] = {k: [] for k in ("sut_p50", "timer", "raw", "timer_module")}
    for _ in range(REPEATS):
        rows["sut_p50"].append(sut_p50(sut, calls))
        rows["raw"].append(raw_loop(*paths["raw"], calls))
        if "timer" in paths:
            rows["timer"].append(timer_median(*paths["timer"], threads))
        if module is not None:
            rows["timer_module"].append(timer_median(module, paths["timer"][1], threads))
    print(f"{label} threads={threads} (µs, median of {REPEATS} (min..max))")
    for key, text in (("sut_p50", "SUT p50 (per-call clock)"), ("timer", "Timer median, same call"),
                      ("raw", "raw tight loop, same call"),
                      ("timer_module", "Timer median, ExportedProgram.module()")):
        if rows[key]:
            print(f"  {text:40s} {spread(rows[key])}")
    for key, text in (("timer", "Timer"), ("raw", "raw loop"), ("timer_module", "Timer(module())")):
        if rows[key]:
            ratios = [s / r for s, r in zip(rows["sut_p50"], rows[key])]
            print(f"  {'ratio SUT p50 / ' + text:40s} {spread(ratios)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--benchmarks", default="digits01,kws01")
    ap.add_argument("--exported", type=Path, default=ModelStore().cache / "exported" / "kws01")
    ap.add_argument("--modes", default="eager,compile")
    args = ap.parse_args()
    from tinyharness.suts.executorch_cpu.sut import ExecuTorchCPU
    from tinyharness.suts.torch_cpu.sut import TorchCPU

    options = {"threads": str(args.threads)}
    for bench in args.benchmarks.split(","):
        paths = models(bench, args.exported)
        module = torch.export.load(str(paths["pt2"])).module()
        for mode in args.modes.split(","):
            sut = TorchCPU("single-stream", {**options, "mode": mode})
            sut.load(paths["pt2"])
            sut.prepare(np.zeros(sut.input_spec().shape, dtype=sut.input_spec().dtype))
            call = (sut._fn, sut._in_tensor)
            measure(f"{bench} torch-cpu {mode}", sut, {"timer": call, "raw": call}, args.calls,
                    args.threads, module if mode == "eager" else None)
            sut.close()
        sut = ExecuTorchCPU("single-stream", options)
        sut.load(paths["pte"])
        sut.prepare(np.zeros(sut.input_spec().shape, dtype=sut.input_spec().dtype))
        measure(f"{bench} executorch-cpu", sut, {"raw": (sut._execute, sut._inputs)}, args.calls,
                args.threads)
        sut.close()


if __name__ == "__main__":
    main()
