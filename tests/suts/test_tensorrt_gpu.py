"""tensorrt-gpu SUT (issue 15 §1): NVIDIA TensorRT 10 through its Python API, on a CUDA GPU.

Two kinds of tests:

- everywhere: the listing, the light entry point, the missing-runtime message, the graph checks
  that refuse a precision before any GPU call (int8 without Q/DQ nodes, asymmetric Q/DQ, a float
  precision on a Q/DQ graph), the engine cache key and the cache's files, and, where cuda-bindings
  is installed but no GPU is, the one-line "no GPU" error;
- on a machine with an NVIDIA GPU and TensorRT only (skipped elsewhere with the reason): digits01
  top-1 98.33 % in fp32, fp16 within 0.5 points, int8 from a symmetric Q/DQ graph, the engine
  cache hit on a second load, the GPU compute time, offline batches, the conformance kit.

TensorRT is never faked: without a GPU the GPU tests do not run.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import json
import os
import time

import numpy as np
import pytest
from _models import (KWS_ONNX, assert_missing_runtime_message, assert_no_runtime_import, need,
                     run, run_python)

from tinyharness.errors import UsageError
from tinyharness.resources import data_dir
from tinyharness.suts.tensorrt_gpu.engine_cache import EngineCache, KeyParts, cache_key
from tinyharness.suts.tensorrt_gpu.gpu import NO_GPU
from tinyharness.suts.tensorrt_gpu.sut import TensorRTGPU
from tinyharness.testing import SUTConformance

MODULE = "tinyharness.suts.tensorrt_gpu.sut"
RUNTIME_MODULES = ("tensorrt", "cuda", "cuda.bindings")
DIGITS01_ONNX = data_dir("reference_models") / "digits01" / "digits01_float.onnx"
HINT = "pip install 'tinyharness[tensorrt]'"
DIGITS01_TOP1 = 98.333333


def _gpu_absent() -> str | None:
    """Why there is no usable NVIDIA GPU here (the driver's libcuda cannot be loaded, or it
    initialises no device), or None when there is one. Asks the driver itself: no subprocess."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return NO_GPU
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return NO_GPU
    return None


NO_GPU_REASON = _gpu_absent()
MISSING = [m for m in ("tensorrt", "cuda.bindings", "onnx")
           if importlib.util.find_spec(m.split(".")[0]) is None]
needs_gpu = pytest.mark.skipif(
    NO_GPU_REASON is not None or bool(MISSING),
    reason=NO_GPU_REASON or f"{', '.join(MISSING)} not installed ({HINT})")


@pytest.fixture(scope="module")
def registered():
    """tensorrt-gpu in the registry for the module (no entry point until pyproject names it)."""
    import tinyharness.suts.tensorrt_gpu as plugin
    from tinyharness.plugins import registry

    added = "tensorrt-gpu" not in registry().suts
    if added:
        registry().add(plugin, "tensorrt-gpu")
    yield
    if added:
        registry().remove("tensorrt-gpu")


