"""How far do int8 outputs move with the CPU's instructions? (not a test; prints figures)

Runs the MLPerf Tiny int8 models (kws01 on its 1,000 official files; ic01, ic02 and vww01 on 20
synthetic images each, the real ones are not shipped) through LiteRT (XNNPACK), OpenVINO (the
.tflite, f32 hint, one thread) and ONNX Runtime (the QDQ .onnx), once on this CPU and once under
``qemu-x86_64 -cpu Haswell-v4`` (AVX2, no AVX-512, no VNNI: the instructions a pre-2019 x86 has),
and prints, per model and runtime, how far each is from LiteRT on the same CPU: the largest
difference in output steps, the files that differ, and the decisions (argmax) that change.

The inputs go in exactly as the benchmark's transform gives them (kws01 int8 bytes as they are;
images: bytes minus 128). Reads the models and data in ../shared/mlperf_tiny. qemu-user comes from
Debian's ``qemu-user`` package; without it only this CPU's column is printed. About 2 minutes.

Usage: python bench/int8_isa.py [--cpu Haswell-v4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mlperf_tiny"
MODELS = {"kws01": "kws/kws_ref_model", "ic01": "ic/pretrainedResnet_quant",
          "ic02": "ic2/pretrainedResnet_large_int8", "vww01": "vww/vww_96_int8"}
IMAGE_SHAPE = {"ic01": (32, 32, 3), "ic02": (32, 32, 3), "vww01": (96, 96, 3)}
RUNTIMES = ("litert", "openvino", "onnxruntime")


def images(shape: tuple[int, int, int], count: int = 20, seed: int = 7) -> list[np.ndarray]:
    """Deterministic image-like uint8 HWC images: gradients, a few discs and some noise."""
    rng = np.random.default_rng(seed)
    h, w, _ = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for _ in range(count):
        img = rng.uniform(0, 255, 3) + (yy[..., None] * rng.uniform(-2, 2, 3)
                                        + xx[..., None] * rng.uniform(-2, 2, 3)) * (128.0 / h)
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 8, h / 3)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


def inputs(bench: str) -> list[np.ndarray]:
    if bench == "kws01":
        files = sorted((SHARED / "datasets" / "kws01").glob("*.bin"))
        return [np.fromfile(f, dtype=np.int8) for f in files]
    return [(img.astype(np.int16) - 128).astype(np.int8) for img in images(IMAGE_SHAPE[bench])]


def outputs(out: Path) -> None:
    """The child: every runtime's int8 outputs for every model, saved to ``out`` (.npz)."""
    import onnxruntime as ort
    import openvino as ov
    from ai_edge_litert.interpreter import Interpreter

    core, found = ov.Core(), {}
    for bench, stem in MODELS.items():
        tflite, onnx = SHARED / "models" / f"{stem}.tflite", SHARED / "models_onnx" / f"{stem}.onnx"
        interp = Interpreter(str(tflite), num_threads=1)
        interp.allocate_tensors()
        inp, res = interp.get_input_details()[0], interp.get_output_details()[0]
        compiled = core.compile_model(str(tflite), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                            "INFERENCE_NUM_THREADS": 1})
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        rows: dict[str, list[np.ndarray]] = {r: [] for r in RUNTIMES}
        for x in inputs(bench):
            x = x.reshape(inp["shape"])
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            rows["litert"].append(interp.get_tensor(res["index"]).reshape(-1).copy())
            rows["openvino"].append(np.asarray(compiled([x])[compiled.output(0)]).reshape(-1))
            rows["onnxruntime"].append(np.asarray(session.run(None, {name: x})[0]).reshape(-1))
        for runtime, values in rows.items():
            found[f"{bench}/{runtime}"] = np.stack(values)
    np.savez(out, **found)


def measure(folder: Path, cpu: str | None) -> dict[str, np.ndarray]:
    """Run the child natively (cpu None) or under qemu-x86_64 -cpu CPU; its outputs."""
    out = folder / f"{cpu or 'native'}.npz"
    command = [sys.executable, __file__, "--child", str(out)]
    if cpu:  # qemu's /proc/self/exe is qemu: the venv is found through --site, not pyvenv.cfg
        command = ["qemu-x86_64", "-cpu", cpu, os.path.realpath(sys.executable), *command[1:],
                   "--site", *site.getsitepackages()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed: {done.stderr.strip().splitlines()[-1:]}")
    with np.load(out) as data:
        return dict(data)


def report(columns: dict[str, dict[str, np.ndarray]]) -> None:
    print(f"{'model':6} {'runtime':12} " + " ".join(f"{c:>30}" for c in columns))
    print(f"{'':19} " + " ".join(f"{'max steps / files / flips':>30}" for _ in columns))
    for bench in MODELS:
        for runtime in RUNTIMES[1:]:
            cells = []
            for found in columns.values():
                y = found[f"{bench}/{runtime}"].astype(int)
                ref = found[f"{bench}/litert"].astype(int)
                steps = np.abs(y - ref).max(axis=1)
                flips = int((y.argmax(axis=1) != ref.argmax(axis=1)).sum())
                cells.append(f"{steps.max():>10} {int((steps > 0).sum()):>5}/{len(y):<5} {flips:>6}")
            print(f"{bench:6} {runtime:12} " + " ".join(f"{c:>30}" for c in cells))
    if len(columns) == 2:
        native, emulated = columns.values()
        moved = {k: int(np.abs(native[k].astype(int) - emulated[k].astype(int)).max()) for k in native}
        print("largest move between the two CPUs, by runtime:",
              {r: max(v for k, v in moved.items() if k.endswith("/" + r)) for r in RUNTIMES})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", default="Haswell-v4", help="qemu-x86_64's CPU model (default: Haswell-v4)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--site", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    for folder in args.site:
        site.addsitedir(folder)
    if args.child:
        outputs(args.child)
        return
    if not (SHARED / "models").is_dir():
        sys.exit(f"{SHARED}: not found; this reads the MLPerf Tiny models and kws01 data there")
    with tempfile.TemporaryDirectory() as tmp:
        columns = {"this CPU": measure(Path(tmp), None)}
        if shutil.which("qemu-x86_64"):
            columns[f"qemu -cpu {args.cpu}"] = measure(Path(tmp), args.cpu)
        else:
            print("qemu-x86_64 not found (Debian: apt-get install qemu-user): this CPU only")
    report(columns)


if __name__ == "__main__":
    main()
