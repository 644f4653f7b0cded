#!/usr/bin/env python3
"""Build the "digits01" reference benchmark: dataset files, trained model, ONNX + TFLite artifacts.

    python reference_models/build_digits01.py [--out DIR]

DIR defaults to the repository root; the script writes DIR/datasets/digits01/*,
DIR/reference_models/digits01/* and the "digits01" entry of DIR/reference_models/manifest.json.

Everything is derived from scikit-learn's bundled copy of the UCI 8x8 digits (no download) with
fixed seeds and plain numpy, so two runs give byte-identical files.  Building needs numpy,
scikit-learn, onnx, flatbuffers, tflite (schema bindings), torch, executorch and torchao: the
``.pt2``/``.pte`` programs of torch_artifacts.py, float and PT2E int8 (calibrated on the training
split), whose bytes are pinned to the torch and executorch versions the manifest records.  If
onnxruntime / ai-edge-litert are importable, the build cross-checks its numpy reference accuracy
against them, and against torch / executorch for the float programs (a mismatch is a warning; the
manifest records the numpy reference figure, so its bytes do not depend on which runtimes happen to
be installed).  The PT2E programs have no numpy reference: their figure is torch's and
executorch's own, which the build depends on anyway.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import sys
from pathlib import Path

import numpy as np

try:  # imported as tinyharness.reference_models.build_digits01
    from . import tflite_writer as tfw
    from . import torch_artifacts as ta
except ImportError:  # run as a script: the script's folder is on sys.path
    import tflite_writer as tfw
    import torch_artifacts as ta

NAME = "digits01"
SEED = 20240601
N_TEST = 360  # 20 % of the 1797 samples, rounded to a whole number per class
HIDDEN = ta.HIDDEN
EPOCHS, BATCH, LR, WEIGHT_DECAY = 60, 32, 3e-3, 1e-4
PIXEL_MAX = 16.0  # load_digits pixels are integer counts 0..16
PRODUCER = "tinyharness build_digits01.py"
SOFTMAX_OUT_SCALE, SOFTMAX_OUT_ZP = 1.0 / 256.0, -128  # fixed by TFLite's int8 SOFTMAX kernel
INPUT_SCALE, INPUT_ZP = 1.0, -128  # int8 input = u8 - 128, like MLPerf Tiny ic01

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- data
def load_split(rng: np.random.Generator):
    """Return (x_train, y_train, x_test, y_test); x as uint8 [N, 8, 8] pixel values 0..16."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images.astype(np.uint8)
    y = digits.target.astype(np.int64)
    # Own stratified split (not train_test_split) so the file set cannot change with sklearn's
    # internals: per-class quota by largest remainder, members drawn by a seeded permutation.
    counts = np.bincount(y, minlength=10)
    quota = counts * N_TEST / len(y)
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[: N_TEST - take.sum()]] += 1
    test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[: take[c]] for c in range(10)]))
    train = np.setdiff1d(np.arange(len(y)), test)
    return x[train], y[train], x[test], y[test]


# ----------------------------------------------------------------------------- training
def train(x_u8: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Mini-batch Adam on a 64-32-10 MLP in float64; returns float32 weights for raw 0..16 input."""
    x = x_u8.reshape(len(x_u8), 64).astype(np.float64) / PIXEL_MAX
    onehot = np.eye(10)[y]
    params = {
        "w1": rng.normal(0.0, np.sqrt(2.0 / 64), (64, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0.0, np.sqrt(1.0 / HIDDEN), (HIDDEN, 10)),
        "b2": np.zeros(10),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for s in range(0, len(x), BATCH):
            i = order[s : s + BATCH]
            h = np.maximum(x[i] @ params["w1"] + params["b1"], 0.0)
            z = h @ params["w2"] + params["b2"]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g = (p - onehot[i]) / len(i)  # d(mean cross-entropy)/d(logits)
            gh = (g @ params["w2"].T) * (h > 0)
            grads = {
                "w1": x[i].T @ gh + WEIGHT_DECAY * params["w1"],
                "b1": gh.sum(axis=0),
                "w2": h.T @ g + WEIGHT_DECAY * params["w2"],
                "b2": g.sum(axis=0),
            }
            step += 1
            for k, gk in grads.items():
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                params[k] -= LR * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    # Fold the 1/16 input normalisation into the first layer: the files take raw pixel values.
    params["w1"] = params["w1"] / PIXEL_MAX
    return {k: val.astype(np.float32) for k, val in params.items()}


def forward_float(p: dict, x_u8: np.ndarray, stage: str = "probs") -> np.ndarray:
    x = x_u8.reshape(len(x_u8), 64).astype(p["w1"].dtype)
    h = np.maximum(x @ p["w1"] + p["b1"], 0)
    if stage == "hidden":
        return h
    z = h @ p["w2"] + p["b2"]
    if stage == "logits":
        return z
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- int8 quantization
def _asym_params(lo: float, hi: float) -> tuple[float, int]:
    """int8 affine (scale, zero point) for [lo, hi] widened to include 0, per TFLite's scheme."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32((hi - lo) / 255.0))
    return scale, int(np.clip(np.round(-128 - lo / scale), -128, 127))


def quantize(p: dict, x_calib_u8: np.ndarray) -> dict:
    """Post-training full-integer quantization (min/max calibration on the training split)."""
    # Calibrate in float64: float32 BLAS sums differ in the last bit between CPU kernels, which
    # would leak into the stored scales and break byte-identical rebuilds on other machines.
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    q = {}
    s_in = INPUT_SCALE
    for layer, (w, b, calib) in enumerate(
        [(p["w1"], p["b1"], forward_float(p64, x_calib_u8, "hidden")),
         (p["w2"], p["b2"], forward_float(p64, x_calib_u8, "logits"))], start=1):
        w_scale = float(np.float32(np.abs(w).max() / 127.0))  # symmetric per-tensor, zp 0
        q[f"w{layer}"] = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8).T  # [out, in]
        q[f"w{layer}_scale"] = w_scale
        b_scale = np.float64(np.float32(s_in)) * np.float64(np.float32(w_scale))
        q[f"b{layer}"] = np.round(b / b_scale).astype(np.int32)  # int32 bias, zp 0
        q[f"b{layer}_scale"] = float(np.float32(b_scale))
        q[f"a{layer}_scale"], q[f"a{layer}_zp"] = _asym_params(float(calib.min()), float(calib.max()))
        s_in = q[f"a{layer}_scale"]
    return q


