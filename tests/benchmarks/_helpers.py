"""Shared helpers for the MLPerf Tiny acceptance tests: CLI runs, log checks, synthetic datasets.

Every dataset built here is deterministic (fixed seeds, fixed formulas) and lives in the test's
tmp_path; nothing is written next to the shared reference data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinyharness.logs import check_run_directory
from tinyharness.system import has_int8_dot_product

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "mlperf_tiny"
MODELS = SHARED / "models"
MODELS_ONNX = SHARED / "models_onnx"
DATASETS = SHARED / "datasets"
AD_SAMPLE = SHARED / "samples" / "ad01" / "normal_id_01_00000000_hist_librosa.bin"
EXPECTED = SHARED / "expected_values.json"

CPU_SUTS = ("tflite-cpu", "openvino-cpu", "onnxruntime-cpu")
RUNTIME_MODULE = {"tflite-cpu": "ai_edge_litert", "openvino-cpu": "openvino",
                  "onnxruntime-cpu": "onnxruntime", "torch-cpu": "torch",
                  "executorch-cpu": "executorch"}


def require_runtime(sut: str) -> None:
    """Skip unless the SUT's runtime is importable (tflite-cpu also takes tflite-runtime)."""
    import importlib.util

    import pytest

    names = [RUNTIME_MODULE[sut]] + (["tflite_runtime"] if sut == "tflite-cpu" else [])
    if not any(importlib.util.find_spec(n) for n in names):
        pytest.skip(f"{sut}: runtime {names[0]} is not installed")


def int8_dot_product(summary: dict) -> bool:
    """Whether the run's host multiplies int8 vectors in one step (x86 VNNI / AMX, ARM dotprod),
    by the CPU features its summary records. Without it the runtimes take other int8 kernels, and
    their outputs move off the reference's: on an AVX2 x86 without VNNI (emulated: ``qemu-x86_64
    -cpu Haswell-v4``, and a CI host) OpenVINO's u8 x s8 products saturate at int16 (vpmaddubsw),
    up to 255 output steps off on the ResNets, and ORT's differ by up to 3 steps."""
    return bool(has_int8_dot_product(summary["system"].get("cpu_features")))


def env() -> dict[str, str]:
    return dict(os.environ, TINYHARNESS_MODEL_MIRROR=os.pathsep.join([str(MODELS), str(MODELS_ONNX)]))


def tinyharness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyharness.cli", *map(str, args)], capture_output=True,
                          text=True, env=env(), timeout=300)


def only_run_dir(root: Path) -> Path:
    dirs = [p for p in Path(root).iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def run(out: Path, *args: str, expect_rc: int | None = 0) -> tuple[dict, Path]:
    """``tinyharness run ... --json --quiet --output out``; returns (summary, run directory).
    The summary printed on stdout must equal summary.json and every log must match its schema.
    ``expect_rc=None`` accepts a complete run either way (0 VALID or 1 INVALID)."""
    done = tinyharness("run", *args, "--json", "--quiet", "--output", str(out))
    allowed = (0, 1) if expect_rc is None else (expect_rc,)
    assert done.returncode in allowed, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    assert done.returncode == (0 if summary["valid"] else 1)  # exit code 0 = VALID, 1 = INVALID
    run_dir = only_run_dir(out)
    assert check_logs(run_dir) == summary
    return summary, run_dir


def check_logs(run_dir: Path) -> dict:
    """Every file of a finished run directory matches its schema; returns summary.json."""
    assert check_run_directory(run_dir) == []
    assert (run_dir / "summary.txt").is_file()
    return json.loads((run_dir / "summary.json").read_text())


def accuracy_log(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "accuracy.json").read_text())


def by_index(log: list[dict]) -> dict[int, dict]:
    return {e["qsl_idx"]: e for e in log}


def decode(entry: dict, dtype: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.dtype(dtype).newbyteorder("<"))


def expected_values() -> dict:
    return json.loads(EXPECTED.read_text())


def oracle_for_runtime(values: dict[str, float], runtime: str) -> float:
    """The oracle measured with ``runtime`` (keys look like 'ai-edge-litert==2.3.0'); LiteRT's
    when that package is not among them."""
    by_package = {key.split("==")[0]: value for key, value in values.items()}
    return by_package.get(runtime, by_package["ai-edge-litert"])


# ---------------------------------------------------------------------------- synthetic datasets

def write_labels(folder: Path, rows: list[tuple]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "y_labels.csv").write_text("".join(",".join(map(str, r)) + "\n" for r in rows))


# AD files derived from the one real sample: (file name, label, how it is derived).
AD_REAL = "normal_id_01_00000000_hist_librosa.bin"


def _ad_variants(real: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """Deterministic AD files (200 frames x 128 mel, float32) derived from the real one."""
    rng = np.random.default_rng(20240601)
    tone = real.copy()
    tone[:, 40:48] += 12.0  # a steady narrow-band tone: a typical machine anomaly
    noisy = real + rng.normal(0.0, 4.0, real.shape)
    return [
        (AD_REAL, 0, real),
        ("anomaly_id_01_00000000_hist_librosa.bin", 1, tone),
        ("normal_id_01_00000001_hist_librosa.bin", 0, real[::-1]),  # frames in reverse order
        ("anomaly_id_01_00000001_hist_librosa.bin", 1, noisy),
        # a noisier recording of a normal machine: scores above the mild anomaly below (AUC < 1)
        ("normal_id_01_00000002_hist_librosa.bin", 0, real + rng.normal(0.0, 1.0, real.shape)),
        ("anomaly_id_01_00000002_hist_librosa.bin", 1, real * 1.03),  # a mild level change: a hard anomaly
    ]


def make_ad01(root: Path, labels: list[int] | None = None,
              count: int | None = None) -> tuple[Path, list[tuple[str, int]]]:
    """``root/ad01/``: the real sample (a copy) plus 5 deterministic variants (or the first
    ``count`` of these 6 files), rows ``file,2,label,2560,512``; ``labels`` overrides the
    per-file labels. Returns (root, [(file, label), ...])."""
    real = np.fromfile(AD_SAMPLE, dtype="<f4").reshape(200, 128)
    folder = root / "ad01"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, (name, label, data) in enumerate(_ad_variants(real)[:count]):
        if name == AD_REAL:
            (folder / name).write_bytes(AD_SAMPLE.read_bytes())
        else:
            (folder / name).write_bytes(np.asarray(data, dtype="<f4").tobytes())
        rows.append((name, labels[number] if labels is not None else label))
    write_labels(folder, [(name, 2, label, 2560, 512) for name, label in rows])
    return root, rows


def make_images(root: Path, dataset_id: str, shape: tuple[int, ...], classes: int,
                count: int = 20, seed: int = 7) -> tuple[Path, list[str]]:
    """``root/<dataset_id>/``: ``count`` uint8 HWC RGB images of ``shape``, deterministic and
    image-like (smooth colour gradients, blobs and a little noise, so that the models are not
    all driven to one class), rows ``file,classes,class`` with labels cycling over the classes."""
    rng = np.random.default_rng(seed)
    h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    folder = root / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        grad = rng.uniform(-2, 2, (2, 3)) * (32.0 / h)
        img = base + yy[..., None] * grad[0] * 4 + xx[..., None] * grad[1] * 4
        for _ in range(3):  # a few coloured discs
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        data = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        assert data.nbytes == int(np.prod(shape))
        name = f"synth_{dataset_id}_{i:03d}.bin"
        (folder / name).write_bytes(data.tobytes())
        names.append(name)
    write_labels(folder, [(name, classes, i % classes) for i, name in enumerate(names)])
    return root, names
