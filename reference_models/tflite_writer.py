"""Minimal, deterministic TFLite flatbuffer writer for the reference-model build scripts.

Only what the reference models need: one subgraph of RESHAPE, FULLY_CONNECTED and SOFTMAX
operators over float32 / int8 / int32 tensors with optional per-tensor quantization.  It uses the
`tflite` package's flatc-generated builder functions, so the layout follows the official schema.
The same inputs always give the same bytes (no timestamps, no dict-order dependence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite as fb  # flatc-generated schema bindings; the `<Table><Field>` builder functions
from tflite import ActivationFunctionType, BuiltinOperator, BuiltinOptions, TensorType

SCHEMA_VERSION = 3
_TYPES = {"float32": TensorType.FLOAT32, "int8": TensorType.INT8, "int32": TensorType.INT32}


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32" | "int8" | "int32"
    data: np.ndarray | None = None  # constant tensors only
    scale: float | None = None  # per-tensor quantization; None = not quantized
    zero_point: int = 0


@dataclass
class OpSpec:
    op: str  # "RESHAPE" | "FULLY_CONNECTED" | "SOFTMAX"
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)
    version: int = 1  # the op version the TFLite converter would write for these types


def _int_vector(b: flatbuffers.Builder, values, start_fn) -> int:
    start_fn(b, len(values))
    for v in reversed(values):
        b.PrependInt32(int(v))
    return b.EndVector()


def _byte_vector(b: flatbuffers.Builder, data: bytes) -> int:
    # 16-byte alignment, like the TFLite converter, so kernels may read weights in place.
    b.StartVector(1, len(data), 16)
    b.head -= len(data)
    b.Bytes[b.head : b.head + len(data)] = data
    return b.EndVector()


def _quantization(b: flatbuffers.Builder, t: TensorSpec) -> int:
    fb.QuantizationParametersStartScaleVector(b, 1)
    b.PrependFloat32(float(t.scale))
    scale = b.EndVector()
    fb.QuantizationParametersStartZeroPointVector(b, 1)
    b.PrependInt64(int(t.zero_point))
    zp = b.EndVector()
    fb.QuantizationParametersStart(b)
    fb.QuantizationParametersAddScale(b, scale)
    fb.QuantizationParametersAddZeroPoint(b, zp)
    return fb.QuantizationParametersEnd(b)


def _options(b: flatbuffers.Builder, op: OpSpec) -> tuple[int, int]:
    if op.op == "FULLY_CONNECTED":
        act = ActivationFunctionType.RELU if op.options.get("relu") else ActivationFunctionType.NONE
        fb.FullyConnectedOptionsStart(b)
        fb.FullyConnectedOptionsAddFusedActivationFunction(b, act)
        return BuiltinOptions.FullyConnectedOptions, fb.FullyConnectedOptionsEnd(b)
    if op.op == "RESHAPE":
        shape = _int_vector(b, op.options["new_shape"], fb.ReshapeOptionsStartNewShapeVector)
        fb.ReshapeOptionsStart(b)
        fb.ReshapeOptionsAddNewShape(b, shape)
        return BuiltinOptions.ReshapeOptions, fb.ReshapeOptionsEnd(b)
    if op.op == "SOFTMAX":
        fb.SoftmaxOptionsStart(b)
        fb.SoftmaxOptionsAddBeta(b, float(op.options.get("beta", 1.0)))
        return BuiltinOptions.SoftmaxOptions, fb.SoftmaxOptionsEnd(b)
    raise ValueError(f"unsupported op {op.op}")


def build_model(
    tensors: list[TensorSpec],
    ops: list[OpSpec],
    inputs: list[int],
    outputs: list[int],
    description: str,
) -> bytes:
    """Serialise one single-subgraph model and return the .tflite bytes."""
    b = flatbuffers.Builder(4096)

    # Buffer 0 is the schema's mandatory empty sentinel; every non-constant tensor points at it.
    buffer_data: list[bytes] = [b""]
    tensor_buffer: list[int] = []
    for t in tensors:
        if t.data is None:
            tensor_buffer.append(0)
            continue
        arr = np.ascontiguousarray(t.data, dtype=np.dtype(t.dtype).newbyteorder("<"))
        if tuple(arr.shape) != tuple(t.shape):
            raise ValueError(f"{t.name}: data shape {arr.shape} != {t.shape}")
        tensor_buffer.append(len(buffer_data))
        buffer_data.append(arr.tobytes())

    buffers = []
    for data in buffer_data:
        vec = _byte_vector(b, data) if data else None
        fb.BufferStart(b)
        if vec is not None:
            fb.BufferAddData(b, vec)
        buffers.append(fb.BufferEnd(b))

    tensor_offsets = []
    for t, buf in zip(tensors, tensor_buffer):
        name = b.CreateString(t.name)
        shape = _int_vector(b, t.shape, fb.TensorStartShapeVector)
        quant = _quantization(b, t) if t.scale is not None else None
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        fb.TensorAddType(b, _TYPES[t.dtype])
        fb.TensorAddBuffer(b, buf)
        fb.TensorAddName(b, name)
        if quant is not None:
            fb.TensorAddQuantization(b, quant)
        tensor_offsets.append(fb.TensorEnd(b))

    # Operator codes in order of first use; builtin_code holds the real value and the
    # deprecated int8 field a copy (values < 127), as the converter writes them.
    codes: list[tuple[str, int]] = []
    for op in ops:
        if (op.op, op.version) not in codes:
            codes.append((op.op, op.version))
    code_offsets = []
    for name, version in codes:
        value = getattr(BuiltinOperator, name)
        fb.OperatorCodeStart(b)
        fb.OperatorCodeAddDeprecatedBuiltinCode(b, min(value, 127))
        fb.OperatorCodeAddVersion(b, version)
        fb.OperatorCodeAddBuiltinCode(b, value)
        code_offsets.append(fb.OperatorCodeEnd(b))

    op_offsets = []
    for op in ops:
        ins = _int_vector(b, op.inputs, fb.OperatorStartInputsVector)
        outs = _int_vector(b, op.outputs, fb.OperatorStartOutputsVector)
        opt_type, opt = _options(b, op)
        fb.OperatorStart(b)
        fb.OperatorAddOpcodeIndex(b, codes.index((op.op, op.version)))
        fb.OperatorAddInputs(b, ins)
        fb.OperatorAddOutputs(b, outs)
        fb.OperatorAddBuiltinOptionsType(b, opt_type)
        fb.OperatorAddBuiltinOptions(b, opt)
        op_offsets.append(fb.OperatorEnd(b))

    def table_vector(start_fn, offsets):
        start_fn(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    sg_tensors = table_vector(fb.SubGraphStartTensorsVector, tensor_offsets)
    sg_inputs = _int_vector(b, inputs, fb.SubGraphStartInputsVector)
    sg_outputs = _int_vector(b, outputs, fb.SubGraphStartOutputsVector)
    sg_ops = table_vector(fb.SubGraphStartOperatorsVector, op_offsets)
    sg_name = b.CreateString("main")
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, sg_tensors)
    fb.SubGraphAddInputs(b, sg_inputs)
    fb.SubGraphAddOutputs(b, sg_outputs)
    fb.SubGraphAddOperators(b, sg_ops)
    fb.SubGraphAddName(b, sg_name)
    subgraph = fb.SubGraphEnd(b)

    m_codes = table_vector(fb.ModelStartOperatorCodesVector, code_offsets)
    m_subgraphs = table_vector(fb.ModelStartSubgraphsVector, [subgraph])
    m_desc = b.CreateString(description)
    m_buffers = table_vector(fb.ModelStartBuffersVector, buffers)
    fb.ModelStart(b)
    fb.ModelAddVersion(b, SCHEMA_VERSION)
    fb.ModelAddOperatorCodes(b, m_codes)
    fb.ModelAddSubgraphs(b, m_subgraphs)
    fb.ModelAddDescription(b, m_desc)
    fb.ModelAddBuffers(b, m_buffers)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