@pytest.fixture(scope="module")
def digits01_qdq(tmp_path_factory):
    """digits01_float.onnx quantized to symmetric int8 Q/DQ with onnxruntime's quantize_static,
    calibrated on the first 100 digits01 samples: a graph TensorRT's explicit quantization takes."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    from tinyharness.benchmark import get_benchmark
    from tinyharness.dataset import Dataset

    ds = Dataset.for_benchmark(get_benchmark("digits01"))
    feeds = iter([{"input": ds.read(i).astype(np.float32).reshape(1, 8, 8, 1)} for i in range(100)])

    class Reader(quantization.CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    out = tmp_path_factory.mktemp("qdq") / "digits01_sym_int8.onnx"
    quantization.quantize_static(
        str(DIGITS01_ONNX), str(out), Reader(), quant_format=quantization.QuantFormat.QDQ,
        activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return out


# -- everywhere ---------------------------------------------------------------------------------
def test_listed_with_its_extra_device_and_options(registered):
    from click.testing import CliRunner
    from tinyharness.cli import cli

    done = CliRunner().invoke(cli, ["suts", "--json"], catch_exceptions=False)
    row = next(r for r in json.loads(done.output) if r["name"] == "tensorrt-gpu")
    assert row["devices"] == ["gpu"] and row["model_formats"] == ["onnx"]
    assert row["install"] == HINT and row["runtime"] == "tensorrt"
    assert sorted(row["options"]) == ["build_timeout_s", "device", "offline_batch", "precision",
                                      "workspace_mb"]
    assert TensorRTGPU.reports_runtime_latency is True


def test_entry_point_imports_neither_numpy_nor_the_runtime():
    assert_no_runtime_import(MODULE, RUNTIME_MODULES + ("onnx",))


def test_missing_runtime_names_the_fix():
    assert_missing_runtime_message(MODULE, "TensorRTGPU", RUNTIME_MODULES, DIGITS01_ONNX,
                                   f"SUT 'tensorrt-gpu' needs tensorrt: {HINT}")


def test_only_onnx_files(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0" * 64)
    with pytest.raises(UsageError, match=r"accepted model formats: \.onnx$"):
        TensorRTGPU("single-stream").load(model)


def _refusal(model, options: dict) -> str:
    """The one line load() prints for ``options`` in a fresh interpreter where TensorRT and the
    CUDA bindings cannot be imported: a check that needed either (or a GPU) would print the
    missing-runtime message instead, so the line proves the check comes first."""
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in RUNTIME_MODULES)
    proc = run_python(
        "import sys\n" + blocked +
        f"from {MODULE} import TensorRTGPU\n"
        "from tinyharness.errors import UsageError\n"
        "try:\n"
        f"    TensorRTGPU('single-stream', {options!r}).load({str(model)!r})\n"
        "except UsageError as exc:\n"
        "    print('USAGE', exc)\n")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("USAGE ") and "\n" not in line, proc.stdout
    return line.removeprefix("USAGE ")


def test_int8_on_a_graph_without_qdq_is_refused_before_any_gpu_call():
    pytest.importorskip("onnx")
    assert _refusal(DIGITS01_ONNX, {"precision": "int8"}) == (
        "--sut-option precision=int8 needs an explicitly quantized graph (QuantizeLinear/"
        "DequantizeLinear nodes); digits01_float.onnx has none: give a Q/DQ ONNX model with "
        "--model, or use precision=fp32 or fp16")


@pytest.mark.parametrize("options", [{}, {"precision": "int8"}])
def test_an_asymmetric_qdq_graph_is_refused_before_any_gpu_call(options):
    """The MLPerf Tiny int8 ONNX models keep TFLite's asymmetric activations (zero points such
    as 83 and -128), which TensorRT's explicit quantization does not take."""
    pytest.importorskip("onnx")
    need(KWS_ONNX)
    line = _refusal(KWS_ONNX, options)
    assert line.startswith("kws_ref_model.onnx: 24 of its 44 Q/DQ nodes have a non-zero zero "
                           "point; TensorRT supports only symmetric int8 quantization"), line


def test_a_float_precision_on_a_qdq_graph_is_refused(digits01_qdq):
    line = _refusal(digits01_qdq, {"precision": "fp16"})
    assert line.startswith("--sut-option precision=fp16: digits01_sym_int8.onnx is explicitly "
                           "quantized ("), line
    assert "use precision=int8" in line


def test_a_symmetric_qdq_graph_defaults_to_int8(digits01_qdq):
    import onnx
    from tinyharness.suts.tensorrt_gpu import graph

    facts = graph.inspect(onnx, digits01_qdq)
    assert facts.quantized and facts.asymmetric == 0
    assert graph.resolve_precision(None, facts, digits01_qdq) == "int8"
    assert graph.resolve_precision(None, graph.inspect(onnx, DIGITS01_ONNX), DIGITS01_ONNX) == "fp32"


