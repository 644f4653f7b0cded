"""Two versions of tinyharness against each other, interleaved in one run (not a test; prints
figures): the harness's own cost per single-stream query (null SUT) and the onnxruntime-cpu p50 on
digits01. Each measurement is a fresh process; the versions alternate so that machine noise hits
both alike, and the per-pair ratio after/before is reported with its spread.

Usage: python bench/ab_versions.py --before SITE [--repeats 9]
  SITE: a folder with the other version installed, e.g.
  git worktree add /tmp/old REV && pip install --no-deps --target /tmp/old-site /tmp/old
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "reference_models" / "digits01" / "digits01_float.onnx"

# Runs in the version under test; imports that moved between versions are tried both ways.
PROBE = r"""
import sys
from pathlib import Path
import numpy as np
from tinyharness.scenarios.single_stream import run_queries
from tinyharness.stats import percentile
try:
    from tinyharness.suts.null.sut import NullSUT
    from tinyharness.suts.onnxruntime_cpu.sut import OnnxRuntimeCPU
except ImportError:
    from tinyharness.suts.null import NullSUT
    from tinyharness.suts.onnxruntime_cpu import OnnxRuntimeCPU
null = NullSUT("single-stream")
null.load(Path("null.onnx"))
run = run_queries(null, [np.zeros(1, np.float32)] * 16, 0, min_duration_s=1.0, min_query_count=1)
per_query_us = (run.end_ns - run.start_ns) / run.count / 1e3
ort = OnnxRuntimeCPU("single-stream")
ort.load(Path(sys.argv[1]))
xs = [np.random.default_rng(i).random((1, 8, 8, 1), dtype=np.float32) for i in range(16)]
run = run_queries(ort, xs, 0, min_duration_s=1.0, min_query_count=1)
print(per_query_us, percentile(np.sort(run.latencies_ns), 0.5) / 1e3)
"""
METRICS = ("null SUT, us per query", "onnxruntime-cpu digits01 p50, us")


def measure(site: str | None) -> tuple[float, ...]:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site
    done = subprocess.run([sys.executable, "-c", PROBE, str(MODEL)], capture_output=True, text=True,
                          env=env, cwd="/", timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{'before' if site else 'after'}: {done.stderr.strip().splitlines()[-1]}")
    return tuple(map(float, done.stdout.split()))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="site folder of the other version")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    before, after = [], []
    for _ in range(args.repeats):
        before.append(measure(args.before))
        after.append(measure(None))
    for i, metric in enumerate(METRICS):
        print(f"{metric}: before {spread([b[i] for b in before])}, after {spread([a[i] for a in after])}, "
              f"after/before per pair {spread([a[i] / b[i] for a, b in zip(after, before)])}")


if __name__ == "__main__":
    main()