def forward_int8(q: dict, x_u8: np.ndarray) -> np.ndarray:
    """Numpy model of the int8 graph (float requantisation); returns int8 softmax outputs."""
    q_in = x_u8.reshape(len(x_u8), 64).astype(np.int64) - 128  # the int8 model input
    a = q_in - INPUT_ZP  # kernels accumulate (q - zero_point) * w
    s_in = INPUT_SCALE
    for layer in (1, 2):
        acc = a @ q[f"w{layer}"].T.astype(np.int64) + q[f"b{layer}"]
        m = np.float64(np.float32(s_in)) * q[f"w{layer}_scale"] / q[f"a{layer}_scale"]
        out = np.clip(np.round(acc * m) + q[f"a{layer}_zp"], -128, 127)
        if layer == 1:  # fused ReLU: clamp at the quantized zero
            out = np.maximum(out, q["a1_zp"])
            a = out - q["a1_zp"]
        s_in = q[f"a{layer}_scale"]
    z = (out - q["a2_zp"]) * q["a2_scale"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    return np.clip(np.round(prob / SOFTMAX_OUT_SCALE) + SOFTMAX_OUT_ZP, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------- writers
def onnx_bytes(p: dict) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array([1, 64], dtype=np.int64), "flatten_shape"),
        numpy_helper.from_array(np.ascontiguousarray(p["w1"].T), "fc1_weight"),  # Gemm transB=1
        numpy_helper.from_array(p["b1"], "fc1_bias"),
        numpy_helper.from_array(np.ascontiguousarray(p["w2"].T), "fc2_weight"),
        numpy_helper.from_array(p["b2"], "fc2_bias"),
    ]
    nodes = [
        helper.make_node("Reshape", ["input", "flatten_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc1_weight", "fc1_bias"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["fc1_relu"], name="relu1"),
        helper.make_node("Gemm", ["fc1_relu", "fc2_weight", "fc2_bias"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 8, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 10])],
        initializer=inits)
    # Pin the IR version so the bytes (and runtime compatibility) do not follow the onnx package.
    model = helper.make_model(graph, producer_name=PRODUCER, ir_version=8,
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def tflite_bytes(p: dict, q: dict | None) -> bytes:
    """Float model when q is None, else the full-integer int8 model."""
    T, Op = tfw.TensorSpec, tfw.OpSpec
    shape = T("flatten_shape", (2,), "int32", np.array([1, 64], dtype=np.int32))
    if q is None:
        tensors = [
            T("input", (1, 8, 8, 1), "float32"), shape, T("flat", (1, 64), "float32"),
            T("fc1_weight", (HIDDEN, 64), "float32", p["w1"].T), T("fc1_bias", (HIDDEN,), "float32", p["b1"]),
            T("fc1_relu", (1, HIDDEN), "float32"),
            T("fc2_weight", (10, HIDDEN), "float32", p["w2"].T), T("fc2_bias", (10,), "float32", p["b2"]),
            T("logits", (1, 10), "float32"), T("probabilities", (1, 10), "float32"),
        ]
        v_fc, v_sm = 1, 1
    else:
        a1, a2 = (q["a1_scale"], q["a1_zp"]), (q["a2_scale"], q["a2_zp"])
        tensors = [
            T("input", (1, 8, 8, 1), "int8", None, INPUT_SCALE, INPUT_ZP), shape,
            T("flat", (1, 64), "int8", None, INPUT_SCALE, INPUT_ZP),  # RESHAPE keeps its input's qparams
            T("fc1_weight", (HIDDEN, 64), "int8", q["w1"], q["w1_scale"], 0),
            T("fc1_bias", (HIDDEN,), "int32", q["b1"], q["b1_scale"], 0),
            T("fc1_relu", (1, HIDDEN), "int8", None, *a1),
            T("fc2_weight", (10, HIDDEN), "int8", q["w2"], q["w2_scale"], 0),
            T("fc2_bias", (10,), "int32", q["b2"], q["b2_scale"], 0),
            T("logits", (1, 10), "int8", None, *a2),
            T("probabilities", (1, 10), "int8", None, SOFTMAX_OUT_SCALE, SOFTMAX_OUT_ZP),
        ]
        v_fc, v_sm = 4, 2  # op versions the TFLite converter writes for int8 kernels
    ops = [
        Op("RESHAPE", [0, 1], [2], {"new_shape": [1, 64]}),
        Op("FULLY_CONNECTED", [2, 3, 4], [5], {"relu": True}, v_fc),
        Op("FULLY_CONNECTED", [5, 6, 7], [8], {"relu": False}, v_fc),
        Op("SOFTMAX", [8], [9], {"beta": 1.0}, v_sm),
    ]
    return tfw.build_model(tensors, ops, [0], [9], PRODUCER)


def write_dataset(folder: Path, x_u8: np.ndarray, y: np.ndarray) -> str:
    """EEMBC layout: one raw 64-byte file per sample + y_labels.csv. Returns the dataset sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("tst_*.bin"):  # a stale sample would silently join the set
        old.unlink()
    digest, rows, blobs = hashlib.sha256(), [], []
    for i, (img, label) in enumerate(zip(x_u8, y)):
        name = f"tst_{i:04d}_{label}.bin"
        blob = np.ascontiguousarray(img, dtype=np.uint8).tobytes()  # row-major 8x8, HWC with C=1
        (folder / name).write_bytes(blob)
        rows.append(f"{name},10,{label}\n")
        blobs.append(blob)
    csv = "".join(rows).encode()
    (folder / "y_labels.csv").write_bytes(csv)
    digest.update(csv)
    for blob in blobs:
        digest.update(blob)
    (folder / "README.md").write_text(DATASET_README.format(seed=SEED, n=len(y)), encoding="utf-8", newline="\n")
    return digest.hexdigest()


DATASET_README = """\
# digits01 dataset

Held-out test split of the 8x8 handwritten digits used by the `digits01` reference benchmark.
Generated by `reference_models/build_digits01.py`; do not edit by hand.

## Provenance and licence

- Source: scikit-learn's bundled copy (`sklearn.datasets.load_digits`, no download) of the UCI
  Machine Learning Repository dataset "Optical Recognition of Handwritten Digits"
  (E. Alpaydin, C. Kaynak, 1998; https://doi.org/10.24432/C50P49): its 1797-sample test
  portion, 8x8 images whose pixels count set bits in 4x4 blocks of a 32x32 bitmap (0..16).
- Licence: Creative Commons Attribution 4.0 International (CC BY 4.0).

## Split

Stratified by class with numpy seed {seed}: {n} of the 1797 samples (20 %) are the test split
shipped here; the rest trained the model.  Files are numbered in ascending original index.

## Layout (EEMBC / MLPerf Tiny style)

- `tst_NNNN_<label>.bin`: 64 bytes, the 8x8 pixel values 0..16 as uint8, row-major
  (HWC with C=1, i.e. model input shape [1,8,8,1]).
- `y_labels.csv`: no header, one row per file in order: `<file>,10,<label>` (10 classes).

## Transform to the model input

- int8 model (`digits01_int8.tflite`, input scale 1.0, zero point -128): `int8 = u8 - 128`.
- float models (`digits01_float.onnx`, `digits01_float.tflite`): `float32(u8)`, no normalisation
  (the 1/16 scale lives in the first layer's weights).
"""


# ----------------------------------------------------------------------------- checks and manifest
def runtime_top1(model: Path, x_u8: np.ndarray, y: np.ndarray) -> float | None:
    """Top-1 % through onnxruntime / ai-edge-litert if importable, else None (optional check)."""
    try:
        if model.suffix in (".pt2", ".pte"):
            blob = model.read_bytes()
            run = lambda a: ta.scores(blob, model.suffix[1:], a)
        elif model.suffix == ".onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
            run = lambda a: sess.run(None, {"input": a})[0]
        else:
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_path=str(model))
            it.allocate_tensors()
            i_idx, o_idx = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

            def run(a):
                it.set_tensor(i_idx, a)
                it.invoke()
                return it.get_tensor(o_idx)
    except ImportError:
        return None
    int8 = "int8" in model.name and model.suffix == ".tflite"
    pred = [int(np.argmax(run((img.astype(np.int16) - 128).astype(np.int8).reshape(1, 8, 8, 1) if int8
                              else img.astype(np.float32).reshape(1, 8, 8, 1)))) for img in x_u8]
    return 100.0 * float(np.mean(np.array(pred) == y))


def top1(scores: np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.argmax(scores, axis=1) == y))


def tensor_info(name, shape, dtype, scale=None, zp=None) -> dict:
    return {"name": name, "shape": list(shape), "dtype": dtype, "scale": scale, "zero_point": zp}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO, help="root to write into (default: the repo)")
    args = ap.parse_args(argv)
    import flatbuffers
    import onnx
    import sklearn
    try:
        import executorch
        import torch
        import torchao
    except ImportError as exc:
        print(f"error: the digits01 build needs torch, executorch and torchao for its .pt2 and "
              f".pte programs ({exc}): pip install torch executorch torchao", file=sys.stderr)
        return 2

    rng = np.random.default_rng(SEED)  # one stream: split, init, batch order
    x_tr, y_tr, x_te, y_te = load_split(rng)
    p = train(x_tr, y_tr, rng)
    q = quantize(p, x_tr)

    model_dir = args.out / "reference_models" / NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {  # file -> (bytes, precision, numpy-reference scores on the test split)
        f"{NAME}_int8.tflite": (tflite_bytes(p, q), "int8", forward_int8(q, x_te)),
        f"{NAME}_float.tflite": (tflite_bytes(p, None), "float32", forward_float(p, x_te)),
        f"{NAME}_float.onnx": (onnx_bytes(p), "float32", forward_float(p, x_te)),
    }
    x_te_f = x_te.astype(np.float32).reshape(-1, 8, 8, 1)
    float_module = ta.torch_module(p)
    int8_module = ta.quantized_module(p, x_tr.astype(np.float32).reshape(-1, 8, 8, 1))
    for fmt, make in (("pt2", ta.pt2_bytes), ("pte", ta.pte_bytes)):
        artifacts[f"{NAME}_float.{fmt}"] = (make(float_module), "float32", forward_float(p, x_te))
        blob = make(int8_module)
        artifacts[f"{NAME}_pt2e_int8.{fmt}"] = (blob, "int8", ta.scores(blob, fmt, x_te_f))
    dataset_sha = write_dataset(args.out / "datasets" / NAME, x_te, y_te)

    models, accuracy = [], {}
    for fname, (blob, precision, scores) in artifacts.items():
        (model_dir / fname).write_bytes(blob)
        rel = f"{NAME}/{fname}"
        accuracy[rel] = round(top1(scores, y_te), 2)
        measured = runtime_top1(model_dir / fname, x_te, y_te)
        if measured is not None and round(measured, 2) != accuracy[rel]:
            print(f"warning: {rel}: runtime top-1 {measured:.2f} != numpy reference {accuracy[rel]:.2f}",
                  file=sys.stderr)
        if precision == "int8" and fname.endswith(".tflite"):
            io = (tensor_info("input", (1, 8, 8, 1), "int8", INPUT_SCALE, INPUT_ZP),
                  tensor_info("probabilities", (1, 10), "int8", SOFTMAX_OUT_SCALE, SOFTMAX_OUT_ZP))
        else:
            io = (tensor_info("input", (1, 8, 8, 1), "float32"), tensor_info("probabilities", (1, 10), "float32"))
        models.append({"file": rel, "format": fname.rsplit(".", 1)[1], "precision": precision,
                       "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob),
                       "input": io[0], "output": io[1]})
        print(f"{rel}: {len(blob)} bytes, top-1 {accuracy[rel]:.2f} %"
              + ("" if measured is None else f" (runtime {measured:.2f} %)"))

    entry = {
        "build": {"script": "reference_models/build_digits01.py", "seed": SEED,
                  "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                  "onnx": onnx.__version__, "flatbuffers": flatbuffers.__version__,
                  "torch": torch.__version__,
                  "executorch": md.version("executorch"), "torchao": torchao.__version__},
        "models": models,
        "dataset": {"path": NAME, "count": int(len(y_te)), "sha256": dataset_sha},
        "accuracy": accuracy,
    }
    # Keep other benchmarks' entries; rewrite only ours, with sorted keys for stable bytes.
    manifest_path = args.out / "reference_models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[NAME] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8",
                             newline="\n")
    print(f"dataset: {len(y_te)} files, sha256 {dataset_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
