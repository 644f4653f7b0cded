"""The load generator's checks against every real host runtime, on the embedded digits01 benchmark
(no download): each SUT's outputs match the output spec it declares (the accuracy pass checks every
one and fails the run on a mismatch), and its offline completion stamps lie within the query's
call (checked after every offline query). A check that rejected a real runtime would fail every
run with it; these tests are what shows it does not."""

from __future__ import annotations

import pytest

from tinyharness.benchmark import get_benchmark
from tinyharness.dataset import Dataset
from tinyharness.qsl import QSL
from tinyharness.scenarios.accuracy import run_accuracy, score
from tinyharness.scenarios.offline import query_of, run_offline

MODELS = ("digits01_float.onnx", "digits01_float.tflite", "digits01_int8.tflite")
# top-1 of every digits01 reference model, from reference_models/manifest.json (measured when
# the models were built, not by the harness)
DIGITS01_TOP1 = 98.33


def suts():
    from tinyharness.suts.onnxruntime_cpu.sut import OnnxRuntimeCPU
    from tinyharness.suts.openvino_cpu.sut import OpenVINOCPU
    from tinyharness.suts.tflite_cpu.sut import TFLiteCPU

    for cls, runtime in ((OnnxRuntimeCPU, "onnxruntime"), (TFLiteCPU, "ai_edge_litert"),
                         (OpenVINOCPU, "openvino")):
        for model in MODELS:
            if model.rsplit(".", 1)[1] in cls.model_formats:
                yield pytest.param(cls, runtime, model, id=f"{cls.name}-{model}")


def loaded(cls, runtime: str, model: str, scenario: str, **options):
    pytest.importorskip(runtime)
    bench = get_benchmark("digits01")
    path = bench.default_dataset().parents[1] / "reference_models" / "digits01" / model
    sut = cls(scenario, {k: str(v) for k, v in options.items()}, benchmark=bench)
    sut.load(path)
    dataset = Dataset.open(bench.default_dataset(), bench.dataset_id, bench.label_file,
                           bench.sample_shape, bench.sample_dtype, bench.windowed)
    spec = sut.input_spec()
    return sut, QSL(dataset, bench.transform[spec.dtype], spec)


@pytest.mark.parametrize(("cls", "runtime", "model"), list(suts()))
def test_every_output_of_a_real_runtime_passes_the_output_spec_check(cls, runtime, model):
    sut, qsl = loaded(cls, runtime, model, "single-stream")
    try:
        run = run_accuracy(sut, qsl)  # raises RunFailed on the first output off the spec
        spec = sut.output_spec()
        assert run.outputs.dtype.name == spec.dtype and run.outputs.shape == (360, 10)
        assert round(score(run, "top1", 90.0, spec).value, 2) == DIGITS01_TOP1
    finally:
        sut.close()


@pytest.mark.parametrize(("cls", "runtime", "model"), list(suts()))
def test_offline_stamps_of_a_real_runtime_lie_within_the_query(cls, runtime, model):
    # two threads: lanes or requests in parallel where the SUT has them
    sut, qsl = loaded(cls, runtime, model, "offline", threads=2)
    try:
        qsl.load(range(32))
        samples = [qsl.sample(i) for i in range(32)]
        run = run_offline(sut, samples, min_duration_s=0.0, min_query_count=2000, expected_qps=1.0)
        assert run.count == 2000 and (run.completions_ns > 0).all()
        assert len(query_of(samples, 2000)) == 2000
    finally:
        sut.close()
