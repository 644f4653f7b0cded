"""``tinyharness models export`` (issue 14 §3): the plan, the child converter's one-line errors,
and a real export of digits01 to .pt2 where torch and onnx2torch are installed."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tinyharness.cli import cli
from tinyharness.errors import UsageError
from tinyharness.export import DIVISION, export, plan
from tinyharness.model_store import ModelStore
from tinyharness.resources import data_dir

DIGITS01_ONNX = data_dir("reference_models") / "digits01" / "digits01_float.onnx"
MISSING = [m for m in ("torch", "onnx2torch", "onnx") if importlib.util.find_spec(m) is None]


def test_a_benchmark_exports_its_float_onnx_model(tmp_path):
    job = plan("digits01", "executorch", "float", tmp_path, ModelStore())
    assert job.source.file == "digits01_float.onnx" and job.output == tmp_path / "digits01_float.pte"
    job = plan("ad01", "torch", "float", tmp_path, ModelStore())
    assert job.source.file == "ad01_fp32.onnx" and job.output.name == "ad01_fp32.pt2"


def test_the_default_folder_is_the_caches_exported(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYHARNESS_CACHE_DIR", str(tmp_path))
    store = ModelStore()
    job = plan("digits01", "torch", "float", None, store)
    assert job.output.parent == store.cache / "exported" / "digits01"
    assert plan(str(DIGITS01_ONNX), "torch", "float", None, store).output == \
        store.cache / "exported" / "local" / "digits01_float.pt2"


@pytest.mark.parametrize("target, message", [
    ("nosuch", r"'nosuch' is neither a benchmark .* nor an \.onnx file"),
    ("missing.onnx", r"missing\.onnx: no such file"),
])
def test_unknown_targets_are_one_line_errors(target, message):
    with pytest.raises(UsageError, match=message):
        plan(target, "torch", "float", None, ModelStore())


def test_only_onnx_files(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(UsageError, match=r"not an \.onnx file"):
        plan(str(model), "torch", "float", None, ModelStore())


def test_int8_needs_a_calibration_set_and_float_refuses_one(tmp_path):
    with pytest.raises(UsageError, match=r"--precision int8 needs --calibration: a list of kws01 "
                       r"dataset files .* only the benchmark's calibration set"):
        plan("kws01", "executorch", "int8", None, ModelStore())
    with pytest.raises(UsageError, match=r"--calibration is for --precision int8"):
        plan("digits01", "torch", "float", None, ModelStore(), calibration=tmp_path / "x.txt")


def test_an_int8_plan_reads_its_calibration_and_names_the_file(tmp_path):
    cal = tmp_path / "cal.txt"
    cal.write_text("tst_0000_3.bin\ntst_0001_8.bin\n")
    job = plan("digits01", "executorch", "int8", tmp_path, ModelStore(), calibration=cal)
    assert job.output == tmp_path / "digits01_float_pt2e_int8.pte"
    assert job.calibration.inputs.shape == (2, 8, 8, 1)


def test_a_python_without_torchao_names_the_int8_fix(tmp_path):
    cal = tmp_path / "cal.txt"
    cal.write_text("tst_0000_3.bin\n")
    python = _python(tmp_path, f'exec "{sys.executable}" -S "$@"')  # no site-packages
    job = plan("digits01", "torch", "int8", tmp_path, ModelStore(), calibration=cal)
    with pytest.raises(UsageError, match=r"missing torch and onnx and onnx2torch and executorch "
                       r"and torchao: pip install torch onnx onnx2torch executorch torchao"):
        export(job, python, ModelStore())


def _python(tmp_path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_a_python_without_the_converter_names_the_fix(tmp_path):
    python = _python(tmp_path, f'exec "{sys.executable}" -S "$@"')  # no site-packages
    job = plan("digits01", "executorch", "float", tmp_path, ModelStore())
    with pytest.raises(UsageError) as caught:
        export(job, python, ModelStore())
    message = str(caught.value)
    assert message.startswith("cannot export digits01_float.onnx to .pte: missing torch and onnx "
                              "and onnx2torch and executorch: pip install")
    assert "\n" not in message and "--python PATH" in message
    assert not list(tmp_path.glob("*.pte*"))


def test_a_crashing_converter_is_one_line_with_its_log(tmp_path):
    python = _python(tmp_path, 'echo "Traceback ..." >&2; echo "ValueError: boom" >&2; exit 1')
    job = plan("digits01", "torch", "float", tmp_path, ModelStore())
    with pytest.raises(UsageError, match=r"^cannot export digits01_float\.onnx to \.pt2: "
                       r"ValueError: boom \(full log: .*\)$"):
        export(job, python, ModelStore())


def test_a_hung_converter_is_stopped(tmp_path):
    job = plan("digits01", "torch", "float", tmp_path, ModelStore())
    with pytest.raises(UsageError, match=r"took over 1 s; stopped"):
        export(job, _python(tmp_path, "exec sleep 30"), ModelStore(), timeout_s=1)


def test_a_python_that_cannot_run_is_named(tmp_path):
    job = plan("digits01", "torch", "float", tmp_path, ModelStore())
    with pytest.raises(UsageError, match=r"cannot run .*nosuch as the exporter's Python"):
        export(job, str(tmp_path / "nosuch"), ModelStore())


def test_models_help_lists_export():
    result = CliRunner().invoke(cli, ["models", "export", "--help"])
    assert result.exit_code == 0, result.output
    assert "--to [torch|executorch]" in result.output and "--precision" in result.output


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                    "(pip install 'tinyharness[export]')")
def test_digits01_to_pt2_matches_onnxruntime(tmp_path):
    result = CliRunner().invoke(cli, ["models", "export", "digits01", "--to", "torch",
                                      "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    model = tmp_path / "digits01_float.pt2"
    meta = json.loads((tmp_path / "digits01_float.pt2.json").read_text())
    assert meta["division"] == DIVISION and meta["benchmark"] == "digits01"
    assert (meta["source"]["file"], meta["source"]["pinned"]) == ("digits01_float.onnx", True)
    assert meta["versions"]["torch"] and meta["versions"]["onnx2torch"]
    assert meta["converter"].startswith("onnx2torch ") and meta["input"]["shape"] == [1, 8, 8, 1]
    import hashlib

    assert meta["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert meta["source"]["sha256"] == hashlib.sha256(DIGITS01_ONNX.read_bytes()).hexdigest()
    import torch

    program = torch.export.load(str(model)).module()
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(DIGITS01_ONNX), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 8, 8, 1), dtype=np.float32) * 16
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(program(torch.from_numpy(x)).detach().numpy(), want, atol=1e-5)



INT8_MISSING = MISSING + [m for m in ("executorch", "torchao") if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(INT8_MISSING), reason=f"{', '.join(INT8_MISSING)} not installed "
                    "(pip install 'tinyharness[export,executorch]')")
def test_digits01_int8_pt2_is_quantized_calibrated_and_recorded(tmp_path):
    """PT2E with the XNNPACK quantizer on 40 listed digits: the program holds quantize ops and int8
    weights, the sidecar records the method and the calibration list's digest, and the program
    still agrees with the float model on the calibration inputs."""
    import hashlib

    cal = tmp_path / "cal.txt"
    names = [line.split(",")[0] for line in
             (DIGITS01_ONNX.parents[2] / "datasets" / "digits01" / "y_labels.csv")
             .read_text().splitlines()[:40]]
    cal.write_text("\n".join(names) + "\n")
    result = CliRunner().invoke(cli, ["models", "export", "digits01", "--to", "torch", "--precision",
                                      "int8", "--calibration", str(cal), "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "int8: " in result.output and "calibrated on 40 inputs of cal.txt" in result.output
    meta = json.loads((tmp_path / "digits01_float_pt2e_int8.pt2.json").read_text())
    assert meta["precision"] == "int8" and meta["division"] == DIVISION
    q = meta["quantization"]
    assert q["method"].startswith("PT2E") and "XNNPACKQuantizer" in q["quantizer"]
    assert q["calibration"] == {"source": "cal.txt", "samples": 40, "files": names,
                                "sha256": hashlib.sha256(cal.read_bytes()).hexdigest()}
    assert q["quantized_ops"] > 0 and meta["versions"]["torchao"]
    assert meta["check"]["max_abs_diff"] < 0.05  # softmax outputs, on calibrated inputs
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401

    ep = torch.export.load(str(tmp_path / "digits01_float_pt2e_int8.pt2"))
    assert any(str(n.target).startswith("quantized_decomposed.quantize_per_tensor")
               for n in ep.graph.nodes)


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                    "(pip install 'tinyharness[export]')")
def test_ad01_pt2_with_onnx_node_names_loads_back(tmp_path, monkeypatch):
    """ad01's submodules are named after ONNX nodes holding ';' and ',': torch.export.load refused
    such a .pt2 until the exporter renamed them. The real sample scores 9.7071 (the oracle)."""
    from pathlib import Path

    shared = Path(__file__).resolve().parents[3] / "shared" / "mlperf_tiny"
    sample = shared / "samples" / "ad01" / "normal_id_01_00000000_hist_librosa.bin"
    if not (shared / "models_onnx" / "ad" / "ad01_fp32.onnx").is_file() or not sample.is_file():
        pytest.skip(f"MLPerf Tiny files not found in {shared}")
    monkeypatch.setenv("TINYHARNESS_MODEL_MIRROR", str(shared / "models_onnx"))
    store = ModelStore()
    done = export(plan("ad01", "torch", "float", tmp_path, store), sys.executable, store)
    import torch

    model = torch.export.load(str(done.job.output)).module()
    raw = np.fromfile(sample, dtype="<f4")
    windows = [raw[128 * k:128 * k + 640].reshape(1, 640) for k in range(196)]
    score = np.mean([np.mean((model(torch.from_numpy(w.copy())).detach().numpy() - w) ** 2)
                     for w in windows])
    assert score == pytest.approx(9.7071, abs=1e-3)
