"""kws01 accuracy on the 1000 official kws01 files, real runtimes, through the CLI.

Oracle: expected_values.json and mlperf-tiny.md §2.3: the int8 model gives 90.2 % with
ai-edge-litert (XNNPACK) and 90.1 % with the built-in kernels / tflite-runtime; the ONNX QDQ
conversion is bit-exact with LiteRT's default kernels on kws01; the "float32" (hybrid) model fed
dequantized inputs gives 90.0 % with ai-edge-litert.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

import _helpers as h

pytestmark = pytest.mark.slow

INT8_TFLITE = h.MODELS / "kws" / "kws_ref_model.tflite"
HYBRID_TFLITE = h.MODELS / "kws" / "kws_ref_model_float32.tflite"


def accuracy(cli_run, kws_root, sut, *extra):
    return cli_run("--benchmark", "kws01", "--sut", sut, "--mode", "accuracy",
                   "--dataset", kws_root, *extra)


def predictions(run_dir) -> dict[int, int]:
    return {e["qsl_idx"]: e["prediction"] for e in h.accuracy_log(run_dir)}


def test_tflite_int8_top1_on_the_official_1000_files_is_valid(cli_run, kws_root):
    summary, run_dir = accuracy(cli_run, kws_root, "tflite-cpu")
    acc = summary["accuracy"]
    assert 89.9 <= acc["value"] <= 90.4, acc
    assert summary["valid"] and summary["invalid_reasons"] == [] and acc["passed"]
    assert acc["count"] == acc["files"] == summary["dataset"]["count"] == 1000
    assert acc["output"] == {"name": "Identity", "shape": [1, 12], "dtype": "int8",
                             "scale": 0.00390625, "zero_point": -128}
    # the reference model itself, found in the mirror and recognised by its checksum
    assert summary["model"]["reference"] == "kws_ref_model.tflite"
    assert summary["model"]["found_in"] == "mirror"
    assert summary["system"]["sut"]["extra"]["kernels"] == "xnnpack"
    # accuracy.json: label-file order, the true labels, argmax of the stored bytes, top-1 recomputed
    rows = list(csv.reader((kws_root / "kws01" / "y_labels.csv").read_text().splitlines()))
    log = h.accuracy_log(run_dir)
    assert [e["qsl_idx"] for e in log] == list(range(1000))
    assert [(e["file"], e["label"]) for e in log] == [(r[0], int(r[2])) for r in rows]
    outputs = np.stack([h.decode(e, "int8") for e in log])
    assert outputs.shape == (1000, 12)
    assert [e["prediction"] for e in log] == outputs.argmax(axis=1).tolist()
    top1 = 100.0 * np.mean(outputs.argmax(axis=1) == [e["label"] for e in log])
    assert top1 == pytest.approx(acc["value"], abs=1e-9)


def test_tflite_int8_top1_matches_the_oracle_for_litert(cli_run, kws_root):
    summary, _ = accuracy(cli_run, kws_root, "tflite-cpu")
    oracle = h.expected_values()["kws01_top1_percent_on_1000_files"]
    int8 = next(v for k, v in oracle.items() if k.startswith("models/kws/kws_ref_model.tflite"))
    expected = h.oracle_for_runtime(int8, summary["system"]["runtime"])
    assert summary["accuracy"]["value"] == pytest.approx(expected, abs=0.5)


def test_openvino_reading_the_tflite_is_within_0_3_points(cli_run, kws_root):
    ref, _ = accuracy(cli_run, kws_root, "tflite-cpu")
    ov, _ = accuracy(cli_run, kws_root, "openvino-cpu", "--model", INT8_TFLITE)
    assert ov["model"]["format"] == "tflite" and ov["model"]["reference"] == "kws_ref_model.tflite"
    assert ov["valid"]
    assert abs(ov["accuracy"]["value"] - ref["accuracy"]["value"]) <= 0.3


def test_onnxruntime_on_the_qdq_model_is_bit_exact_with_litert_xnnpack(cli_run, kws_root):
    ref, ref_dir = accuracy(cli_run, kws_root, "tflite-cpu")
    ort, ort_dir = accuracy(cli_run, kws_root, "onnxruntime-cpu")
    assert ort["model"]["reference"] == "kws_ref_model.onnx"  # the default ONNX model
    assert ort["accuracy"]["value"] == ref["accuracy"]["value"]
    assert predictions(ort_dir) == predictions(ref_dir)
    assert ort["accuracy"]["output"]["dtype"] == "int8"
    # same raw output bytes for every file (the conversion is documented bit-exact on kws01) where
    # the CPU has an int8 dot product; on an AVX2 x86 without VNNI, ORT's other kernels move
    # file 362 by 3 steps (CI host, and qemu-x86_64 -cpu Haswell-v4), so a few steps on a few files
    ref_out = {e["qsl_idx"]: h.decode(e, "int8").astype(int) for e in h.accuracy_log(ref_dir)}
    steps = {e["qsl_idx"]: int(np.abs(h.decode(e, "int8").astype(int) - ref_out[e["qsl_idx"]]).max())
             for e in h.accuracy_log(ort_dir)}
    differing = [i for i, d in steps.items() if d]
    if h.int8_dot_product(ort):
        assert differing == []
    else:
        assert len(differing) <= 5 and max(steps.values()) <= 4, {i: steps[i] for i in differing}
    # and ORT found the output quantization in the QDQ graph
    assert ort["accuracy"]["output"]["scale"] == pytest.approx(1 / 256)
    assert ort["accuracy"]["output"]["zero_point"] == -128


def test_litert_builtin_kernels_give_90_1(cli_run, kws_root):
    summary, run_dir = accuracy(cli_run, kws_root, "tflite-cpu", "--sut-option", "kernels=builtin")
    extra = summary["system"]["sut"]["extra"]
    assert extra["kernels"] == "builtin"
    assert extra.get("delegate_nodes", 0) == 0  # really no XNNPACK
    assert summary["settings"]["sut_options"] == {"kernels": "builtin"}
    assert summary["accuracy"]["value"] == pytest.approx(90.1, abs=1e-6)
    assert summary["valid"]


def test_hybrid_float_model_with_dequantized_inputs(cli_run, kws_root):
    summary, run_dir = accuracy(cli_run, kws_root, "tflite-cpu", "--model", HYBRID_TFLITE)
    assert summary["model"]["reference"] == "kws_ref_model_float32.tflite"
    assert summary["system"]["precision"] == "float32"  # float input: fed (q - 83) * 0.5847029
    assert summary["accuracy"]["output"]["dtype"] == "float32"
    oracle = h.expected_values()["kws01_top1_percent_on_1000_files"]
    hybrid = next(v for k, v in oracle.items() if k.startswith("models/kws/kws_ref_model_float32"))
    expected = h.oracle_for_runtime(hybrid, summary["system"]["runtime"])
    assert summary["accuracy"]["value"] == pytest.approx(expected, abs=0.5)
    assert summary["valid"]
    # the float outputs are softmax probabilities
    sums = [h.decode(e, "float32").sum() for e in h.accuracy_log(run_dir)]
    assert np.allclose(sums, 1.0, atol=1e-4)


# -- PyTorch and ExecuTorch (issue 14): the float ONNX model exported, and PT2E int8 -----------
FP32_ONNX = h.MODELS_ONNX / "kws" / "kws_ref_model_fp32.onnx"
CALIBRATION_SEED, CALIBRATION_COUNT = 20261202, 120


@pytest.mark.parametrize("sut, to", [("torch-cpu", "torch"), ("executorch-cpu", "executorch")])
def test_exported_float_model_agrees_with_its_onnx_source(cli_run, kws_root, exported, sut, to):
    """The .pt2/.pte from the fp32 ONNX model: top-1 within 0.3 points of onnxruntime-cpu on that
    ONNX model (91.3 % measured; the tflite "float32" model is hybrid, 90.0 %, see above), and the
    same prediction on at least 995 of the 1000 files."""
    model = exported("kws01", to)
    summary, run_dir = accuracy(cli_run, kws_root, sut, "--model", model, "--sut-option",
                                "threads=1")
    ort, ort_dir = accuracy(cli_run, kws_root, "onnxruntime-cpu", "--model", FP32_ONNX)
    assert summary["system"]["precision"] == "float32"
    assert summary["accuracy"]["value"] == pytest.approx(ort["accuracy"]["value"], abs=0.3)
    ours, theirs = predictions(run_dir), predictions(ort_dir)
    assert sum(ours[i] == theirs[i] for i in theirs) >= 995
    assert summary["valid"]


def _stand_in_calibration(tmp_path_factory, kws_root) -> tuple[object, set[str]]:
    """120 of the 1000 test files, drawn with a fixed seed: kws01's official calibration inputs
    (indices into the Speech Commands validation split) are not among the shared data. Scores on
    the other 880 files are the held-out figure."""
    with open(kws_root / "kws01" / "y_labels.csv", newline="") as fh:
        names = [row[0] for row in csv.reader(fh)]
    rng = np.random.default_rng(CALIBRATION_SEED)
    chosen = sorted(names[i] for i in rng.choice(len(names), CALIBRATION_COUNT, replace=False))
    path = tmp_path_factory.mktemp("kws_cal") / "kws01_stand_in_calibration.txt"
    path.write_text("\n".join(chosen) + "\n")
    return path, set(chosen)


@pytest.mark.parametrize("sut, to", [("torch-cpu", "torch"), ("executorch-cpu", "executorch")])
def test_pt2e_int8_beside_the_reference_int8(cli_run, kws_root, exported, tmp_path_factory,
                                             sut, to):
    """PT2E int8 (XNNPACK quantizer) of the float model, calibrated on 120 stand-in files: within
    1.5 points of the reference int8 model on the 880 files it was not calibrated on."""
    cal, used = _stand_in_calibration(tmp_path_factory, kws_root)
    model = exported("kws01", to, "--precision", "int8", "--calibration", cal, "--dataset",
                     kws_root)
    summary, run_dir = accuracy(cli_run, kws_root, sut, "--model", model, "--sut-option",
                                "threads=1")
    assert summary["system"]["inference_precision"] == "int8"
    ref, ref_dir = accuracy(cli_run, kws_root, "tflite-cpu")

    def held_out(folder) -> float:
        log = [e for e in h.accuracy_log(folder) if e["file"] not in used]
        assert len(log) == 1000 - CALIBRATION_COUNT
        return 100.0 * float(np.mean([e["prediction"] == e["label"] for e in log]))

    ours, theirs = held_out(run_dir), held_out(ref_dir)
    print(f"{sut} PT2E int8: top-1 {summary['accuracy']['value']:.1f} % on 1000 files, "
          f"{ours:.2f} % on the 880 held out (reference int8 {theirs:.2f} %)")
    assert ours == pytest.approx(theirs, abs=1.5)


def test_a_torch_cpu_package_passes_check_in_the_open_division(kws_root, exported, tmp_path):
    """A kws01 run (accuracy and performance) of the exported .pt2 on torch-cpu packages into the
    open division, which 'tinyharness check' accepts; the closed division refuses the model."""
    import json

    from fakes import filled_system

    model = exported("kws01", "torch")
    h.require_runtime("torch-cpu")
    summary, run_dir = h.run(tmp_path / "runs", "--benchmark", "kws01", "--sut", "torch-cpu",
                             "--model", model, "--mode", "all", "--dataset", kws_root)
    assert summary["model"]["reference"] is None and summary["model"]["format"] == "pt2"
    system = tmp_path / "host-torch.json"
    done = h.tinyharness("system", "init", "--sut", "torch-cpu", "--submitter", "tinyharness",
                         "--division", "open", "--output", system)
    assert done.returncode == 0, done.stderr
    system.write_text(json.dumps(filled_system(json.loads(system.read_text()))))
    args = ("package", run_dir, "--submitter", "tinyharness", "--system", system)
    closed = h.tinyharness(*args, "--division", "closed", "--output", tmp_path / "closed")
    assert closed.returncode == 2 and "not one of the rule set's reference models" in closed.stderr
    done = h.tinyharness(*args, "--division", "open", "--output", tmp_path / "pkg")
    assert done.returncode == 0, done.stderr
    check = h.tinyharness("check", tmp_path / "pkg")
    assert check.returncode == 0 and ": OK under the MLPerf Tiny" in check.stdout, check.stdout
    results = tmp_path / "pkg" / "open" / "tinyharness" / "results" / "host-torch" / "kws"
    assert sorted(p.name for p in results.iterdir()) == ["accuracy", "performance"]
