"""Issue 13 §5: every built-in SUT passes the conformance kit (tinyharness.testing), as a
third-party plugin's own test suite would run it. A SUT whose runtime is not installed is skipped
with the extra that installs it; the serial SUT runs against the DUT emulator (TFLite Micro running
the kws01 reference model on a pty) and needs the shared MLPerf Tiny files.

References: onnxruntime-cpu on digits01_float.onnx. A float model of the same network agrees
within 1e-4; an int8 model within INT8_TOLERANCE (a couple of its output steps of 1/256)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from tinyharness.plugins import installed, registry
from tinyharness.resources import data_dir
from tinyharness.testing import SUTConformance

INT8_TOLERANCE = 0.01  # int8 digits01 vs the float model: 1 step (0.0039) measured, 2.5 allowed
DIGITS01 = data_dir("reference_models") / "digits01"
SHARED = (os.path.dirname(os.path.abspath(__file__)) + "/../../../shared/mlperf_tiny")
SHARED = os.path.normpath(SHARED)


def _installed(name: str) -> bool:
    cls = registry().suts.get(name)
    return cls is not None and installed(cls)


def needs(name: str):
    """Skip the class when SUT ``name`` is not registered or its runtime is not installed."""
    cls = registry().suts.get(name)
    if cls is None:
        return pytest.mark.skip(reason=f"SUT {name!r} is not registered (TINYHARNESS_PLUGINS?)")
    hint = f"pip install 'tinyharness[{cls.extra}]'" if cls.extra else f"install {cls.runtime}"
    return pytest.mark.skipif(not installed(cls), reason=f"{name}: its runtime {cls.runtime} is "
                              f"not installed ({hint})")


ORT = "onnxruntime-cpu" if _installed("onnxruntime-cpu") else None  # else the rule is skipped


@needs("null")
class TestNull(SUTConformance):
    """Returns at once with a fixed output: repeatable is skipped (its output does not depend on
    the input) and there is no model to compare with a reference."""

    sut = "null"


@needs("onnxruntime-cpu")
class TestOnnxRuntimeCPU(SUTConformance):
    """The reference of the others; compared with itself, the comparison path is exercised."""

    sut = "onnxruntime-cpu"
    reference = "onnxruntime-cpu"


@needs("openvino-cpu")
class TestOpenVINOCPU(SUTConformance):
    """Its default model: digits01_int8.tflite (its first format), against the float model."""

    sut = "openvino-cpu"
    reference = ORT
    tolerance = INT8_TOLERANCE


@needs("openvino-cpu")
class TestOpenVINOCPUFloat(SUTConformance):
    sut = "openvino-cpu"
    model = DIGITS01 / "digits01_float.onnx"
    reference = ORT


@needs("tflite-cpu")
class TestTFLiteCPU(SUTConformance):
    """Its default model: digits01_int8.tflite, against the float model."""

    sut = "tflite-cpu"
    reference = ORT
    tolerance = INT8_TOLERANCE


@needs("tflite-cpu")
class TestTFLiteCPUFloat(SUTConformance):
    sut = "tflite-cpu"
    model = DIGITS01 / "digits01_float.tflite"
    reference = ORT


@needs("torch-cpu")
class TestTorchCPU(SUTConformance):
    """digits01_float.pt2 (the torch.export program; not yet a default model of digits01)."""

    sut = "torch-cpu"
    model = DIGITS01 / "digits01_float.pt2"
    reference = ORT
    tolerance = 1e-4


@needs("torch-cpu")
class TestTorchCPUCompile(TestTorchCPU):
    """The same program through torch.compile (inductor), compiled in load()."""

    options = {"mode": "compile"}

    @pytest.mark.xfail(reason="torch._dynamo's eval_frame holds a bounded, fluctuating amount of "
                       "heap (25 KB after 2,000 calls, 6 KB after 20,000: not a per-call leak), "
                       "above the kit's 8 KB bound", strict=False)
    def test_no_allocation_growth(self) -> None:
        super().test_no_allocation_growth()


def builtin_kernels_reference():
    """tflite-cpu with the built-in kernels by default (what TFLite Micro matches; XNNPACK's int8
    results differ by several output steps): the serial SUT's reference, as a SUT class."""
    from tinyharness.sut_config import choice, option
    from tinyharness.suts.tflite_cpu.config import TFLiteConfig
    from tinyharness.suts.tflite_cpu.sut import TFLiteCPU

    @dataclass(frozen=True)
    class BuiltinConfig(TFLiteConfig):
        kernels: str = option("builtin (default) or xnnpack", choice("xnnpack", "builtin"), "builtin")

    class TFLiteBuiltin(TFLiteCPU):
        name = "tflite-cpu-builtin"
        config_class = BuiltinConfig

    return TFLiteBuiltin


@needs("serial")
class TestSerialEmulator(SUTConformance):
    """The serial SUT against the DUT emulator on a pty. Its outputs are printed by the firmware
    with three decimals: the reference (tflite-cpu, built-in kernels, same .tflite) agrees within
    0.002, half an output step (0.0009 measured)."""

    sut = "serial"
    benchmark = "kws01"
    tolerance = 0.002
    ENV = {"TINYHARNESS_DATASETS": f"{SHARED}/datasets", "TINYHARNESS_MODEL_MIRROR": f"{SHARED}/models"}

    @classmethod
    def setup_class(cls) -> None:
        model = f"{SHARED}/models/kws/kws_ref_model.tflite"
        if not os.path.exists(model) or not os.path.isdir(f"{SHARED}/datasets/kws01"):
            pytest.skip(f"MLPerf Tiny data not found in {SHARED} (kws01 model and dataset)")
        pytest.importorskip("tflite_micro", reason="the DUT emulator runs TFLite Micro")
        from tinyharness.suts.serial.emulator import Emulator

        cls.saved = {key: os.environ.get(key) for key in cls.ENV}
        os.environ.update(cls.ENV)
        cls.emulator = Emulator(model, runtime="tflite-micro")
        cls.emulator.start()
        cls.options = {"port": cls.emulator.port, "timeout": "2"}
        cls.reference = builtin_kernels_reference() if _installed("tflite-cpu") else None

    @classmethod
    def teardown_class(cls) -> None:
        super().teardown_class()
        emulator = cls.__dict__.get("emulator")
        if emulator is not None:
            emulator.stop()
        for key, value in cls.__dict__.get("saved", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
