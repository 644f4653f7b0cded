"""The deepsparse-cpu SUT's single-stream p50 against DeepSparse's own benchmark tool (not a test;
prints figures).

For each model: the harness's single-stream loop (``run_queries``, the one ``tinyharness run``
uses) on the SUT, then ``deepsparse.benchmark MODEL -b 1 -nstreams 1 -s sync -ncores THREADS -t
SECONDS -x OUT.json`` (its median, "ms/batch"), interleaved, ``--repeats`` times; each figure is
reported as the median with its min..max spread, and the ratio harness / tool (target <= 1.05).
The two are alike but not identical: the tool runs one fixed random input, the harness a random
real sample per query (its copy into the engine's input array untimed).

Needs DeepSparse (``pip install deepsparse==1.8.0``, numpy<2, Python <= 3.11), the MLPerf Tiny
files in ../shared/mlperf_tiny for the KWS models.
Usage: python bench/deepsparse_ratio.py [--repeats 5] [--seconds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyharness.benchmark import get_benchmark
from tinyharness.dataset import Dataset
from tinyharness.qsl import QSL
from tinyharness.scenarios.single_stream import run_queries
from tinyharness.stats import percentile
from tinyharness.suts.deepsparse_cpu.sut import DeepSparseCPU

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "mlperf_tiny"
KWS = SHARED / "models_onnx" / "kws"
MODELS = [("digits01", None, REPO / "reference_models" / "digits01" / "digits01_float.onnx"),
          ("kws01", SHARED / "datasets", KWS / "kws_ref_model_fp32.onnx"),
          ("kws01", SHARED / "datasets", KWS / "kws_ref_model.onnx")]
TOOL_SLACK_S = 120  # the tool's own start-up and compile, beyond its -t seconds


def spread(values: list[float], fmt: str = ".2f") -> str:
    return (f"{statistics.median(values):{fmt}} (min {min(values):{fmt}}, max {max(values):{fmt}}, "
            f"n={len(values)})")


def samples_for(sut: DeepSparseCPU, benchmark_id: str, root: Path | None,
                count: int = 64) -> list[np.ndarray]:
    """The first ``count`` samples of the benchmark's dataset, model-ready for ``sut``."""
    bench = get_benchmark(benchmark_id)
    spec = sut.input_spec()
    qsl = QSL(Dataset.for_benchmark(bench, root), bench.transform[spec.dtype], spec)
    indices = range(count)
    qsl.load(indices)
    return [qsl.sample(i) for i in indices]


def tool_median_us(model: Path, threads: int, seconds: int) -> tuple[float, float]:
    """deepsparse.benchmark's median latency (µs) and fraction_of_supported_ops."""
    exe = shutil.which("deepsparse.benchmark")
    with tempfile.TemporaryDirectory() as out:
        report = Path(out) / "benchmark.json"
        subprocess.run([exe, str(model), "-b", "1", "-nstreams", "1", "-s", "sync", "-ncores",
                        str(threads), "-t", str(seconds), "-q", "-x", str(report)],
                       capture_output=True, text=True, check=True, timeout=seconds + TOOL_SLACK_S,
                       env={**os.environ, "NM_DISABLE_ANALYTICS": "1"})
        data = json.loads(report.read_text())
    return data["benchmark_result"]["median"] * 1e3, float(data["fraction_of_supported_ops"])


def compare(benchmark_id: str, root: Path | None, model: Path, args) -> None:
    if not model.exists():
        print(f"{model.name}: skipped (not found)")
        return
    sut = DeepSparseCPU("single-stream", {"threads": str(args.threads)})
    sut.load(model)
    try:
        samples = samples_for(sut, benchmark_id, root)
        ours, theirs, ratios = [], [], []
        for r in range(args.repeats):  # interleaved: both sides see the machine's same moments
            run = run_queries(sut, samples, r, args.seconds, 100)
            ours.append(percentile(np.sort(np.asarray(run.latencies_ns)), 0.5) / 1e3)
            tool, fraction = tool_median_us(model, args.threads, args.seconds)
            theirs.append(tool)
            ratios.append(ours[-1] / theirs[-1])
        print(f"{model.name} (fraction_of_supported_ops {fraction:g}, threads {args.threads}): "
              f"harness p50 {spread(ours)} us, deepsparse.benchmark median {spread(theirs)} us, "
              f"ratio {spread(ratios, '.3f')} (target <= 1.05)")
    finally:
        sut.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("deepsparse.benchmark") is None:
        raise SystemExit("deepsparse.benchmark not found: pip install deepsparse==1.8.0")
    for benchmark_id, root, model in MODELS:
        compare(benchmark_id, root, model, args)


if __name__ == "__main__":
    main()
