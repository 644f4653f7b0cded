"""``tinyharness models convert`` through a subprocess, with the real tf2onnx in the interpreter that
TINYHARNESS_CONVERT_PYTHON names (default: this one). The converted models run on onnxruntime and are
compared with LiteRT's default (XNNPACK) kernels on the .tflite they come from.

TensorFlow's start-up costs ~5 s per conversion, so each model is converted once per module."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CONVERT_PYTHON = os.environ.get("TINYHARNESS_CONVERT_PYTHON") or sys.executable
KWS_TFLITE_SHA256 = "aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae"
FIX = "pip install 'tinyharness[convert]' (or --python PATH to a Python that has it)"


def has_tf2onnx(python: str) -> bool:
    """find_spec, not an import: TensorFlow's start-up is what the harness avoids."""
    if python == sys.executable:
        return importlib.util.find_spec("tf2onnx") is not None
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tf2onnx') is None)"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0


def tinyharness(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", "models", "convert", *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def base_env(root: Path) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TINYHARNESS_")}
    return {**clean, "TINYHARNESS_CACHE_DIR": str(root / "cache"), "TMPDIR": str(root)}


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyharness: error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def converter() -> str:
    if not has_tf2onnx(CONVERT_PYTHON):
        pytest.skip(f"tf2onnx is not importable in {CONVERT_PYTHON}: pip install "
                    "'tinyharness[convert]' or set TINYHARNESS_CONVERT_PYTHON")
    return CONVERT_PYTHON


@pytest.fixture(scope="module")
def conversions() -> dict:
    """Conversions done so far in this module, by name: (root, completed process, seconds)."""
    return {}


def convert_once(conversions: dict, tmp_path_factory, name: str, *args: str, env_extra=None):
    if name not in conversions:
        root = tmp_path_factory.mktemp(name)
        env = {**base_env(root), **(env_extra or {})}
        start = time.perf_counter()
        done = tinyharness(*args, env=env)
        conversions[name] = (root, done, time.perf_counter() - start)
        print(f"\n{name}: converted in {conversions[name][2]:.1f} s")
    root, done, _ = conversions[name]
    assert done.returncode == 0, done.stderr
    return root, done


@pytest.fixture
def kws(shared_data, converter, conversions, tmp_path_factory):
    """kws01 by benchmark id, the .tflite from a mirror, into the default output folder."""
    root, done = convert_once(conversions, tmp_path_factory, "kws", "kws01", env_extra={
        "TINYHARNESS_MODEL_MIRROR": str(shared_data / "models"),
        "TINYHARNESS_CONVERT_PYTHON": converter})
    return root / "cache" / "models" / "converted" / "kws" / "kws_ref_model.onnx", done


@pytest.fixture
def ad01_fp32(shared_data, converter, conversions, tmp_path_factory):
    """A MODEL.tflite path with --output."""
    out = tmp_path_factory.getbasetemp() / "ad01_out"
    convert_once(conversions, tmp_path_factory, "ad01_fp32",
                 str(shared_data / "models" / "ad" / "ad01_fp32.tflite"), "--output", str(out),
                 "--python", converter)
    return out / "ad01_fp32.onnx"


@pytest.fixture
def vww_int8(shared_data, converter, conversions, tmp_path_factory):
    """A MODEL.tflite path into the default output folder for local files."""
    root, _ = convert_once(conversions, tmp_path_factory, "vww",
                           str(shared_data / "models" / "vww" / "vww_96_int8.tflite"),
                           "--python", converter)
    return root / "cache" / "models" / "converted" / "local" / "vww_96_int8.onnx"


def litert(path: Path, reference: bool = False):
    """LiteRT's default (XNNPACK) kernels, or its builtin reference kernels."""
    lite = pytest.importorskip("ai_edge_litert.interpreter")
    resolver = lite.OpResolverType.BUILTIN_REF if reference else lite.OpResolverType.AUTO
    interpreter = lite.Interpreter(model_path=str(path), num_threads=1,
                                   experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).copy()
    return run


