#!/usr/bin/env bash
# One-shot check of the tensorrt-gpu SUT on a Linux machine with an NVIDIA GPU and its driver.
#
#   bash bench/gpu_check.sh            # about 6 minutes after the install (3 runs of ~70 s)
#
# Steps, each under `timeout`: nvidia-smi; a venv with tinyharness[tensorrt,onnxruntime] and what
# the SUT needs (TensorRT 10 for CUDA 12, cuda-bindings, onnx, pytest); the SUT's tests (the GPU
# ones must run, not skip); a symmetric int8 Q/DQ kws model made with onnxruntime's quantize_static
# (the MLPerf Tiny int8 ONNX model is asymmetric, which TensorRT refuses: checked too); then
# `tinyharness run --benchmark kws01 --sut tensorrt-gpu --mode all` in fp32, fp16 (the fp32
# model) and int8 (the Q/DQ model); last, a table of top-1, p50 host latency, p50 GPU compute time.
#
# Environment (defaults in brackets):
#   MLPERF_TINY      the shared MLPerf Tiny data: datasets/, models/, models_onnx/ [<repo>/../shared/mlperf_tiny]
#   GPU_CHECK_DIR    work folder: venv, engine cache, runs, the Q/DQ model [/tmp/tinyharness-gpu-check]
#   WHEELHOUSE       a folder of wheels for a machine without internet (pip --no-index); else PyPI
#                    plus https://pypi.nvidia.com (tensorrt-cu12-libs is a stub on PyPI whose build
#                    downloads the real ~GB wheel from there)
#   PYTHON           the interpreter for the venv, 3.10+ [python3]
#   STEP_TIMEOUT_S   the bound on each test/run step [600]; the install gets 1800 s
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MLPERF_TINY=${MLPERF_TINY:-$REPO/../shared/mlperf_tiny}
WORK=${GPU_CHECK_DIR:-/tmp/tinyharness-gpu-check}
PYTHON=${PYTHON:-python3}
STEP_S=${STEP_TIMEOUT_S:-600}
VENV=$WORK/venv
PY=$VENV/bin/python
FP32_MODEL=$MLPERF_TINY/models_onnx/kws/kws_ref_model_fp32.onnx
ASYM_MODEL=$MLPERF_TINY/models_onnx/kws/kws_ref_model.onnx
QDQ_MODEL=$WORK/kws_sym_int8.onnx
failed=()

step() { printf '\n== %s\n' "$*"; }
for f in "$FP32_MODEL" "$ASYM_MODEL" "$MLPERF_TINY/datasets/kws01/y_labels.csv"; do
  [[ -f $f ]] || { echo "missing $f: set MLPERF_TINY to the MLPerf Tiny data folder" >&2; exit 2; }
done
mkdir -p "$WORK"

step "GPU"
timeout 60 nvidia-smi

