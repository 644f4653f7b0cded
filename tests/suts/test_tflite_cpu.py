"""tflite-cpu SUT against the real LiteRT interpreter on the MLPerf Tiny KWS int8 model."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
from _models import (KWS_SCALE_IN, KWS_SCALE_OUT, KWS_TFLITE, KWS_ZP_IN, KWS_ZP_OUT,
                     assert_missing_runtime_message, assert_no_runtime_import, kws_inputs, need,
                     run, run_python)

from tinyharness.errors import UsageError
from tinyharness.suts.tflite_cpu.sut import TFLiteCPU

MODULE = "tinyharness.suts.tflite_cpu.sut"


@pytest.fixture
def litert():
    return pytest.importorskip("ai_edge_litert.interpreter")


def loaded(**options):
    need(KWS_TFLITE)
    sut = TFLiteCPU("single-stream", {k: str(v) for k, v in options.items()})
    sut.load(KWS_TFLITE)
    return sut


@pytest.fixture
def sut(litert):
    sut = loaded()
    yield sut
    sut.close()


def plain_outputs(litert, xs, resolver=None):
    kwargs = {} if resolver is None else {"experimental_op_resolver_type": resolver}
    interp = litert.Interpreter(model_path=str(KWS_TFLITE), num_threads=1, **kwargs)
    interp.allocate_tensors()
    i_in, i_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    outs = []
    for x in xs:
        interp.set_tensor(i_in, x)
        interp.invoke()
        outs.append(interp.get_tensor(i_out))
    return outs


def test_outputs_equal_plain_interpreter(litert, sut):
    xs = kws_inputs(20)
    for x, want in zip(xs, plain_outputs(litert, xs)):
        np.testing.assert_array_equal(run(sut, x), want)


def test_builtin_kernels_equal_plain_builtin_interpreter(litert):
    xs = kws_inputs(20)
    sut = loaded(kernels="builtin")
    try:
        builtin = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        got = [run(sut, x) for x in xs]
        for g, want in zip(got, plain_outputs(litert, xs, builtin)):
            np.testing.assert_array_equal(g, want)
        d = sut.describe()
        assert d.extra["kernels"] == "builtin" and d.extra.get("delegate_nodes", 0) == 0
    finally:
        sut.close()


def test_different_input_gives_different_output(sut):
    a, b = kws_inputs(2)
    out_a = run(sut, a)
    assert not np.array_equal(out_a, run(sut, b))
    np.testing.assert_array_equal(run(sut, a), out_a)


def test_specs_batch_1_with_tflite_quantization(sut):
    i, o = sut.input_spec(), sut.output_spec()
    assert (i.shape, i.dtype, i.scale, i.zero_point) == ((1, 49, 10, 1), "int8", KWS_SCALE_IN,
                                                          KWS_ZP_IN)
    assert (o.shape, o.dtype, o.scale, o.zero_point) == ((1, 12), "int8", KWS_SCALE_OUT,
                                                          KWS_ZP_OUT)


def test_describe_names_package_and_kernels(sut):
    d = sut.describe()
    assert (d.name, d.runtime, d.model_format) == ("tflite-cpu", "ai-edge-litert", "tflite")
    assert d.runtime_version == metadata.version("ai-edge-litert") == TFLiteCPU.runtime_version()
    assert (d.precision, d.threads) == ("int8", 1)
    assert d.extra["kernels"] == "xnnpack" and d.extra["package"] == "ai-edge-litert"
    if "delegate_nodes" in d.extra:
        assert d.extra["delegate_nodes"] >= 1  # XNNPACK really took the graph


def test_issue_offline(litert, sut):
    xs = kws_inputs(30)
    done = np.zeros(len(xs), dtype=np.int64)
    sut.issue_offline(xs, done)
    assert (done > 0).all() and (np.diff(done) >= 0).all()
    for x, want in zip(xs[:5], plain_outputs(litert, xs[:5])):
        np.testing.assert_array_equal(run(sut, x), want)


def test_close_twice(litert):
    sut = loaded()
    sut.close()
    sut.close()


def test_unknown_option_lists_accepted():
    with pytest.raises(UsageError, match="accepted: kernels, threads"):
        TFLiteCPU("single-stream", {"precision": "f32"})


def test_bad_option_values():
    with pytest.raises(UsageError, match="threads=0"):
        TFLiteCPU("single-stream", {"threads": "0"})
    with pytest.raises(UsageError, match="xnnpack, builtin"):
        TFLiteCPU("single-stream", {"kernels": "gpu"})


def test_unsupported_suffix(tmp_path):
    with pytest.raises(UsageError, match=r"accepted model formats: \.tflite"):
        TFLiteCPU("single-stream").load(tmp_path / "model.onnx")


def test_corrupt_model_names_file_and_runtime_error(litert, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(UsageError) as info:
        TFLiteCPU("single-stream").load(bad)
    message = str(info.value)
    assert str(bad) in message and "ai-edge-litert:" in message and "\n" not in message


def test_module_import_does_not_import_the_runtime():
    assert_no_runtime_import(MODULE, ("ai_edge_litert", "tflite_runtime"))


def test_missing_runtime_names_the_fix():
    """Simulates uninstalled LiteRT and tflite-runtime (they cannot be uninstalled here) via
    sys.modules[name] = None."""
    assert_missing_runtime_message(
        MODULE, "TFLiteCPU", ("ai_edge_litert", "tflite_runtime"), KWS_TFLITE,
        "SUT 'tflite-cpu' needs ai-edge-litert: pip install 'tinyharness[litert]'")


def test_falls_back_to_tflite_runtime_api(litert):
    """tflite-runtime cannot be installed next to numpy 2 here, so the real LiteRT interpreter
    module stands in under the tflite_runtime name (same API) while ai_edge_litert is blocked."""
    need(KWS_TFLITE)
    proc = run_python(
        "import sys, types\n"
        "import ai_edge_litert.interpreter as real\n"
        "sys.modules['tflite_runtime'] = types.ModuleType('tflite_runtime')\n"
        "sys.modules['tflite_runtime.interpreter'] = real\n"
        "sys.modules['ai_edge_litert.interpreter'] = None\n"
        "from tinyharness.suts.tflite_cpu.sut import TFLiteCPU\n"
        "sut = TFLiteCPU('single-stream')\n"
        f"sut.load({str(KWS_TFLITE)!r})\n"
        "print('RUNTIME', sut.describe().runtime, sut.describe().extra['package'])\n")
    assert proc.returncode == 0, proc.stderr
    assert "RUNTIME tflite-runtime tflite-runtime" in proc.stdout