def onnxruntime(path: Path):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def outputs(run, inputs: np.ndarray) -> np.ndarray:
    """One sample at a time: the .tflite models have batch 1."""
    return np.concatenate([run(x[None]) for x in inputs])


def compare(tflite: Path, onnx_path: Path, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LiteRT's (XNNPACK) and onnxruntime's outputs."""
    return outputs(litert(tflite), inputs), outputs(onnxruntime(onnx_path), inputs)


def test_benchmark_goes_to_the_converted_folder_not_the_stores(kws):
    path, done = kws
    root = path.parents[4]
    assert path.is_file()
    assert not (root / "cache" / "models" / "kws" / "kws_ref_model.onnx").exists()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"kws_ref_model.tflite -> {path}" in done.stdout
    assert f"sha256 {digest}:" in done.stdout
    assert "pinned kws_ref_model.onnx" in done.stdout and "--model" in done.stdout
    # the fp32 ONNX comes from a SavedModel: named, not converted
    assert "kws_ref_model_fp32.onnx: skipped" in done.stderr
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_metadata_and_nhwc_int8_layout(kws, shared_data, converter):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(kws[0]))
    props = {p.key: p.value for p in model.metadata_props}
    probe = "import importlib.metadata as m; print(m.version('tf2onnx'))"
    version = subprocess.run([converter, "-c", probe], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert props["tinyharness.converter"] == f"tf2onnx {version}"
    assert props["tinyharness.tensorflow"][:1].isdigit()
    assert props["tinyharness.opset"] == "17"
    assert props["tinyharness.source_file"] == "kws_ref_model.tflite"
    assert props["tinyharness.source_sha256"] == KWS_TFLITE_SHA256
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    (inp,), (out,) = model.graph.input, model.graph.output
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [49, 10, 1] and (dims[0] == 1 or isinstance(dims[0], str))  # NHWC, N dynamic
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT8
    assert out.type.tensor_type.elem_type == onnx.TensorProto.INT8


def test_kws_int8_is_bit_exact_with_litert(kws, shared_data):
    files = sorted((shared_data / "datasets" / "kws01").glob("*.bin"))[:100]
    assert len(files) == 100
    x = np.stack([np.fromfile(f, dtype=np.int8).reshape(49, 10, 1) for f in files])
    lite, ort = compare(shared_data / "models" / "kws" / "kws_ref_model.tflite", kws[0], x)
    assert lite.dtype == ort.dtype == np.int8 and lite.shape == ort.shape == (100, 12)
    lsb = np.abs(lite.astype(np.int16) - ort.astype(np.int16)).max()
    agree = (lite.argmax(1) == ort.argmax(1)).mean()
    print(f"\nkws01 int8, 100 files: max {lsb} LSB, argmax agreement {agree:.0%}")
    assert lsb == 0 and agree == 1.0


def test_ad01_fp32_matches_litert_on_the_real_sample(ad01_fp32, shared_data):
    (sample,) = (shared_data / "samples" / "ad01").glob("*.bin")
    frames = np.fromfile(sample, dtype="<f4").reshape(200, 128)
    x = np.stack([frames[i:i + 5].reshape(640) for i in range(196)])  # 2560-byte windows, stride 512
    tflite = shared_data / "models" / "ad" / "ad01_fp32.tflite"
    lite, ort = compare(tflite, ad01_fp32, x)
    assert lite.shape == ort.shape == (196, 640)
    assert 5 < np.abs(lite).max() < 100  # the scale the tolerances are meant for
    diff = np.abs(lite - ort).max(axis=1)  # per window
    # A few windows amplify float rounding: on them LiteRT's own reference kernels differ from
    # XNNPACK about as much (5.6e-3 measured), so that spread bounds the worst window, not 1e-3.
    spread = np.abs(outputs(litert(tflite, reference=True), x) - lite).max()
    score_lite, score_ort = ((lite - x) ** 2).mean(), ((ort - x) ** 2).mean()  # the AD score
    print(f"\nad01 fp32, 196 windows: max abs difference {diff.max():.2e} (median window "
          f"{np.median(diff):.1e}, {(diff > 1e-3).sum()} windows over 1e-3; LiteRT reference vs "
          f"XNNPACK {spread:.2e}), |output| up to {np.abs(lite).max():.1f}, score "
          f"{score_lite:.6f} vs {score_ort:.6f}")
    assert np.median(diff) <= 1e-4 and diff.max() <= max(1e-3, 1.5 * spread)
    assert abs(score_ort - score_lite) <= 1e-5 * score_lite
    pinned = shared_data / "models_onnx" / "ad" / "ad01_fp32.onnx"  # the documented conversion
    if pinned.is_file():
        assert np.array_equal(outputs(onnxruntime(pinned), x), ort)


def test_vww_int8_on_synthetic_inputs(vww_int8, shared_data):
    x = np.random.default_rng(0).integers(-128, 128, size=(4, 96, 96, 3), dtype=np.int8)
    lite, ort = compare(shared_data / "models" / "vww" / "vww_96_int8.tflite", vww_int8, x)
    lsb = np.abs(lite.astype(np.int16) - ort.astype(np.int16)).max()
    print(f"\nvww int8, 4 synthetic inputs: max {lsb} LSB")
    assert lite.dtype == ort.dtype == np.int8 and lite.shape == ort.shape == (4, 2)
    assert lsb <= 1 and (lite.argmax(1) == ort.argmax(1)).all()


def test_not_a_tflite_file_is_one_line(tmp_path):
    notes = tmp_path / "notes.tflite"
    notes.write_text("not a model\n")
    line = one_error_line(tinyharness(str(notes), env=base_env(tmp_path)))
    assert "is not a .tflite model" in line
    assert not (tmp_path / "cache").exists()


def fake_tflite(tmp_path: Path) -> Path:
    """Passes the harness's header check; never reaches a converter in these tests."""
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(56))
    return path


