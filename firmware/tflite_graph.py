"""A full-integer ``.tflite`` file read into plain, typed values (the ``tflite`` flatbuffer package),
and TFLite's own arithmetic on them.

Only what the model compiler needs: tensors (shape, type, quantisation, constant data), the
operators of the one subgraph (builtin name, tensor indices, the options the int8 kernels use) and
the graph's inputs and outputs. Whatever cannot be represented is a one-line :class:`UsageError`.
The functions at the end compute what TFLite derives from those values when it prepares a kernel
(QuantizeMultiplier, activation ranges, padding, ADD's and SOFTMAX's parameters), in double
precision as TFLite does, so the firmware's kernels reproduce tflite-micro's bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyharness.errors import UsageError

MAX_MODEL_BYTES = 16 << 20  # far above any microcontroller's flash
PADDING = {0: "same", 1: "valid"}
ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # "int8", "int32", "float32", ...
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quant_dim: int
    data: bytes | None  # constant tensors only
    dynamic_dims: tuple[int, ...]  # dimensions whose signature is -1

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def label(self) -> str:
        """The name for messages: converters join long op names with ';', keep the start."""
        return repr(self.name if len(self.name) <= 40 else self.name[:37] + "...")

    @property
    def signature(self) -> str:
        return "[" + ", ".join("?" if i in self.dynamic_dims else str(d) for i, d in enumerate(self.shape)) + "]"

    @property
    def scale(self) -> float:
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str  # builtin name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # -1: an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    path: Path
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _dtype(code: int) -> str:
    import tflite

    return _names(tflite.TensorType).get(code, f"type {code}").lower()


def _numpy_list(obj: Any, name: str) -> list:
    """A flatbuffer vector as a list (the generated accessors return 0 for an absent vector)."""
    if getattr(obj, name + "Length")() == 0:
        return []
    return [x.item() for x in getattr(obj, name + "AsNumpy")()]


def _tensor(model: Any, graph: Any, index: int) -> Tensor:
    t = graph.Tensors(index)
    q = t.Quantization()
    scales, zero_points, quant_dim = (), (), 0
    if q is not None:
        scales = tuple(float(s) for s in _numpy_list(q, "Scale"))
        zero_points = tuple(int(z) for z in _numpy_list(q, "ZeroPoint"))
        quant_dim = q.QuantizedDimension()
    buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    data = None
    if buf is not None and buf.DataLength() > 0:
        data = buf.DataAsNumpy().tobytes()
    elif buf is not None and buf.Offset() > 1:  # data stored after the flatbuffer (> 2 GB models)
        raise UsageError(f"tensor {t.Name().decode(errors='replace')!r}: external buffers are not supported")
    signature = _numpy_list(t, "ShapeSignature")
    return Tensor(index=index, name=t.Name().decode(errors="replace"),
                  shape=tuple(int(d) for d in _numpy_list(t, "Shape")), dtype=_dtype(t.Type()),
                  scales=scales, zero_points=zero_points, quant_dim=quant_dim, data=data,
                  dynamic_dims=tuple(i for i, d in enumerate(signature) if d < 0))


def _options(opcode: str, op: Any) -> dict[str, Any]:
    """The builtin options the kernels use, by operator."""
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}

    def load(cls: type) -> Any:
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return o

    if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = load(tflite.Conv2DOptions if opcode == "CONV_2D" else tflite.DepthwiseConv2DOptions)
        opts = {"padding": PADDING.get(o.Padding(), "?"), "stride_h": o.StrideH(), "stride_w": o.StrideW(),
                "dil_h": o.DilationHFactor(), "dil_w": o.DilationWFactor(),
                "activation": ACTIVATIONS.get(o.FusedActivationFunction(), "?")}
        if opcode == "DEPTHWISE_CONV_2D":
            opts["depth_mult"] = o.DepthMultiplier()
        return opts
    if opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = load(tflite.Pool2DOptions)
        return {"padding": PADDING.get(o.Padding(), "?"), "stride_h": o.StrideH(), "stride_w": o.StrideW(),
                "k_h": o.FilterHeight(), "k_w": o.FilterWidth(),
                "activation": ACTIVATIONS.get(o.FusedActivationFunction(), "?")}
    if opcode == "FULLY_CONNECTED":
        o = load(tflite.FullyConnectedOptions)
        return {"activation": ACTIVATIONS.get(o.FusedActivationFunction(), "?"),
                "weights_format": o.WeightsFormat()}
    if opcode == "ADD":
        return {"activation": ACTIVATIONS.get(load(tflite.AddOptions).FusedActivationFunction(), "?")}
    if opcode == "SOFTMAX":
        return {"beta": float(load(tflite.SoftmaxOptions).Beta())}
    return {}


def read_graph(path: Path | str) -> Graph:
    """The single subgraph of a ``.tflite`` file; UsageError for what is not a readable model."""
    import tflite

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model file not found: {path}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise UsageError(f"{path.name}: {path.stat().st_size:,} bytes is too large for a microcontroller model")
    data = path.read_bytes()
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise UsageError(f"{path.name}: not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise UsageError(f"{path.name}: {model.SubgraphsLength()} subgraphs; the firmware compiler "
                             "takes models with exactly one")
        codes = _names(tflite.BuiltinOperator)
        graph = model.Subgraphs(0)
        tensors = tuple(_tensor(model, graph, i) for i in range(graph.TensorsLength()))
        ops = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            opcode = codes.get(code, f"builtin {code}")
            if opcode == "CUSTOM":
                opcode = f"CUSTOM ({(oc.CustomCode() or b'?').decode(errors='replace')})"
            ops.append(Operator(index=i, opcode=opcode, inputs=tuple(_numpy_list(op, "Inputs")),
                                outputs=tuple(_numpy_list(op, "Outputs")), options=_options(opcode, op)))
        inputs, outputs = tuple(_numpy_list(graph, "Inputs")), tuple(_numpy_list(graph, "Outputs"))
    except UsageError:
        raise
    except Exception as exc:  # struct.error, IndexError, ...: a corrupt flatbuffer
        raise UsageError(f"{path.name}: corrupt TFLite flatbuffer ({type(exc).__name__})") from None
    n = len(tensors)
    for op in ops:
        if any(not -1 <= t < n for t in op.inputs + op.outputs):
            raise UsageError(f"{path.name}: operator {op.index} refers to a tensor out of range")
    if not inputs or not outputs or any(not 0 <= t < n for t in inputs + outputs):
        raise UsageError(f"{path.name}: the graph's inputs or outputs are missing or out of range")
    return Graph(path=path, tensors=tensors, operators=tuple(ops), inputs=inputs, outputs=outputs)


# ---- TFLite's quantisation arithmetic -----------------------------------------------------------

def _round(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (Q31 multiplier, shift) with real = m * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = _round(q * (1 << 31))
    if fixed == 1 << 31:
        fixed, shift = fixed // 2, shift + 1
    if shift < -31:  # everything would shift out: TFLite flushes it to zero
        return 0, 0
    return fixed, shift


def activation_range(act: str, t: Tensor, where: str) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (float32 division, roundf)."""
    import numpy as np

    def q(f: float) -> int:
        return t.zero_point + _round(float(np.float32(f) / np.float32(t.scale)))

    lo, hi = -128, 127
    if act == "none":
        return lo, hi
    if act == "relu":
        return max(lo, q(0.0)), hi
    if act == "relu6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == "relu_n1_to_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise UsageError(f"{where}: fused activation {act.upper()} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min): PreprocessSoftmaxScaling and
    CalculateInputRadius with 5 integer bits for the scaled differences."""
    real = min(beta * input_scale * float(1 << (31 - 5)), float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    radius = math.floor(((1 << 5) - 1) * float(1 << (31 - 5)) / float(1 << shift))
    return mult, shift, -radius


def add_params(s1: float, s2: float, out: float) -> dict[str, int]:
    """ADD's input and output rescaling (left shift 20, inputs to twice the larger scale)."""
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << 20) * out))
    if max(sh1, sh2, sho) > 0:  # TFLite's QuantizeMultiplierSmallerThanOneExp refuses these too
        raise UsageError(f"ADD: input scales {s1:g}, {s2:g} and output scale {out:g} need a rescaling "
                         "multiplier above 1, which TFLite does not support")
    return {"left_shift": 20, "in1_mult": m1, "in1_shift": sh1, "in2_mult": m2, "in2_shift": sh2,
            "out_mult": mo, "out_shift": sho}


def padding(kind: str, size: int, k: int, stride: int, dil: int) -> tuple[int, int]:
    """(output size, leading padding) as TFLite's ComputePaddingHeightWidth gives them."""
    eff = (k - 1) * dil + 1
    out = (size + stride - 1) // stride if kind == "same" else (size + stride - eff) // stride
    return out, max((out - 1) * stride + eff - size, 0) // 2
