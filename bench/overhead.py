"""How much the harness costs, as ratios measured in one run (not a test; prints figures).

1. Null SUT: single-stream queries/s and offline samples/s of the harness's own loops (and MLPerf
   LoadGen's Python wheel on the same instant SUT, when `mlcommons-loadgen` is installed).
2. For each CPU SUT: the harness's single-stream p50 against a raw tight loop of that runtime's
   fastest call path written here directly against the runtime (ratio, target <= 1.03).
3. OpenVINO: the harness's single-stream p50 against `benchmark_app -api sync -hint none
   -nstreams 1 -nthreads 1` (target <= 1.05), and offline throughput against `benchmark_app -hint
   throughput` (target >= 0.95).

Every comparison is repeated (interleaved) and reported as the median with its min..max spread.
Usage: python bench/overhead.py [--repeats 5] [--seconds 2] [--model-set digits01|kws01|all]
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyharness.benchmark import get_benchmark
from tinyharness.dataset import Dataset
from tinyharness.plugins import registry
from tinyharness.qsl import QSL
from tinyharness.scenarios.offline import run_offline
from tinyharness.scenarios.single_stream import run_queries
from tinyharness.stats import percentile

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "mlperf_tiny"


def spread(values: list[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} (min {min(values):{fmt}}, max {max(values):{fmt}}, n={len(values)})"


def p50_us(latencies_ns: np.ndarray) -> float:
    return percentile(np.sort(latencies_ns), 0.5) / 1e3


# -- raw loops: each runtime's fastest documented call path, nothing from tinyharness -----------
def raw_onnxruntime(model: Path, sample: np.ndarray, n: int) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    x = np.zeros(sample.shape, sample.dtype)
    y = np.zeros([d if isinstance(d, int) else 1 for d in out.shape],
                 dtype={"tensor(float)": np.float32, "tensor(int8)": np.int8}[out.type])
    binding = sess.io_binding()
    binding.bind_input(inp.name, "cpu", 0, x.dtype, x.shape, x.ctypes.data)
    binding.bind_output(out.name, "cpu", 0, y.dtype, y.shape, y.ctypes.data)
    return _time(lambda: np.copyto(x, sample), lambda: sess.run_with_iobinding(binding), n)


def raw_openvino(model: Path, sample: np.ndarray, n: int) -> np.ndarray:
    import openvino as ov

    core = ov.Core()
    m = core.read_model(str(model))
    m.reshape({m.inputs[0].get_any_name(): list(sample.shape)})
    compiled = core.compile_model(m, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1,
                                             "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    x = np.zeros(sample.shape, sample.dtype)
    request.set_input_tensor(ov.Tensor(x, shared_memory=True))
    # the binding's own infer, with the inputs bound and output views (skips the Python wrapper)
    from openvino._pyopenvino import InferRequest as Binding

    return _time(lambda: np.copyto(x, sample), functools.partial(Binding.infer, request, {}, True, True), n)


def raw_litert(model: Path, sample: np.ndarray, n: int) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=1)
    interp.allocate_tensors()
    index = interp.get_input_details()[0]["index"]
    return _time(lambda: interp.set_tensor(index, sample), interp.invoke, n)


def _time(prepare, infer, n: int) -> np.ndarray:
    for _ in range(200):
        prepare()
        infer()
    out = np.empty(n, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(n):
        prepare()
        t0 = clock()
        infer()
        out[i] = clock() - t0
    return out


RAW = {"onnxruntime-cpu": raw_onnxruntime, "openvino-cpu": raw_openvino, "tflite-cpu": raw_litert}


# -- the harness side ------------------------------------------------------------------------
def harness_sut(name: str, model: Path, scenario: str = "single-stream", **options: str):
    sut = registry().get(name)(scenario, options)
    sut.load(model)
    return sut


def samples_for(sut, benchmark_id: str, dataset: Path | None, count: int = 64) -> list[np.ndarray]:
    spec = sut.input_spec()
    if benchmark_id == "kws01":  # int8 MFCC files, fed as they are to the int8 model
        ds = Dataset.open(dataset, "kws01", "y_labels.csv", (49, 10, 1), "int8")
        qsl = QSL(ds, "identity", spec)
    else:
        b = get_benchmark(benchmark_id)
        ds = Dataset.open(dataset or b.default_dataset(), b.dataset_id, b.label_file, b.sample_shape,
                          b.sample_dtype)
        qsl = QSL(ds, b.transform[spec.dtype] if spec.dtype else "identity", spec)
    indices = range(min(count, len(ds)))
    qsl.load(indices)
    return [qsl.sample(i) for i in indices]


def model_sets(choice: str) -> list[tuple[str, Path | None, dict[str, Path]]]:
    sets = []
    if choice in ("digits01", "all"):
        models = REPO / "reference_models" / "digits01"
        sets.append(("digits01", None, {"onnxruntime-cpu": models / "digits01_float.onnx",
                                        "openvino-cpu": models / "digits01_int8.tflite",
                                        "tflite-cpu": models / "digits01_int8.tflite"}))
    if choice in ("kws01", "all") and SHARED.is_dir():
        sets.append(("kws01", SHARED / "datasets" / "kws01",
                     {"onnxruntime-cpu": SHARED / "models_onnx" / "kws" / "kws_ref_model.onnx",
                      "openvino-cpu": SHARED / "models" / "kws" / "kws_ref_model.tflite",
                      "tflite-cpu": SHARED / "models" / "kws" / "kws_ref_model.tflite"}))
    return sets


def null_rates(repeats: int, seconds: float) -> None:
    sut = harness_sut("null", Path("null.onnx"))
    samples = [np.zeros(1, np.float32)] * 64
    ss, off = [], []
    for r in range(repeats):
        run = run_queries(sut, samples, r, seconds, 1)
        ss.append(run.count / ((run.end_ns - run.start_ns) / 1e9))
        query = samples * 3125  # 200 000 samples
        completions = np.zeros(len(query), np.int64)
        t0 = time.perf_counter_ns()
        sut.issue_offline(query, completions)
        off.append(len(completions) / ((completions.max() - t0) / 1e9))
    print(f"null SUT single-stream: {spread([q / 1e3 for q in ss], '.1f')} k queries/s; "
          f"per query {spread([1e6 / q for q in ss])} us (target <= 1 us; MLPerf LoadGen wheel ~3.3 us)")
    print(f"null SUT offline: {spread([q / 1e6 for q in off])} M samples/s")
    try:
        import mlperf_loadgen  # noqa: F401
    except ImportError:
        print("MLPerf LoadGen: not installed (pip install mlcommons-loadgen to compare)")
        return
    print(f"MLPerf LoadGen, same instant SUT: {loadgen_null_qps(seconds) / 1e3:.1f} k queries/s")


def loadgen_null_qps(seconds: float) -> float:
    import mlperf_loadgen as lg

    def issue(queries):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in queries])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(64, 64, lambda s: None, lambda s: None)
    settings = lg.TestSettings()
    settings.scenario, settings.mode = lg.TestScenario.SingleStream, lg.TestMode.PerformanceOnly
    settings.min_duration_ms, settings.single_stream_expected_latency_ns = int(seconds * 1000), 4000
    with tempfile.TemporaryDirectory() as out:
        log = lg.LogSettings()
        log.log_output.outdir, log.enable_trace = out, False
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
        text = (Path(out) / "mlperf_log_summary.txt").read_text()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    return float(re.search(r"QPS w/ loadgen overhead\s*:\s*([\d.]+)", text).group(1))


def harness_vs_raw(repeats: int, seconds: float, choice: str) -> None:
    for bench_id, dataset, models in model_sets(choice):
        for name, model in models.items():
            try:
                sut = harness_sut(name, model)
            except Exception as exc:
                print(f"{bench_id} {name}: skipped ({exc})")
                continue
            samples = samples_for(sut, bench_id, dataset)
            ratios, ours, raws = [], [], []
            for r in range(repeats):
                run = run_queries(sut, samples, r, seconds, 100)
                raw = RAW[name](model, samples[0], run.count)
                ours.append(p50_us(run.latencies_ns))
                raws.append(p50_us(raw))
                ratios.append(ours[-1] / raws[-1])
            sut.close()
            print(f"{bench_id} {name} ({model.name}): harness p50 {spread(ours)} us, raw p50 "
                  f"{spread(raws)} us, ratio {spread(ratios)} (target <= 1.03)")


def benchmark_app(args: list[str]) -> dict[str, float]:
    exe = shutil.which("benchmark_app")
    text = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600).stdout
    found = {}
    for key, pattern in {"median": r"Median:\s*([\d.]+)\s*(ms|us)", "fps": r"Throughput:\s*([\d.]+)\s*FPS",
                         "count": r"Count:\s*(\d+)", "duration_ms": r"Duration:\s*([\d.]+)\s*ms"}.items():
        m = re.search(pattern, text)
        if m:
            value = float(m.group(1))
            found[key] = value * 1000 if key == "median" and m.group(2) == "ms" else value
    return found


def openvino_vs_benchmark_app(repeats: int, seconds: float, choice: str) -> None:
    if shutil.which("benchmark_app") is None:
        print("benchmark_app: not found (it ships with the openvino wheel)")
        return
    for bench_id, dataset, models in model_sets(choice):
        model = models["openvino-cpu"]
        sut = harness_sut("openvino-cpu", model)
        samples = samples_for(sut, bench_id, dataset)
        shape = "[" + ",".join(map(str, samples[0].shape)) + "]"
        ss_ratio, rt_ratio, ours, runtime, theirs, per_iter = [], [], [], [], [], []
        for r in range(repeats):
            run = run_queries(sut, samples, r, seconds, 100)
            app = benchmark_app(["-m", str(model), "-shape", shape, "-api", "sync", "-hint", "none",
                                 "-nstreams", "1", "-nthreads", "1", "-infer_precision", "f32",
                                 "-t", str(max(1, round(seconds)))])
            ours.append(p50_us(run.latencies_ns))
            theirs.append(app["median"])
            per_iter.append(app["duration_ms"] * 1e3 / app["count"])
            ss_ratio.append(ours[-1] / theirs[-1])
            if run.runtime_ns is not None:  # the same C++-side figure benchmark_app reports
                runtime.append(p50_us(run.runtime_ns))
                rt_ratio.append(runtime[-1] / theirs[-1])
        sut.close()
        print(f"{bench_id} openvino-cpu single-stream: harness p50 {spread(ours)} us; benchmark_app "
              f"median {spread(theirs)} us (its C++-side request latency), its wall time per "
              f"iteration {spread(per_iter)} us; ratio p50/median {spread(ss_ratio)} (target <= 1.05)")
        if runtime:
            print(f"{bench_id} openvino-cpu runtime_latency_us p50 (InferRequest.latency, read by the "
                  f"harness) {spread(runtime)} us; ratio to benchmark_app's median {spread(rt_ratio)} "
                  "(like for like)")

        sut = harness_sut("openvino-cpu", model, scenario="offline")
        tp_ratio, ours, theirs = [], [], []
        for r in range(repeats):
            off = run_offline(sut, samples, seconds, 1024)
            app = benchmark_app(["-m", str(model), "-shape", shape, "-hint", "throughput",
                                 "-infer_precision", "f32", "-t", str(max(1, round(seconds)))])
            ours.append(off.throughput_ips)
            theirs.append(app["fps"])
            tp_ratio.append(ours[-1] / theirs[-1])
        sut.close()
        print(f"{bench_id} openvino-cpu offline: harness {spread(ours, '.0f')} samples/s; benchmark_app "
              f"{spread(theirs, '.0f')} FPS; ratio {spread(tp_ratio)} (target >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--model-set", choices=["digits01", "kws01", "all"], default="all")
    args = parser.parse_args()
    null_rates(args.repeats, args.seconds)
    harness_vs_raw(args.repeats, args.seconds, args.model_set)
    openvino_vs_benchmark_app(args.repeats, args.seconds, args.model_set)


if __name__ == "__main__":
    main()
