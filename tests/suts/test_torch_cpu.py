"""torch-cpu SUT against real PyTorch on the digits01 reference program (digits01_float.pt2)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _models import assert_missing_runtime_message, assert_no_runtime_import, run

from tinyharness.errors import UsageError
from tinyharness.resources import data_dir
from tinyharness.suts.torch_cpu.sut import TorchCPU

MODULE = "tinyharness.suts.torch_cpu.sut"
DIGITS01 = data_dir("reference_models") / "digits01"
FLOAT_PT2 = DIGITS01 / "digits01_float.pt2"
INT8_PT2 = DIGITS01 / "digits01_pt2e_int8.pt2"
DATASET = data_dir("datasets") / "digits01"
TOP1 = 98.33  # every SUT on the float digits01 model (manifest.json)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="pip install 'tinyharness[torch]'")


@pytest.fixture(scope="module")
def digits():
    rows = list(csv.reader(open(DATASET / "y_labels.csv", newline="", encoding="ascii")))
    x = [np.frombuffer((DATASET / r[0]).read_bytes(), np.uint8).reshape(1, 8, 8, 1).astype(np.float32)
         for r in rows]
    return x, np.array([int(r[2]) for r in rows])


def loaded(scenario="single-stream", model: Path = FLOAT_PT2, **options) -> TorchCPU:
    sut = TorchCPU(scenario, {k: str(v) for k, v in options.items()})
    sut.load(model)
    return sut


@pytest.fixture(scope="module", params=["eager", "compile"])
def sut(request, torch):
    sut = loaded(mode=request.param)
    yield sut
    sut.close()


def top1(sut, x, y) -> float:
    pred = [int(np.argmax(run(sut, a))) for a in x]
    return round(100.0 * float(np.mean(np.array(pred) == y)), 2)


def test_float_top1_matches_the_other_suts(sut, digits):
    assert top1(sut, *digits) == TOP1


def test_outputs_equal_the_exported_module(torch, sut, digits):
    module = torch.export.load(str(FLOAT_PT2)).module()
    for a in digits[0][:20]:
        want = module(torch.from_numpy(a)).numpy()
        np.testing.assert_allclose(run(sut, a), want, rtol=0, atol=1e-6)


def test_outputs_agree_with_onnxruntime(sut, digits):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(DIGITS01 / "digits01_float.onnx"), providers=["CPUExecutionProvider"])
    for a in digits[0][:20]:
        np.testing.assert_allclose(run(sut, a), sess.run(None, {"input": a})[0], rtol=0, atol=1e-5)


def test_input_tensor_is_reused_and_output_is_a_copy(sut, digits):
    a, b = digits[0][:2]
    in_tensor = sut._in_tensor
    out_a = run(sut, a)
    kept = out_a.copy()
    out_b = run(sut, b)
    assert sut._in_tensor is in_tensor  # prepare copies into the same preallocated tensor
    assert not np.array_equal(out_a, out_b)
    np.testing.assert_array_equal(out_a, kept)


def test_specs_and_description(torch, sut):
    i, o = sut.input_spec(), sut.output_spec()
    assert (i.shape, i.dtype, i.quantized) == ((1, 8, 8, 1), "float32", False)
    assert (o.shape, o.dtype) == ((1, 10), "float32")
    d = sut.describe()
    assert (d.name, d.runtime, d.runtime_version) == ("torch-cpu", "torch", torch.__version__)
    assert (d.model_format, d.precision, d.threads) == ("pt2", "float32", 1)
    assert d.device.startswith("CPU") and d.extra["inference_mode"] is True
    assert d.extra["mode"] == sut.config.mode
    if sut.config.mode == "compile":
        assert d.extra["compile"]["backend"] == "inductor"


def test_pt2e_int8_program_runs_and_says_so(torch, digits):
    """The PT2E int8 program (int8 weights and activations, float in and out) scores the manifest's
    figure, and the run says int8 beside its float32 input."""
    sut = loaded(model=INT8_PT2)
    try:
        assert top1(sut, *digits) == TOP1  # manifest.json: digits01/digits01_pt2e_int8.pt2
        d = sut.describe()
        assert (d.precision, d.inference_precision) == ("float32", "int8")
        assert "quantize_per_tensor" in d.extra["quantized_ops"]
        assert loaded(model=FLOAT_PT2).describe().inference_precision is None
    finally:
        sut.close()


@pytest.mark.parametrize("options,offline", [({"batch": 16}, "batch"), ({"lanes": 2}, "lanes"),
                                             ({"batch": 1, "threads": 1}, "sequential")])
def test_issue_offline(torch, digits, options, offline):
    x = digits[0][:50]  # 50: the last batch of 16 is padded
    ref = loaded()
    expected = [run(ref, a) for a in x]
    ref.close()
    sut = loaded("offline", **options)
    try:
        assert sut.describe().extra["offline"] == offline
        done = np.zeros(len(x), dtype=np.int64)
        sut.issue_offline(x, done)
        assert (done > 0).all()
        if offline == "batch":
            assert sut.describe().extra["offline_batch"] == 16
            assert len(set(done[:16])) == 1 and (np.diff(done[::16]) > 0).all()
        if offline == "lanes":
            assert sut.describe().extra["offline_lanes"] == 2
            for lane in (done[0::2], done[1::2]):
                assert (np.diff(lane) >= 0).all()
        for a, want in zip(x, expected):  # single queries still run after the offline ones
            np.testing.assert_allclose(run(sut, a), want, rtol=0, atol=1e-6)
    finally:
        sut.close()


def test_offline_default_measures_and_reports(torch, digits):
    sut = loaded("offline", threads=2)
    try:
        extra = sut.describe().extra
        assert set(extra["offline_rates_at_load"]) == {"sequential", "batch", "lanes"}
        assert extra["offline"] == max(extra["offline_rates_at_load"], key=extra["offline_rates_at_load"].get)
    finally:
        sut.close()


def test_threads_restored_on_close(torch):
    before = torch.get_num_threads()
    sut = loaded(threads=1 if before != 1 else 2)
    assert torch.get_num_threads() != before
    sut.close()
    sut.close()
    assert torch.get_num_threads() == before


def test_torchscript_needs_a_benchmark_for_its_shape(torch, tmp_path, digits):
    from tinyharness.benchmark import get_benchmark

    module = torch.jit.trace(torch.export.load(str(FLOAT_PT2)).module(), torch.zeros(1, 8, 8, 1))
    path = tmp_path / "digits01.pt"
    module.save(str(path))
    with pytest.raises(UsageError, match="does not record its input shape"):
        TorchCPU("single-stream").load(path)
    sut = TorchCPU("single-stream", benchmark=get_benchmark("digits01"))
    sut.load(path)
    try:
        assert sut.input_spec().shape == (1, 8, 8, 1) and sut.output_spec().shape == (1, 10)
        assert top1(sut, *digits) == TOP1
    finally:
        sut.close()
    with pytest.raises(UsageError, match="mode=compile needs a torch.export program"):
        TorchCPU("single-stream", {"mode": "compile"}, benchmark=get_benchmark("digits01")).load(path)


def test_unknown_option_lists_accepted():
    with pytest.raises(UsageError, match="accepted: batch, lanes, mode, threads"):
        TorchCPU("single-stream", {"backend": "inductor"})


@pytest.mark.parametrize("key,value", [("mode", "jit"), ("threads", "0"), ("batch", "0"),
                                       ("batch", "100000"), ("lanes", "0")])
def test_bad_option_values_are_usage_errors(key, value):
    with pytest.raises(UsageError, match=f"{key}={value}"):
        TorchCPU("single-stream", {key: value})


def test_mode_is_case_insensitive():
    assert TorchCPU("single-stream", {"mode": "Compile"}).config.mode == "compile"


def test_unsupported_suffix(tmp_path):
    with pytest.raises(UsageError, match=r"accepted model formats: \.pt2, \.pt"):
        TorchCPU("single-stream").load(tmp_path / "model.onnx")


def test_corrupt_model_names_file_and_runtime_error(torch, tmp_path):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip \xff\xff\xff")
    with pytest.raises(UsageError) as info:
        TorchCPU("single-stream").load(bad)
    message = str(info.value)
    assert str(bad) in message and "torch:" in message and "\n" not in message


def test_module_import_does_not_import_torch():
    assert_no_runtime_import(MODULE, ("torch",))


def test_missing_runtime_names_the_fix():
    assert_missing_runtime_message(MODULE, "TorchCPU", ("torch",), FLOAT_PT2,
                                   "SUT 'torch-cpu' needs torch: pip install 'tinyharness[torch]'")


def test_listed_with_its_extra():
    from tinyharness.plugins import EXTRAS, RUNTIME_MODULES, registry

    cls = registry().suts["torch-cpu"]
    assert (cls.extra, EXTRAS["torch-cpu"], RUNTIME_MODULES["torch-cpu"]) == ("torch", "torch", ("torch",))
