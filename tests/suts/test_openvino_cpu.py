"""openvino-cpu SUT against the real OpenVINO runtime on the MLPerf Tiny KWS models."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _models import (KWS_ONNX, KWS_SCALE_IN, KWS_SCALE_OUT, KWS_TFLITE, KWS_ZP_IN, KWS_ZP_OUT,
                     assert_missing_runtime_message, assert_no_runtime_import, kws_inputs, need,
                     run)

from tinyharness.errors import UsageError
from tinyharness.suts.openvino_cpu.sut import OpenVINOCPU

MODULE = "tinyharness.suts.openvino_cpu.sut"


@pytest.fixture
def ov():
    return pytest.importorskip("openvino")


def loaded(scenario="single-stream", model=KWS_TFLITE, **options):
    need(model)
    sut = OpenVINOCPU(scenario, {k: str(v) for k, v in options.items()})
    sut.load(model)
    return sut


@pytest.fixture
def sut(ov):
    sut = loaded()
    yield sut
    sut.close()


def plain_compiled(ov, model):
    core = ov.Core()
    graph = core.read_model(str(model))
    graph.reshape([1, 49, 10, 1])
    return core.compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.mark.parametrize("model", [KWS_TFLITE, KWS_ONNX], ids=["tflite", "onnx"])
def test_outputs_equal_plain_compiled_model_call(ov, model):
    sut = loaded(model=model)
    try:
        compiled = plain_compiled(ov, model)
        for x in kws_inputs(10):
            np.testing.assert_array_equal(run(sut, x), compiled([x])[0])
    finally:
        sut.close()


def test_bound_tensor_tracks_the_input_array(sut):
    a, b = kws_inputs(2)
    out_a = run(sut, a)
    assert not np.array_equal(out_a, run(sut, b))
    np.testing.assert_array_equal(run(sut, a), out_a)
    assert out_a.dtype == np.int8 and out_a.shape == (1, 12)


def test_int8_tflite_argmax_agrees_with_litert(sut):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interp = litert.Interpreter(model_path=str(KWS_TFLITE), num_threads=1)
    interp.allocate_tensors()
    i_in, i_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    for x in kws_inputs(20):
        interp.set_tensor(i_in, x)
        interp.invoke()
        assert run(sut, x).argmax() == interp.get_tensor(i_out).argmax()


@pytest.mark.parametrize("model", [KWS_TFLITE, KWS_ONNX], ids=["tflite", "onnx"])
def test_specs_batch_1_with_quantization_from_the_graph(ov, model):
    sut = loaded(model=model)
    try:
        i, o = sut.input_spec(), sut.output_spec()
        assert (i.shape, i.dtype, i.zero_point) == ((1, 49, 10, 1), "int8", KWS_ZP_IN)
        assert (o.shape, o.dtype, o.zero_point) == ((1, 12), "int8", KWS_ZP_OUT)
        assert (i.scale, o.scale) == (KWS_SCALE_IN, KWS_SCALE_OUT)
    finally:
        sut.close()


def test_describe_defaults_to_f32(ov, sut):
    d = sut.describe()
    assert (d.name, d.runtime, d.model_format) == ("openvino-cpu", "openvino", "tflite")
    assert d.runtime_version == ov.get_version()
    assert d.inference_precision == "f32" and d.threads == 1
    assert d.device.startswith("CPU (")
    assert d.extra["performance_hint"] == "LATENCY" and d.extra["nireq"] == 1


def test_describe_records_the_kernels_the_cpu_plugin_compiled(ov, sut):
    """The int8 KWS model's convolutions run int8 kernels of the widest vector instructions the
    host has (by its recorded cpu_features): where the numbers came from (on x86 without VNNI,
    OpenVINO's int8 outputs differ; README)."""
    from tinyharness.system import cpu_features

    kernels = sut.describe().extra["kernels"]
    int8_convs = [k for k in kernels.get("Convolution", []) if k.endswith("_I8")]
    assert int8_convs, kernels
    assert all(isinstance(v, list) and v == sorted(set(v)) for v in kernels.values())
    features = cpu_features() or []
    isa = "avx512" if "avx512f" in features else "avx2" if "avx2" in features else None
    if isa is not None:
        assert any(isa in k for k in int8_convs), (features, int8_convs)


def test_precision_option_is_recorded_as_compiled(ov):
    sut = loaded(precision="bf16")
    try:
        # The CPU plugin may fall back when it lacks bf16; describe() reports what it compiled.
        used = sut.describe().inference_precision
        assert used in ("bf16", "f32")
        assert sut.describe().extra["requested_precision"] == "bf16"
    finally:
        sut.close()


def test_issue_offline_runs_parallel_requests(ov):
    xs = kws_inputs(200)
    sut = loaded("offline", nireq=2)
    try:
        d = sut.describe()
        assert d.extra["performance_hint"] == "THROUGHPUT" and d.extra["nireq"] == 2
        done = np.zeros(len(xs), dtype=np.int64)
        start = time.perf_counter_ns()
        sut.issue_offline(xs, done)
        end = time.perf_counter_ns()
        assert ((done >= start) & (done <= end)).all()
        for k in range(2):  # request k ran samples k, k+2, ... in order
            assert (np.diff(done[k::2]) >= 0).all()
        compiled = plain_compiled(ov, KWS_TFLITE)
        for x in xs[:10]:  # the single-query path still answers correctly afterwards
            np.testing.assert_array_equal(run(sut, x), compiled([x])[0])
    finally:
        sut.close()


def test_single_stream_issue_offline_uses_one_request(sut):
    xs = kws_inputs(20)
    done = np.zeros(len(xs), dtype=np.int64)
    sut.issue_offline(xs, done)
    assert (done > 0).all() and (np.diff(done) >= 0).all()


def test_close_twice(ov):
    sut = loaded()
    sut.close()
    sut.close()


def test_unknown_option_lists_accepted():
    with pytest.raises(UsageError, match="accepted: nireq, nstreams, precision, threads"):
        OpenVINOCPU("single-stream", {"kernels": "xnnpack"})


def test_bad_option_values():
    with pytest.raises(UsageError, match="threads=0"):
        OpenVINOCPU("single-stream", {"threads": "0"})
    with pytest.raises(UsageError, match="f32, bf16, f16"):
        OpenVINOCPU("single-stream", {"precision": "int4"})


def test_unsupported_suffix(tmp_path):
    with pytest.raises(UsageError, match=r"accepted model formats: \.tflite, \.onnx"):
        OpenVINOCPU("single-stream").load(tmp_path / "model.pb")


def test_corrupt_model_names_file_and_runtime_error(ov, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError) as info:
        OpenVINOCPU("single-stream").load(bad)
    message = str(info.value)
    assert str(bad) in message and "openvino:" in message and "\n" not in message


def test_module_import_does_not_import_openvino():
    assert_no_runtime_import(MODULE, ("openvino",))


def test_missing_runtime_names_the_fix():
    """Simulates an uninstalled openvino (cannot be uninstalled here) via sys.modules = None."""
    assert_missing_runtime_message(
        MODULE, "OpenVINOCPU", ("openvino",), KWS_TFLITE,
        "SUT 'openvino-cpu' needs openvino: pip install 'tinyharness[openvino]'")


def test_runtime_latency_is_recorded_beside_the_harness_latency(sut):
    """OpenVINO's own per-request figure is read after each query's clock pair; the request runs
    inside the pair, so it can never exceed the harness's latency of the same query."""
    from tinyharness.scenarios.single_stream import measure, run_queries

    x = [np.zeros(sut.input_spec().shape, dtype=sut.input_spec().dtype)]
    run = run_queries(sut, x, 0, min_duration_s=0.0, min_query_count=200)
    assert run.runtime_ns is not None and len(run.runtime_ns) == run.count == 200
    runtime, harness = np.asarray(run.runtime_ns), np.asarray(run.latencies_ns)
    assert (runtime > 0).all()
    assert (runtime <= harness + 1_000).all()  # 1 us: two clocks' rounding
    m = measure(run, 0.0, 200)
    assert m.runtime_latency_us.count == 200 and m.runtime_latency_us.p50 <= m.latency_us.p50