def test_a_corrupt_model_is_a_one_line_usage_error(tmp_path):
    pytest.importorskip("onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 10)
    with pytest.raises(UsageError, match=r"^cannot load .*bad\.onnx: onnx: ") as caught:
        TensorRTGPU("single-stream").load(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("option, value, expects", [
    ("precision", "fp64", "expected one of fp32, fp16, int8"),
    ("device", "-1", "expected an integer from 0 to 63"),
    ("offline_batch", "0", "expected an integer from 1 to 4096"),
    ("workspace_mb", "lots", "expected an integer from 1 to"),
    ("build_timeout_s", "inf", "expected a finite number from 1 to 86400"),
])
def test_bad_options_are_one_line_usage_errors(option, value, expects):
    with pytest.raises(UsageError, match=rf"^--sut-option {option}={value}: {expects}"):
        TensorRTGPU.parse_options({option: value})


PARTS = KeyParts(model_sha256="ab" * 32, tensorrt_version="10.16.1.11", gpu_name="NVIDIA H100",
                 compute_capability="9.0", precision="fp16", max_batch=1, workspace_mb=None)
CHANGED = {"model_sha256": "cd" * 32, "tensorrt_version": "10.16.0.72",
           "gpu_name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "precision": "fp32",
           "max_batch": 256, "workspace_mb": 1024}


def test_the_cache_key_is_deterministic_across_processes():
    code = ("from tinyharness.suts.tensorrt_gpu.engine_cache import KeyParts, cache_key\n"
            f"print(cache_key(KeyParts(**{dataclasses.asdict(PARTS)!r})))\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == cache_key(PARTS) == cache_key(dataclasses.replace(PARTS))
    assert len(cache_key(PARTS)) == 64


@pytest.mark.parametrize("part", sorted(CHANGED))
def test_the_cache_key_changes_with_each_part(part):
    assert set(CHANGED) == {f.name for f in dataclasses.fields(KeyParts)}
    assert cache_key(dataclasses.replace(PARTS, **{part: CHANGED[part]})) != cache_key(PARTS)


def test_the_engine_cache_round_trip_and_what_it_refuses(tmp_path):
    cache = EngineCache(tmp_path / "trt")
    assert cache.get(PARTS, "kws_ref_model") is None
    path = cache.put(PARTS, "kws_ref_model", b"engine bytes", 12.5)
    assert path.name.startswith("kws_ref_model-fp16-b1-") and path.suffix == ".engine"
    hit = cache.get(PARTS, "kws_ref_model")
    assert (hit.engine, hit.build_s, hit.key) == (b"engine bytes", 12.5, cache_key(PARTS))
    assert cache.get(dataclasses.replace(PARTS, precision="fp32"), "kws_ref_model") is None
    path.write_bytes(b"engine bytez")  # same size, other bytes: the sha256 no longer matches
    assert cache.get(PARTS, "kws_ref_model") is None
    path.unlink()
    os.mkfifo(path)  # a FIFO where the engine was: a miss at once, never a blocked read
    assert cache.get(PARTS, "kws_ref_model") is None
    assert not list((tmp_path / "trt").glob("*.part"))


def test_no_gpu_is_a_one_line_usage_error():
    """Where the CUDA bindings are installed and no GPU is: the real driver query fails, and
    says so in one line (run on this kind of machine, not simulated)."""
    if importlib.util.find_spec("cuda") is None:
        pytest.skip(f"cuda-bindings not installed ({HINT})")
    if NO_GPU_REASON is None:
        pytest.skip("an NVIDIA GPU is present: nothing to refuse")
    from tinyharness.suts.tensorrt_gpu.gpu import import_cudart, open_device

    with pytest.raises(UsageError, match=r"^SUT 'tensorrt-gpu' needs an NVIDIA GPU: ") as caught:
        open_device(import_cudart(), 0)
    assert "\n" not in str(caught.value)


# -- on an NVIDIA GPU only ----------------------------------------------------------------------
@pytest.fixture
def engine_cache(tmp_path, monkeypatch):
    """An empty engine cache for the test (TINYHARNESS_CACHE_DIR), so a first load builds."""
    monkeypatch.setenv("TINYHARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models" / "tensorrt"


def _accuracy(tmp_path, model, options: dict) -> tuple[float, dict]:
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    summary, run_dir = Run(RunRequest(benchmark="digits01", sut="tensorrt-gpu", mode="accuracy",
                                      model=model, output=tmp_path, sut_options=options)
                           ).execute(Progress(enabled=False))
    assert summary.accuracy.metric == "top1" and summary.accuracy.count == 360
    return summary.accuracy.value, json.loads((run_dir.path / "summary.json").read_text())


@needs_gpu
def test_digits01_fp32_top1_is_98_33_percent(registered, engine_cache, tmp_path):
    top1, summary = _accuracy(tmp_path, DIGITS01_ONNX, {"precision": "fp32"})
    assert top1 == pytest.approx(DIGITS01_TOP1, abs=1e-4)
    assert '"engine_cache_key"' in json.dumps(summary)


@needs_gpu
def test_digits01_fp16_is_within_half_a_point(registered, engine_cache, tmp_path):
    top1, _ = _accuracy(tmp_path, DIGITS01_ONNX, {"precision": "fp16"})
    assert abs(top1 - DIGITS01_TOP1) <= 0.5


@needs_gpu
def test_digits01_int8_from_symmetric_qdq_matches_onnxruntime(registered, engine_cache, tmp_path,
                                                              digits01_qdq):
    ort = pytest.importorskip("onnxruntime")
    from tinyharness.benchmark import get_benchmark
    from tinyharness.dataset import Dataset

    top1, _ = _accuracy(tmp_path, digits01_qdq, {})  # default precision: int8 for a Q/DQ graph
    ds = Dataset.for_benchmark(get_benchmark("digits01"))
    sess = ort.InferenceSession(str(digits01_qdq), providers=["CPUExecutionProvider"])
    hits = [int(np.argmax(sess.run(None, {"input": ds.read(i).astype(np.float32)
                                          .reshape(1, 8, 8, 1)})[0])) == e.label
            for i, e in enumerate(ds.entries)]
    assert abs(top1 - 100.0 * float(np.mean(hits))) <= 1.0


@needs_gpu
def test_a_second_load_takes_the_cached_engine(engine_cache, monkeypatch):
    import tinyharness.suts.tensorrt_gpu.sut as sut_module

    first = TensorRTGPU("single-stream", {"precision": "fp32"})
    start = time.perf_counter()
    first.load(DIGITS01_ONNX)
    built_s = time.perf_counter() - start
    d1 = first.describe().extra
    first.close()
    assert d1["engine_cache_hit"] is False and len(list(engine_cache.glob("*.engine"))) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("the second load rebuilt the engine")

    monkeypatch.setattr(sut_module, "build", no_build)
    second = TensorRTGPU("single-stream", {"precision": "fp32"})
    start = time.perf_counter()
    second.load(DIGITS01_ONNX)
    cached_s = time.perf_counter() - start
    try:
        d2 = second.describe().extra
        assert d2["engine_cache_hit"] is True and d2["engine_cache_key"] == d1["engine_cache_key"]
        assert d2["build_s"] == d1["build_s"]  # the original build's time, from the sidecar
        assert cached_s < built_s / 3, (cached_s, built_s)
    finally:
        second.close()


@needs_gpu
def test_gpu_compute_time_lies_within_the_host_time(engine_cache):
    sut = TensorRTGPU("single-stream", {"precision": "fp32"})
    sut.load(DIGITS01_ONNX)
    try:
        sut.prepare(np.ones((1, 8, 8, 1), dtype=np.float32))
        for _ in range(20):
            t0 = time.perf_counter_ns()
            sut.infer()
            host_ns = time.perf_counter_ns() - t0
            gpu_ns = sut.runtime_latency_ns()
            assert 0 < gpu_ns <= host_ns, (gpu_ns, host_ns)
        held = sut.output()
        assert held.shape == (1, 10) and np.isfinite(held).all()
    finally:
        sut.close()


@needs_gpu
def test_offline_batches_match_single_inferences(engine_cache):
    """kws fp32 (dynamic batch): 600 samples in batches of 256, 256 and 88, stamped per batch;
    the last batch's outputs equal the batch-1 outputs of the same samples."""
    from _models import KWS_FP32_ONNX, KWS_SCALE_IN, KWS_ZP_IN, kws_inputs

    need(KWS_FP32_ONNX)
    samples = [((x.astype(np.float32) - KWS_ZP_IN) * KWS_SCALE_IN) for x in kws_inputs(600)]
    sut = TensorRTGPU("offline", {"precision": "fp32", "offline_batch": "256"})
    sut.load(KWS_FP32_ONNX)
    try:
        assert sut.describe().extra["offline"].startswith("batches of up to 256")
        completions = np.zeros(600, dtype=np.int64)
        start = time.perf_counter_ns()
        sut.issue_offline(samples, completions)
        assert (completions >= start).all() and len(np.unique(completions)) == 3
        batched = sut._host_out[:88].copy()  # the last batch's outputs, still in the pinned buffer
        single = np.concatenate([run(sut, x) for x in samples[512:]])
        np.testing.assert_allclose(batched, single, atol=1e-5)
    finally:
        sut.close()


@needs_gpu
class TestTensorRTGPUConformance(SUTConformance):
    """The conformance kit on digits01 in fp32 (TF32 off), against onnxruntime-cpu."""

    sut = TensorRTGPU
    options = {"precision": "fp32"}
    reference = "onnxruntime-cpu" if importlib.util.find_spec("onnxruntime") else None
    tolerance = 1e-4
