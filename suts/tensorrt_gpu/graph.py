"""What the ``tensorrt-gpu`` SUT checks in the ONNX graph before it touches a GPU.

TensorRT 10 builds int8 engines only by *explicit* quantization (QuantizeLinear/DequantizeLinear
nodes in the graph; implicit calibration is deprecated since 10.1) and only *symmetric*
quantization (every Q/DQ zero point 0). Both are properties of the file, so they are checked here
with the ``onnx`` package, on any machine: a wrong precision is a one-line UsageError before CUDA
or TensorRT is loaded, not a parser error minutes into a build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tinyharness.errors import UsageError, first_line

PRECISIONS = ("fp32", "fp16", "int8")
_QDQ = ("QuantizeLinear", "DequantizeLinear")
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class GraphFacts:
    """The facts of an ONNX graph the SUT's choices depend on."""

    sha256: str  # of the file's bytes: the engine cache's first key part
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_dims: tuple[int | None, ...]  # None where dynamic (a dim_param or no value)
    qdq_nodes: int  # QuantizeLinear + DequantizeLinear
    asymmetric: int  # of those, the ones whose zero point is not a constant 0

    @property
    def quantized(self) -> bool:
        return self.qdq_nodes > 0

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.input_dims) and self.input_dims[0] is None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inspect(onnx, path: Path) -> GraphFacts:
    """The facts of the ONNX model at ``path``, read with the ``onnx`` module given (imported by
    the caller, so that a missing package is the SUT's missing-runtime error). A file onnx
    cannot read is a one-line UsageError."""
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # not a protobuf, truncated: the user's input
        raise UsageError(f"cannot load {path}: onnx: {first_line(exc)}") from None
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    qdq = [n for n in graph.node if n.op_type in _QDQ]
    asymmetric = 0
    for node in qdq:
        if len(node.input) > 2 and node.input[2]:
            zero = consts.get(node.input[2])
            if zero is None or zero.any():  # computed at run time, or not 0
                asymmetric += 1
    initialized = set(consts)
    real_inputs = [i for i in graph.input if i.name not in initialized]
    dims: tuple[int | None, ...] = ()
    if real_inputs:
        shape = real_inputs[0].type.tensor_type.shape
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in shape.dim)
    return GraphFacts(sha256=file_sha256(path), inputs=tuple(i.name for i in real_inputs),
                      outputs=tuple(o.name for o in graph.output), input_dims=dims,
                      qdq_nodes=len(qdq), asymmetric=asymmetric)


def check_io(facts: GraphFacts, model: Path, sut: str) -> None:
    """One input and one output; no dynamic dimension but the batch: else a UsageError."""
    if len(facts.inputs) != 1 or len(facts.outputs) != 1:
        raise UsageError(f"{model.name}: SUT {sut!r} supports one input and one output, the "
                         f"model has {len(facts.inputs)} and {len(facts.outputs)}")
    if not facts.input_dims or None in facts.input_dims[1:]:
        raise UsageError(f"{model.name}: input {facts.inputs[0]!r} has a dynamic dimension other "
                         f"than the batch ({list(facts.input_dims)}); export it with a fixed shape")


def resolve_precision(requested: str | None, facts: GraphFacts, model: Path) -> str:
    """The precision the engine is built in: ``requested``, or the graph's own when None (int8
    for a Q/DQ graph, else fp32). A combination TensorRT cannot honour is a one-line UsageError
    that says what to do instead."""
    name = model.name
    if facts.quantized and facts.asymmetric:
        raise UsageError(
            f"{name}: {facts.asymmetric} of its {facts.qdq_nodes} Q/DQ nodes have a non-zero zero "
            "point; TensorRT supports only symmetric int8 quantization: re-quantize it "
            "symmetrically (onnxruntime quantize_static with ActivationSymmetric=True, or NVIDIA "
            "ModelOpt) or give the float model with --model")
    if requested is None:
        return "int8" if facts.quantized else "fp32"
    if requested == "int8" and not facts.quantized:
        raise UsageError(
            f"--sut-option precision=int8 needs an explicitly quantized graph (QuantizeLinear/"
            f"DequantizeLinear nodes); {name} has none: give a Q/DQ ONNX model with --model, or "
            "use precision=fp32 or fp16")
    if requested != "int8" and facts.quantized:
        raise UsageError(
            f"--sut-option precision={requested}: {name} is explicitly quantized ({facts.qdq_nodes} "
            "Q/DQ nodes), which TensorRT runs in int8: use precision=int8, or give the float "
            "model with --model")
    return requested
