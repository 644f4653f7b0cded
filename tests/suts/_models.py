"""Paths and helpers shared by the SUT plugin tests (real runtimes, real MLPerf Tiny files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MLPERF_TINY = (Path(__file__).resolve().parents[2] / ".." / "shared" / "mlperf_tiny").resolve()
KWS_TFLITE = MLPERF_TINY / "models" / "kws" / "kws_ref_model.tflite"
KWS_ONNX = MLPERF_TINY / "models_onnx" / "kws" / "kws_ref_model.onnx"
KWS_FP32_ONNX = MLPERF_TINY / "models_onnx" / "kws" / "kws_ref_model_fp32.onnx"
KWS01 = MLPERF_TINY / "datasets" / "kws01"
KWS_SCALE_IN, KWS_ZP_IN = 0.5847029089927673, 83  # from the .tflite's input tensor
KWS_SCALE_OUT, KWS_ZP_OUT = 0.00390625, -128


def need(*paths: Path) -> None:
    """Skip the test when the shared MLPerf Tiny files are not next to the repository."""
    for path in paths:
        if not path.exists():
            pytest.skip(f"MLPerf Tiny data not found: {path} (expected in ../shared/mlperf_tiny)")


def kws_inputs(count: int) -> list[np.ndarray]:
    """The first ``count`` kws01 inputs (490 int8 bytes each) as model-ready [1,49,10,1] arrays."""
    need(KWS01)
    files = sorted(KWS01.glob("*.bin"))[:count]
    if len(files) < count:
        pytest.skip(f"only {len(files)} kws01 inputs in {KWS01}")
    return [np.fromfile(f, dtype=np.int8).reshape(1, 49, 10, 1) for f in files]


def run(sut, sample: np.ndarray) -> np.ndarray:
    sut.prepare(sample)
    sut.infer()
    return sut.output()


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (clean sys.modules), capturing its output."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def assert_no_runtime_import(module: str, runtime_modules: tuple[str, ...]) -> None:
    """Importing the plugin's entry-point module imports neither numpy nor the runtime (the CLI
    loads it for --help); calling its hook imports the SUT class, still not the runtime."""
    plugin = module.removesuffix(".sut")
    proc = run_python(
        "import sys, importlib\n"
        f"m = importlib.import_module({plugin!r})\n"
        "assert 'numpy' not in sys.modules, 'the entry-point module imported numpy'\n"
        "found = []\n"
        "m.register_suts(register=found.append)\n"
        "assert len(found) == 1, found\n"
        f"loaded = [r for r in {runtime_modules!r} if r in sys.modules]\n"
        "print('LOADED', loaded)\n")
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def assert_missing_runtime_message(module: str, cls: str, runtime_modules: tuple[str, ...],
                                   model: Path, expected: str) -> None:
    """Simulates an uninstalled runtime (it cannot be uninstalled here): sys.modules[name] = None
    makes ``import name`` raise ImportError, as it would without the package."""
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in runtime_modules)
    proc = run_python(
        "import sys\n" + blocked +
        f"from {module} import {cls}\n"
        "from tinyharness.errors import UsageError\n"
        f"sut = {cls}('single-stream')\n"
        "try:\n"
        f"    sut.load({str(model)!r})\n"
        "except UsageError as exc:\n"
        "    print('USAGE', exc)\n")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line == f"USAGE {expected}", line
    assert "\n" not in line
