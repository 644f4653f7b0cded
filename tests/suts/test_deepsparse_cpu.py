"""deepsparse-cpu SUT (issue 15 §2) against the real DeepSparse 1.8.0 engine, on the embedded
digits01 float model and the MLPerf Tiny KWS ONNX models.

Skipped with the pip hint where DeepSparse is missing: it is end-of-life, 1.8.0 is its last
installable release (wheels for CPython 3.8-3.11 only) and it needs numpy<2, so it cannot share
the main environment's numpy 2; it is tested from a separate virtual environment. The tests that
need no runtime (the light entry point, the missing-runtime message, the error wording) always run.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from _models import (KWS_FP32_ONNX, KWS_ONNX, KWS_SCALE_IN, KWS_SCALE_OUT, KWS_ZP_IN, KWS_ZP_OUT,
                     assert_missing_runtime_message, assert_no_runtime_import, kws_inputs, need,
                     run)

from tinyharness.errors import UsageError
from tinyharness.resources import data_dir
from tinyharness.suts.deepsparse_cpu.sut import DeepSparseCPU, engine_error
from tinyharness.testing import SUTConformance

MODULE = "tinyharness.suts.deepsparse_cpu.sut"
DIGITS01_ONNX = data_dir("reference_models") / "digits01" / "digits01_float.onnx"
HINT = ("pip install 'tinyharness[deepsparse]' (deepsparse==1.8.0: Python <= 3.11, numpy<2, "
        "x86-64 with AVX2 or AVX-512, or aarch64)")
HAS_DEEPSPARSE = importlib.util.find_spec("deepsparse") is not None
needs_deepsparse = pytest.mark.skipif(not HAS_DEEPSPARSE,
                                      reason=f"deepsparse not installed ({HINT})")


def loaded(model, scenario="single-stream", **options) -> DeepSparseCPU:
    sut = DeepSparseCPU(scenario, {"threads": "1", **options})
    sut.load(model)
    return sut


@pytest.fixture
def digits():
    if not HAS_DEEPSPARSE:
        pytest.skip(f"deepsparse not installed ({HINT})")
    sut = loaded(DIGITS01_ONNX)
    yield sut
    sut.close()


def ort_session(model):
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def test_entry_point_imports_neither_numpy_nor_the_runtime():
    assert_no_runtime_import(MODULE, ("deepsparse", "sparsezoo", "onnx"))


def test_missing_runtime_names_the_fix(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\0" * 64)
    assert_missing_runtime_message(MODULE, "DeepSparseCPU", ("deepsparse",), model,
                                   "SUT 'deepsparse-cpu' needs deepsparse: "
                                   "pip install 'tinyharness[deepsparse]'")


def test_only_onnx_files():
    with pytest.raises(UsageError, match=r"accepted model formats: \.onnx"):
        DeepSparseCPU("single-stream").load(data_dir("reference_models") / "digits01" /
                                            "digits01_float.tflite")


def test_engine_error_keeps_the_reason_and_drops_the_source_location():
    """The message DeepSparse 1.8 raises for a file that is not a model (seen here)."""
    raised = RuntimeError("NM: error: /home/centos/build/nyann/external/onnx-runtime/onnxruntime/"
                          "core/session/inference_session.cc:452 onnxruntime::InferenceSession::"
                          "InferenceSession(const onnxruntime::SessionOptions&) status.IsOK() was "
                          "false. Given model could not be parsed\nmore")
    assert engine_error(raised) == "Given model could not be parsed"
    assert engine_error(ValueError("model path must exist: given x.onnx")) == \
        "model path must exist: given x.onnx"


@needs_deepsparse
def test_a_corrupt_model_is_a_one_line_usage_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 10)
    with pytest.raises(UsageError, match=r"^cannot load .*bad\.onnx: deepsparse: Given model "
                                         r"could not be parsed") as caught:
        DeepSparseCPU("single-stream").load(bad)
    assert "\n" not in str(caught.value)


@needs_deepsparse
def test_more_lanes_than_threads_is_a_usage_error():
    with pytest.raises(UsageError, match=r"lanes=2 exceeds threads=1: .*raise threads or lower "
                                         r"lanes$"):
        DeepSparseCPU("offline", {"threads": "1", "lanes": "2"}).load(DIGITS01_ONNX)


def test_describe_says_deepsparse_runs_the_float_model(digits):
    import os

    import deepsparse

    d = digits.describe()
    assert (d.name, d.runtime, d.runtime_version) == ("deepsparse-cpu", "deepsparse",
                                                        deepsparse.__version__)
    assert (d.model_format, d.precision, d.threads) == ("onnx", "float32", 1)
    assert (d.extra["num_cores"], d.extra["num_streams"], d.extra["scheduler"]) == \
        (1, 1, "single_stream")
    assert d.extra["fraction_of_supported_ops"] == 1.0 and d.extra["runs_on"] == "DeepSparse"
    assert d.extra["analytics"] == "off" and os.environ["NM_DISABLE_ANALYTICS"] == "1"


def test_specs_and_the_bound_input(digits):
    assert (digits.input_spec().shape, digits.input_spec().dtype) == ((1, 8, 8, 1), "float32")
    assert (digits.output_spec().shape, digits.output_spec().dtype) == ((1, 10), "float32")
    rng = np.random.default_rng(0)
    a, b = (rng.random((1, 8, 8, 1), dtype=np.float32) * 16 for _ in range(2))
    out_a = run(digits, a)
    assert not np.array_equal(out_a, run(digits, b))  # the engine re-read the input array
    np.testing.assert_array_equal(run(digits, a), out_a)
    held = digits.output()
    run(digits, b)
    np.testing.assert_array_equal(held, out_a)  # output() is a copy


def test_float_outputs_match_onnxruntime(digits):
    sess = ort_session(DIGITS01_ONNX)
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.random((1, 8, 8, 1), dtype=np.float32) * 16
        want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(run(digits, x), want, atol=1e-5)


@needs_deepsparse
def test_int8_qdq_kws_falls_back_to_onnxruntime_and_says_so():
    """DeepSparse quantizes per tensor only: the per-channel QDQ graph is run by the ONNX Runtime
    bundled in it, bit for bit as onnxruntime (all 1000 kws01 files measured; 20 here)."""
    need(KWS_ONNX)
    sut = loaded(KWS_ONNX)
    try:
        i, o = sut.input_spec(), sut.output_spec()
        assert (i.shape, i.dtype, i.zero_point) == ((1, 49, 10, 1), "int8", KWS_ZP_IN)
        assert i.scale == pytest.approx(KWS_SCALE_IN, rel=1e-7)
        assert (o.shape, o.dtype, o.zero_point, o.scale) == ((1, 12), "int8", KWS_ZP_OUT,
                                                             KWS_SCALE_OUT)
        extra = sut.describe().extra
        assert extra["fraction_of_supported_ops"] == 0.0
        assert extra["runs_on"].startswith("ONNX Runtime bundled in DeepSparse")
        sess = ort_session(KWS_ONNX)
        for x in kws_inputs(20):
            np.testing.assert_array_equal(run(sut, x), sess.run(None, {"input_1": x})[0])
    finally:
        sut.close()


@needs_deepsparse
def test_offline_lanes_stamp_each_sample_in_lane_order():
    need(KWS_FP32_ONNX)
    xs = [x.astype(np.float32) for x in kws_inputs(50)]
    single = loaded(KWS_FP32_ONNX)
    offline = loaded(KWS_FP32_ONNX, "offline", threads="2", lanes="2")
    try:
        extra = offline.describe().extra
        assert (extra["offline_lanes"], extra["num_streams"], extra["scheduler"]) == \
            (2, 2, "multi_stream")
        done = np.zeros(len(xs), dtype=np.int64)
        offline.issue_offline(xs, done)
        assert (done > 0).all()
        for lane in (done[0::2], done[1::2]):  # each lane completes its own samples in order
            assert (np.diff(lane) >= 0).all()
        for x in xs[:5]:  # a multi-stream engine computes what a single-stream one does
            np.testing.assert_allclose(run(offline, x), run(single, x), atol=1e-5)
    finally:
        offline.close()
        single.close()


@needs_deepsparse
def test_close_twice():
    sut = loaded(DIGITS01_ONNX)
    sut.close()
    sut.close()
    DeepSparseCPU("single-stream").close()


@needs_deepsparse
def test_digits01_float_top1_is_98_33_percent(tmp_path):
    """The whole accuracy pass through the harness: 354 of 360 test digits, as the float model on
    onnxruntime-cpu."""
    import tinyharness.suts.deepsparse_cpu as plugin
    from tinyharness.plugins import registry
    from tinyharness.progress import Progress
    from tinyharness.runner import Run, RunRequest

    added = "deepsparse-cpu" not in registry().suts
    if added:  # not installed through the entry point (pyproject) yet: register it here
        registry().add(plugin, "deepsparse-cpu")
    try:
        summary, run_dir = Run(RunRequest(benchmark="digits01", sut="deepsparse-cpu",
                                          mode="accuracy", model=DIGITS01_ONNX, output=tmp_path,
                                          sut_options={"threads": "1"})).execute(
                                              Progress(enabled=False))
    finally:
        if added:
            registry().remove("deepsparse-cpu")
    assert summary.accuracy.metric == "top1" and summary.accuracy.count == 360
    assert summary.accuracy.value == pytest.approx(98.333333, abs=1e-4)
    assert '"fraction_of_supported_ops": 1.0' in (run_dir.path / "summary.json").read_text()


@needs_deepsparse
class TestDeepSparseCPUConformance(SUTConformance):
    """The conformance kit on digits01's float ONNX model, against onnxruntime-cpu on the same."""

    sut = DeepSparseCPU
    model = DIGITS01_ONNX
    options = {"threads": "1"}
    reference = "onnxruntime-cpu" if importlib.util.find_spec("onnxruntime") else None
