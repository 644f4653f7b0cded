"""``tinyharness models export``: a benchmark's pinned float ONNX model (or any .onnx file) to a
PyTorch ``.pt2`` (onnx2torch, then ``torch.export``) or an ExecuTorch ``.pte`` (the same exported
program lowered by ``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK partitioner).

The converter runs in a child interpreter (``--python``, TINYHARNESS_EXPORT_PYTHON, default this
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

# The child: argv[1] is a JSON job. It prints one JSON line last: {"ok": ...} or {"error": ...}.
# onnx2torch imports torchvision for its NMS and RoiAlign converters only; PyPI's torchvision does
# not import beside every torch build, so a stand-in that refuses those two ops is put in its place.
_CHILD = r'''
import json, sys, types
job = json.loads(sys.argv[1])

def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(3)

import importlib.util as u, importlib.metadata as md
need = ["torch", "onnx", "onnx2torch"] + (["executorch"] if job["to"] == "executorch" else [])
missing = [m for m in need if u.find_spec(m) is None]
if missing:
    fail("missing " + " and ".join(missing))
try:
    import torchvision  # noqa: F401
except Exception:
    tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    def _refuse(*args, **kwargs):
        raise RuntimeError("torchvision is not installed: NMS and RoiAlign cannot be exported")
    ops.nms = ops.roi_align = ops.box_convert = _refuse
    tv.ops = ops
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops
import numpy as np
import onnx
import torch
from onnx2torch import convert
from onnx2torch.node_converters.reshape import OnnxReshape
from torch.fx.passes.shape_prop import ShapeProp

def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None

versions = {name: version(name) for name in need}
model = onnx.load(job["source"])
graph = model.graph
inits = {i.name for i in graph.initializer}
inputs = [i for i in graph.input if i.name not in inits]
if len(inputs) != 1 or len(graph.output) != 1:
    fail(f"supports one input and one output, the model has {len(inputs)} and {len(graph.output)}")
tensor = inputs[0].type.tensor_type
if tensor.elem_type != onnx.TensorProto.FLOAT:
    fail(f"the input is {onnx.TensorProto.DataType.Name(tensor.elem_type).lower()}, not float: "
         "export the float model")
shape = []
for axis, dim in enumerate(tensor.shape.dim):
    if dim.HasField("dim_value") and dim.dim_value > 0:
        shape.append(dim.dim_value)
    elif axis == 0:
        shape.append(1)  # batch 1, as every SUT runs
    else:
        fail(f"input dimension {axis} is dynamic")
torch.manual_seed(0)
module = convert(model).eval()
example = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
# onnx2torch's Reshape reads its target shape from a tensor (data-dependent for torch.export):
# with batch 1 every shape is static, so each Reshape becomes torch.reshape to the shape it makes.
ShapeProp(module).propagate(example)
static = 0
for node in list(module.graph.nodes):
    if node.op == "call_module" and isinstance(module.get_submodule(node.target), OnnxReshape):
        with module.graph.inserting_after(node):
            new = module.graph.call_function(
                torch.reshape, (node.args[0], tuple(node.meta["tensor_meta"].shape)))
        node.replace_all_uses_with(new)
        module.graph.erase_node(node)
        static += 1
module.graph.eliminate_dead_code()
module.delete_all_unused_submodules()
# Submodules are named after the ONNX nodes ("model/dense/BiasAdd;model/Relu"): torch.export keeps
# those paths in each node's nn_module_stack, which torch.export.load cannot split back where they
# hold ',' or ';'. Each called submodule gets an identifier of its own.
import re
owned, used = {}, set()
for node in module.graph.nodes:
    if node.op == "call_module":
        if node.target not in owned:
            safe = re.sub(r"\W", "_", node.target) or "m"
            while safe in used:
                safe += "_"
            used.add(safe)
            owned[node.target] = (safe, module.get_submodule(node.target))
        node.target = owned[node.target][0]
    elif node.op == "get_attr":
        owned.setdefault(node.target, (node.target, module.get_parameter(node.target)
                                       if node.target in dict(module.named_parameters())
                                       else module.get_buffer(node.target)))
module = torch.fx.GraphModule({name: value for name, value in owned.values()}, module.graph)
with torch.no_grad():
    program = torch.export.export(module, (example,), strict=False)
info = {"input": {"name": inputs[0].name, "shape": shape, "dtype": "float32"},
        "static_reshapes": static}
if job["to"] == "torch":
    torch.export.save(program, job["output"])
    run = torch.export.load(job["output"]).module()  # what a reader gets back, checked below
else:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    lowered = edge.exported_program().graph
    calls = [n for n in lowered.nodes if n.op == "call_function"]
    delegated = [n for n in calls if "executorch_call_delegate" in str(n.target)]
    info["delegate"] = "XnnpackBackend" if delegated else None
    info["delegated_calls"] = len(delegated)
    info["portable_ops"] = sorted({str(n.target) for n in calls if n not in delegated
                                   and str(n.target) != "<built-in function getitem>"})
    with open(job["output"], "wb") as out:
        out.write(edge.to_executorch().buffer)
    method = Runtime.get().load_program(job["output"]).load_method("forward")
    run = lambda x: method.execute([x])[0]
rng = np.random.default_rng(1)
checks = [example] + [torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
                      for _ in range(3)]
try:
    import onnxruntime as ort
except ImportError:
    ort = None
if ort is not None:
    sess = ort.InferenceSession(job["source"], providers=["CPUExecutionProvider"])
    diff = 0.0
    for x in checks:
        want = sess.run(None, {inputs[0].name: x.numpy().reshape(
            [d if d > 0 else 1 for d in shape])})[0]
        got = run(x)
        got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
        diff = max(diff, float(np.abs(got.reshape(want.shape) - want).max()))
    info["check"] = {"against": f"onnxruntime {ort.__version__}", "inputs": len(checks),
                     "max_abs_diff": diff}
print(json.dumps({"ok": True, "versions": versions, "info": info}))
'''


@dataclass(frozen=True)
class Job:
    benchmark: str | None
    source: Path | ModelEntry  # an .onnx file, or the rule set's float ONNX that the store resolves
    output: Path  # the .pt2 or .pte to write
    to: str  # "torch" or "executorch"
    precision: str


@dataclass(frozen=True)
class Exported:
    job: Job
    source: Path
    sha256: str
    sidecar: Path
    meta: dict


def plan(target: str, to: str, precision: str, output: Path | None, store: ModelStore) -> Job:
    """What to export for a benchmark id (its float ONNX model) or an .onnx path."""
    if to not in TARGETS:
        raise UsageError(f"unknown export target {to!r}; known: {', '.join(TARGETS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "int8":
        raise UsageError("--precision int8 (PT2E quantization with the benchmark's calibration "
                         "list) is not implemented yet; export float")
    suffix = TARGETS[to]
    benchmarks = load_benchmarks()
    if target in benchmarks:
        b = benchmarks[target]
        floats = [e for e in b.models if e.format == "onnx" and e.precision in ("float32", "float")]
        if not floats:
            raise UsageError(f"benchmark {b.id} has no float ONNX model to export")
        entry = floats[0]
        folder = output or store.cache / "exported" / b.store_dir
        return Job(b.id, entry, folder / f"{Path(entry.file).stem}.{suffix}", to, precision)
    path = Path(target)
    if not path.exists():
        if path.suffix or os.sep in target:
            raise UsageError(f"{target}: no such file")
        raise UsageError(f"{target!r} is neither a benchmark ({', '.join(sorted(benchmarks))}) "
                         "nor an .onnx file")
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise UsageError(f"{target}: not an .onnx file")
    folder = output or store.cache / "exported" / "local"
    return Job(None, path, folder / f"{path.stem}.{suffix}", to, precision)


def export(job: Job, python: str, store: ModelStore, timeout_s: float = TIMEOUT_S) -> Exported:
    """Run the converter in ``python``; write the model and its sidecar JSON atomically."""
    source = job.source if isinstance(job.source, Path) else store.resolve(job.source).path
    fix = f"{_FIX[job.to]}, or --python PATH to a Python that has them"
    with tempfile.TemporaryDirectory(prefix="tinyharness-export-") as tmp:
        raw = Path(tmp) / job.output.name
        args = json.dumps({"source": str(source), "output": str(raw), "to": job.to})
        try:
            done = subprocess.run([python, "-c", _CHILD, args], capture_output=True, text=True,
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
    digest = hashlib.sha256(data).hexdigest()
    versions = result["versions"]
    converter = f"onnx2torch {versions['onnx2torch']} + torch.export (torch {versions['torch']})"
    if job.to == "executorch":
        converter += (f" + executorch.exir.to_edge_transform_and_lower with XnnpackPartitioner "
                      f"(executorch {versions['executorch']})")
    from . import __version__

    meta = {"division": DIVISION, "benchmark": job.benchmark,
            "format": TARGETS[job.to], "precision": "float32" if job.precision == "float" else "int8",
            "sha256": digest, "size": len(data),
            "source": {"file": source.name, "sha256": sha256_of(source),
                       "pinned": isinstance(job.source, ModelEntry)},
            "converter": converter, "versions": {**versions, "tinyharness": __version__},
            **result["info"]}
    _write_atomically(job.output, data)
    sidecar = job.output.with_name(job.output.name + ".json")
    _write_atomically(sidecar, (json.dumps(meta, indent=1) + "\n").encode())
    return Exported(job, source, digest, sidecar, meta)


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