step "install (venv $VENV)"
[[ -x $PY ]] || timeout 120 "$PYTHON" -m venv "$VENV"
if [[ -n ${WHEELHOUSE:-} ]]; then source_args=(--no-index --find-links "$WHEELHOUSE")
else source_args=(--extra-index-url https://pypi.nvidia.com); fi
# The extra names what pyproject declares; the explicit pins install the same where it is not yet.
timeout 1800 "$PY" -m pip install -q "${source_args[@]}" -e "$REPO[tensorrt,onnxruntime]" \
  "tensorrt-cu12>=10,<11" "cuda-bindings>=12.8,<13" "onnx>=1.15" "pytest>=7"
timeout 120 "$PY" -c "import tensorrt, cuda.bindings, onnxruntime; print('tensorrt', tensorrt.__version__)"

export TINYHARNESS_CACHE_DIR=$WORK/cache  # engines under $WORK/cache/models/tensorrt
export TINYHARNESS_MODEL_MIRROR=$MLPERF_TINY/models:$MLPERF_TINY/models_onnx

step "tests (tests/suts/test_tensorrt_gpu.py)"
if (cd "$REPO" && timeout "$STEP_S" "$PY" -m pytest -q -rs -p no:cacheprovider \
      tests/suts/test_tensorrt_gpu.py | tee "$WORK/pytest.txt"); then
  if grep -q "no NVIDIA GPU" "$WORK/pytest.txt"; then failed+=("tests skipped: no GPU seen"); fi
else failed+=("tests"); fi

step "symmetric int8 Q/DQ kws model (onnxruntime quantize_static, 200 kws01 files)"
timeout "$STEP_S" "$PY" - "$FP32_MODEL" "$MLPERF_TINY/datasets/kws01" "$QDQ_MODEL" 200 <<'PY'
import glob, sys
import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

src, data, out, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = sorted(glob.glob(f"{data}/*.bin"))[:count]  # not MLPerf's calibration list: a GPU check


class Reader(CalibrationDataReader):  # kws01 files are int8 (scale 0.5847029, zero point 83)
    def __init__(self):
        self.feeds = iter({"input_1": ((np.fromfile(f, np.int8).astype(np.float32) - 83)
                                       * 0.5847029089927673).reshape(1, 49, 10, 1)} for f in files)

    def get_next(self):
        return next(self.feeds, None)


quantize_static(src, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
print(f"{out}: calibrated on {len(files)} files (onnxruntime-cpu on it: 90.2 % top-1 on kws01)")
PY

# tinyharness, with tensorrt-gpu registered where pyproject has no entry point for it yet.
cat > "$WORK/th.py" <<'PY'
import sys
from tinyharness.plugins import registry
if "tensorrt-gpu" not in registry().suts:
    import tinyharness.suts.tensorrt_gpu as plugin
    registry().add(plugin, "tensorrt-gpu")
from tinyharness.cli import main
main(sys.argv[1:])
PY
th() { local limit=$1; shift; timeout "$limit" "$PY" "$WORK/th.py" "$@"; }

step "the MLPerf Tiny int8 ONNX model (asymmetric Q/DQ) is refused with exit 2"
rc=0
th 120 run --benchmark kws01 --sut tensorrt-gpu --mode accuracy --model "$ASYM_MODEL" \
  --dataset "$MLPERF_TINY/datasets" --sut-option precision=int8 --output "$WORK/runs/refused" || rc=$?
[[ $rc -eq 2 ]] || failed+=("asymmetric model: exit $rc, expected 2")

for spec in "fp32:$FP32_MODEL" "fp16:$FP32_MODEL" "int8:$QDQ_MODEL"; do
  precision=${spec%%:*} model=${spec#*:}
  step "kws01 tensorrt-gpu precision=$precision ($(basename "$model"))"
  rm -rf "${WORK:?}/runs/$precision"
  th "$STEP_S" run --benchmark kws01 --sut tensorrt-gpu --mode all --model "$model" \
    --dataset "$MLPERF_TINY/datasets" --sut-option "precision=$precision" \
    --output "$WORK/runs/$precision" || failed+=("run $precision")
done

step "summary"
timeout 60 "$PY" - "$WORK/runs" <<'PY'
import json, sys
from pathlib import Path


def find(node, key):
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = find(item, key)
            if found is not None:
                return found
    return None


print(f"{'precision':9} {'valid':5} {'top-1 %':>7} {'p50 host us':>11} {'p50 GPU us':>10} "
      f"{'load s':>7} {'build s':>7} cache")
for precision in ("fp32", "fp16", "int8"):
    files = sorted(Path(sys.argv[1], precision).glob("*/summary.json"))
    if not files:
        print(f"{precision:9} no run")
        continue
    s = json.loads(files[-1].read_text())
    lat, gpu = s.get("latency_us") or {}, s.get("runtime_latency_us") or {}
    top1 = (s.get("accuracy") or {}).get("value")
    print(f"{precision:9} {str(s.get('valid')):5} {top1 if top1 is not None else '-':>7} "
          f"{lat.get('p50', '-'):>11} {gpu.get('p50', '-'):>10} "
          f"{(s.get('startup') or {}).get('load_s', '-'):>7} {find(s, 'build_s') or '-':>7} "
          f"{'hit' if find(s, 'engine_cache_hit') else 'built'}")
PY

if ((${#failed[@]})); then printf '\nFAILED: %s\n' "${failed[@]}"; exit 1; fi
printf '\nall steps passed\n'