def test_bogus_python_names_the_fix(tmp_path):
    line = one_error_line(tinyharness(str(fake_tflite(tmp_path)), "--python",
                                      str(tmp_path / "no-such-python"), env=base_env(tmp_path)))
    assert "no-such-python" in line and FIX in line


@pytest.mark.skipif(os.name != "posix", reason="uses a shell-script wrapper")
def test_python_without_tf2onnx(tmp_path):
    bare = tmp_path / "bare-python"  # -S: no site-packages, so no tf2onnx
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(0o755)
    env = {**base_env(tmp_path), "TINYHARNESS_CONVERT_PYTHON": str(bare)}
    line = one_error_line(tinyharness(str(fake_tflite(tmp_path)), env=env))
    assert f"needs tf2onnx and tensorflow: {FIX}" in line


def test_converter_failure_is_its_last_stderr_line(shared_data, converter, tmp_path):
    broken = tmp_path / "broken.tflite"  # a real header, the rest cut off
    broken.write_bytes((shared_data / "models" / "kws" / "kws_ref_model.tflite").read_bytes()[:200])
    line = one_error_line(tinyharness(str(broken), "--python", converter, "--output",
                                      str(tmp_path / "out"), env=base_env(tmp_path)))
    assert f"tf2onnx could not convert {broken}: struct.error: " in line
    log = Path(line.rsplit("(full log: ", 1)[1].rstrip(")"))
    assert "Traceback" in log.read_text()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target, message", [
    ("nope", "'nope' is neither a benchmark"),
    ("digits01", "digits01 has no ONNX model converted from a .tflite"),
    ("missing.tflite", "missing.tflite: no such file"),
])
def test_bad_targets(tmp_path, target, message):
    assert message in one_error_line(tinyharness(target, env=base_env(tmp_path)))
