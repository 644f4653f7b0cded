"""``tinyharness models export``: a benchmark's pinned float ONNX model (or any .onnx file) to a
PyTorch ``.pt2`` (onnx2torch, then ``torch.export``) or an ExecuTorch ``.pte`` (the same exported
program lowered by ``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK partitioner).

``--precision int8`` quantizes with PyTorch's PT2E flow and ExecuTorch's XNNPACK quantizer,
calibrated on the inputs of a calibration list (:mod:`tinyharness.calibration`).

The converter (``export_child.py``) runs in a child interpreter (``--python``, TINYHARNESS_EXPORT_PYTHON, default this
one), bounded by a timeout, like ``models convert``: PyTorch is large and slow to import, so the
harness never imports it, and the converter may live in a virtual environment of its own. Its
versions, the source's sha256 and a numeric check against ONNX Runtime (when the child has it) go
into a sidecar ``<file>.json``. Exported models are open-division models, never reference models:
the rule set pins none of them, and the sidecar says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import calibration as calib
from .benchmark import ModelEntry, load_benchmarks
from .convert import _keep_log, _last_line, _write_atomically
from .errors import UsageError
from .fileio import sha256_of
from .model_store import ModelStore

TARGETS = {"torch": "pt2", "executorch": "pte"}
PRECISIONS = ("float", "int8")
DIVISION = "open division (not a reference model)"
TIMEOUT_S = 1800  # a float ResNet exports in under a minute; a hung converter must not hang us
_FIX = {"torch": "pip install torch onnx onnx2torch (the 'export' extra)",
        "executorch": "pip install torch onnx onnx2torch executorch (the 'export' and 'executorch' "
                      "extras)"}
_FIX_INT8 = ("pip install torch onnx onnx2torch executorch torchao (the 'export' and 'executorch' "
             "extras)")
CHILD = Path(__file__).with_name("export_child.py")


@dataclass(frozen=True)
class Job:
    benchmark: str | None
    source: Path | ModelEntry  # an .onnx file, or the rule set's float ONNX that the store resolves
    output: Path  # the .pt2 or .pte to write
    to: str  # "torch" or "executorch"
    precision: str
    calibration: calib.Calibration | None = None  # int8 only


@dataclass(frozen=True)
class Exported:
    job: Job
    source: Path
    sha256: str
    sidecar: Path
    meta: dict


def plan(target: str, to: str, precision: str, output: Path | None, store: ModelStore,
         calibration: Path | None = None, dataset: Path | None = None) -> Job:
    """What to export for a benchmark id (its float ONNX model) or an .onnx path; for int8, the
    calibration inputs are read here (from ``dataset``, default the benchmark's)."""
    if to not in TARGETS:
        raise UsageError(f"unknown export target {to!r}; known: {', '.join(TARGETS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "float" and calibration is not None:
        raise UsageError("--calibration is for --precision int8; a float export needs none")
    suffix = TARGETS[to]
    tag = "" if precision == "float" else "_pt2e_int8"
    benchmarks = load_benchmarks()
    if target in benchmarks:
        b = benchmarks[target]
        floats = [e for e in b.models if e.format == "onnx" and e.precision in ("float32", "float")]
        if not floats:
            raise UsageError(f"benchmark {b.id} has no float ONNX model to export")
        entry = floats[0]
        folder = output or store.cache / "exported" / b.store_dir
        cal = _calibration(precision, calibration, b, dataset)
        return Job(b.id, entry, folder / f"{Path(entry.file).stem}{tag}.{suffix}", to, precision, cal)
    path = Path(target)
    if not path.exists():
        if path.suffix or os.sep in target:
            raise UsageError(f"{target}: no such file")
        raise UsageError(f"{target!r} is neither a benchmark ({', '.join(sorted(benchmarks))}) "
                         "nor an .onnx file")
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise UsageError(f"{target}: not an .onnx file")
    folder = output or store.cache / "exported" / "local"
    cal = _calibration(precision, calibration, None, dataset)
    return Job(None, path, folder / f"{path.stem}{tag}.{suffix}", to, precision, cal)


def _calibration(precision: str, path: Path | None, benchmark, dataset) -> calib.Calibration | None:
    if precision != "int8":
        return None
    if path is None:
        what = (f"a list of {benchmark.id} dataset files" if benchmark is not None
                else "a .npy array of float32 inputs")
        raise UsageError(f"--precision int8 needs --calibration: {what} to calibrate on (MLPerf "
                         "Tiny allows only the benchmark's calibration set)")
    return calib.load(path, benchmark, dataset)


def export(job: Job, python: str, store: ModelStore, timeout_s: float = TIMEOUT_S) -> Exported:
    """Run the converter in ``python``; write the model and its sidecar JSON atomically."""
    source = job.source if isinstance(job.source, Path) else store.resolve(job.source).path
    fix = _FIX_INT8 if job.precision == "int8" else _FIX[job.to]
    fix = f"{fix}, or --python PATH to a Python that has them"
    with tempfile.TemporaryDirectory(prefix="tinyharness-export-") as tmp:
        raw = Path(tmp) / job.output.name
        inputs = None
        if job.calibration is not None:
            inputs = Path(tmp) / "calibration.npy"
            np.save(inputs, job.calibration.inputs)
        args = json.dumps({"source": str(source), "output": str(raw), "to": job.to,
                           "precision": job.precision, "calibration": inputs and str(inputs)})
        try:
            done = subprocess.run([python, str(CHILD), args], capture_output=True, text=True,
                                  timeout=timeout_s, check=False,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
        except OSError as exc:
            raise UsageError(f"cannot run {python} as the exporter's Python "
                             f"({exc.strerror or exc}): {fix}") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"the export of {source.name} took over {timeout_s:.0f} s; "
                             "stopped") from None
        result = _result(done.stdout)
        if "error" in result:
            more = f": {fix}" if result["error"].startswith("missing ") else ""
            raise UsageError(f"cannot export {source.name} to .{TARGETS[job.to]}: "
                             f"{result['error']}{more}")
        if done.returncode != 0 or not result.get("ok") or not raw.is_file():
            raise UsageError(f"cannot export {source.name} to .{TARGETS[job.to]}: "
                             f"{_last_line(done.stderr)}{_keep_log(done.stderr)}")
        data = raw.read_bytes()
    meta = _meta(job, source, data, result)
    _write_atomically(job.output, data)
    sidecar = job.output.with_name(job.output.name + ".json")
    _write_atomically(sidecar, (json.dumps(meta, indent=1) + "\n").encode())
    return Exported(job, source, meta["sha256"], sidecar, meta)


def _meta(job: Job, source: Path, data: bytes, result: dict) -> dict:
    """The sidecar: what was converted, how, by which versions, and how it checked out."""
    from . import __version__

    versions = result["versions"]
    converter = f"onnx2torch {versions['onnx2torch']} + torch.export (torch {versions['torch']})"
    if job.precision == "int8":
        converter += f" + PT2E int8 (torchao {versions['torchao']}, XNNPACKQuantizer)"
    if job.to == "executorch":
        converter += (f" + executorch.exir.to_edge_transform_and_lower with XnnpackPartitioner "
                      f"(executorch {versions['executorch']})")
    info = dict(result["info"])
    if job.calibration is not None:
        info["quantization"] = {**info.get("quantization", {}),
                                "calibration": job.calibration.to_dict()}
    return {"division": DIVISION, "benchmark": job.benchmark,
            "format": TARGETS[job.to], "precision": "float32" if job.precision == "float" else "int8",
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "source": {"file": source.name, "sha256": sha256_of(source),
                       "pinned": isinstance(job.source, ModelEntry)},
            "converter": converter, "versions": {**versions, "tinyharness": __version__}, **info}


def _result(stdout: str) -> dict:
    """The child's last stdout line as JSON; {} when it printed none (it crashed)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}
