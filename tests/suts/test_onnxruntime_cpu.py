"""onnxruntime-cpu SUT against the real ONNX Runtime on the MLPerf Tiny KWS models."""

from __future__ import annotations

import numpy as np
import pytest
from _models import (KWS_FP32_ONNX, KWS_ONNX, KWS_SCALE_IN, KWS_SCALE_OUT, KWS_TFLITE, KWS_ZP_IN,
                     KWS_ZP_OUT, assert_missing_runtime_message, assert_no_runtime_import,
                     kws_inputs, need, run)

from tinyharness.errors import UsageError
from tinyharness.suts.onnxruntime_cpu.sut import OnnxRuntimeCPU

MODULE = "tinyharness.suts.onnxruntime_cpu.sut"


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime")


@pytest.fixture
def sut(ort):
    need(KWS_ONNX)
    sut = OnnxRuntimeCPU("single-stream")
    sut.load(KWS_ONNX)
    yield sut
    sut.close()


def plain_session(ort, model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def test_outputs_equal_plain_session_run(ort, sut):
    sess = plain_session(ort, KWS_ONNX)
    name = sess.get_inputs()[0].name
    for x in kws_inputs(10):
        np.testing.assert_array_equal(run(sut, x), sess.run(None, {name: x})[0])


def test_binding_tracks_the_input_buffer(sut):
    a, b = kws_inputs(2)
    out_a = run(sut, a)
    out_b = run(sut, b)
    assert not np.array_equal(out_a, out_b)  # the bound buffer was re-read
    np.testing.assert_array_equal(run(sut, a), out_a)  # and the output buffer re-written
    assert out_a.dtype == np.int8 and out_a.shape == (1, 12)


def test_output_is_a_copy(sut):
    a, b = kws_inputs(2)
    out_a = run(sut, a)
    kept = out_a.copy()
    run(sut, b)
    np.testing.assert_array_equal(out_a, kept)


def test_int8_qdq_is_bit_exact_with_litert_xnnpack(sut):
    """models_onnx/README.md documents ORT on the QDQ graph == LiteRT's default XNNPACK path."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    need(KWS_TFLITE)
    interp = litert.Interpreter(model_path=str(KWS_TFLITE), num_threads=1)
    interp.allocate_tensors()
    i_in, i_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    for x in kws_inputs(20):
        interp.set_tensor(i_in, x)
        interp.invoke()
        np.testing.assert_array_equal(run(sut, x), interp.get_tensor(i_out))


def test_specs_have_batch_1_and_qdq_quantization(sut):
    pytest.importorskip("onnx")  # the scale comes from the graph's Q/DQ nodes via onnx
    i, o = sut.input_spec(), sut.output_spec()
    assert (i.shape, i.dtype, i.zero_point) == ((1, 49, 10, 1), "int8", KWS_ZP_IN)
    assert i.scale == pytest.approx(KWS_SCALE_IN, rel=1e-7)
    assert (o.shape, o.dtype, o.zero_point) == ((1, 12), "int8", KWS_ZP_OUT)
    assert o.scale == KWS_SCALE_OUT


def test_float_model_specs_and_description(ort):
    need(KWS_FP32_ONNX)
    sut = OnnxRuntimeCPU("single-stream")
    sut.load(KWS_FP32_ONNX)
    try:
        assert sut.input_spec().dtype == "float32" and not sut.input_spec().quantized
        assert sut.describe().precision == "float32"
        x = np.random.default_rng(0).standard_normal((1, 49, 10, 1)).astype(np.float32)
        ref = plain_session(ort, KWS_FP32_ONNX).run(None, {sut.input_spec().name: x})[0]
        np.testing.assert_array_equal(run(sut, x), ref)
    finally:
        sut.close()


def test_describe(ort, sut):
    d = sut.describe()
    assert (d.name, d.runtime, d.runtime_version) == ("onnxruntime-cpu", "onnxruntime",
                                                        ort.__version__)
    assert (d.model_format, d.precision, d.threads) == ("onnx", "int8", 1)
    assert d.device.startswith("CPU")
    assert d.extra["io_binding"] is True
    assert d.extra["providers"] == ["CPUExecutionProvider"]


def test_issue_offline(sut):
    xs = kws_inputs(50)
    done = np.zeros(len(xs), dtype=np.int64)
    sut.issue_offline(xs, done)
    assert (done > 0).all() and (np.diff(done) >= 0).all()  # one request, in order
    expected = [run(sut, x) for x in xs[:5]]
    offline = OnnxRuntimeCPU("offline", {"threads": "2", "lanes": "2"})
    offline.load(KWS_ONNX)
    try:
        done = np.zeros(len(xs), dtype=np.int64)
        offline.issue_offline(xs, done)
        assert offline.describe().extra["offline_lanes"] == 2
        assert (done > 0).all()
        for lane in (done[0::2], done[1::2]):  # each lane completes its own samples in order
            assert (np.diff(lane) >= 0).all()
        # each lane's output buffer holds the result of the last sample of its stride
        for (_, out_buf, _), last in zip(offline._bound, (xs[-2], xs[-1])):
            np.testing.assert_array_equal(out_buf, run(sut, last))
        for x, want in zip(xs, expected):
            np.testing.assert_array_equal(run(offline, x), want)
    finally:
        offline.close()


def test_close_twice(ort):
    need(KWS_ONNX)
    sut = OnnxRuntimeCPU("single-stream")
    sut.load(KWS_ONNX)
    sut.close()
    sut.close()


def test_unknown_option_lists_accepted():
    with pytest.raises(UsageError, match="accepted: lanes, threads"):
        OnnxRuntimeCPU("single-stream", {"nstreams": "2"})


def test_zero_threads_is_a_usage_error():
    with pytest.raises(UsageError, match="threads=0"):
        OnnxRuntimeCPU("single-stream", {"threads": "0"})


def test_unsupported_suffix(tmp_path):
    with pytest.raises(UsageError, match=r"accepted model formats: \.onnx"):
        OnnxRuntimeCPU("single-stream").load(tmp_path / "model.tflite")


def test_corrupt_model_names_file_and_runtime_error(ort, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf \xff\xff\xff")
    with pytest.raises(UsageError) as info:
        OnnxRuntimeCPU("single-stream").load(bad)
    message = str(info.value)
    assert str(bad) in message and "onnxruntime:" in message and "\n" not in message


def test_module_import_does_not_import_onnxruntime():
    assert_no_runtime_import(MODULE, ("onnxruntime", "onnx"))


def test_missing_runtime_names_the_fix():
    """Simulates an uninstalled onnxruntime (cannot be uninstalled here) via sys.modules = None."""
    assert_missing_runtime_message(
        MODULE, "OnnxRuntimeCPU", ("onnxruntime",), KWS_ONNX,
        "SUT 'onnxruntime-cpu' needs onnxruntime: pip install 'tinyharness[onnxruntime]'")
