"""The model compiler: a full-integer ``.tflite`` -> ``model.c`` for the firmware's int8 kernels.

``model.c`` implements ``src/model/model.h``: the graph as straight-line calls into
``src/kernels`` (one per operator, between ``MODEL_OP_HOOK`` calls), weights, biases and per-channel
requantisation parameters as ``const`` arrays (flash), and one static activation arena whose offsets
:mod:`.planner` computes from tensor lifetimes (the input tensor's bytes are reused once it has been
read). The requantisation parameters are computed here exactly as TFLite computes them
(``QuantizeMultiplier`` of the double ``input_scale * filter_scale / output_scale``; ADD's and
SOFTMAX's preprocessing), so the kernels reproduce tflite-micro's output bytes.

    python -m tinyharness.firmware.compiler MODEL.tflite OUT_DIR --name kws01
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from tinyharness.errors import UsageError

from . import planner
from .tflite_graph import (Graph, Operator, Tensor, activation_range, add_params, padding, quantize_multiplier,
                           read_graph, softmax_params)

SRC = Path(__file__).resolve().parent / "src"
KERNELS_DIR, MODEL_DIR = SRC / "kernels", SRC / "model"
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
             "ADD", "SOFTMAX", "RESHAPE")
KERNEL_NAMES = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "FULLY_CONNECTED": "fully_connected",
                "AVERAGE_POOL_2D": "avg_pool2d", "MAX_POOL_2D": "max_pool2d", "ADD": "add",
                "SOFTMAX": "softmax", "RESHAPE": "reshape"}


@dataclass(frozen=True)
class CompiledModel:
    sources: tuple[Path, ...]  # model.c
    include_dirs: tuple[Path, ...]  # kernels.h and model.h
    arena_bytes: int
    weight_bytes: int  # every const array of model.c: weights, biases, requantisation parameters
    ops: tuple[str, ...]  # kernel name per operator (model_op_names)
    input_size: int
    output_size: int
    input_quant: tuple[float, int]  # (scale, zero point)
    output_quant: tuple[float, int]


def kernel_sources() -> tuple[Path, ...]:
    """The kernels' C files, to compile together with model.c."""
    return tuple(sorted(KERNELS_DIR.glob("*.c")))


# ---- the kernels' bounded requantisation ----------------------------------------------------------

def fast_requant(weights: bytes, rows: int, axis_last: bool, bias: bytes | None, shifts: list[int]) -> int:
    """1 when every accumulator is provably below 2^30 in magnitude (|bias| + 255 * sum |w| per
    output channel) and every shift is a right shift: the kernels' bounded requantisation is then
    exact (see fp_mbqm_bounded in src/kernels/common.h)."""
    import numpy as np

    w = np.abs(np.frombuffer(weights, np.int8).astype(np.int64))
    w = w.reshape(-1, rows).sum(axis=0) if axis_last else w.reshape(rows, -1).sum(axis=1)
    b = np.abs(np.frombuffer(bias, "<i4").astype(np.int64)) if bias else np.zeros(rows, np.int64)
    return int(bool((b + 255 * w).max(initial=0) < (1 << 30) and max(shifts, default=0) <= -1))


# ---- lowering: one operator -> C declarations and a kernel call ---------------------------------

@dataclass
class Lowered:
    kernel: str  # model_op_names entry
    decls: list[str]
    call: str  # with {in0}, {in1}, {out}, {scratch} placeholders for arena pointers
    scratch: int = 0
    const_bytes: int = 0


class _Lowering:
    def __init__(self, g: Graph) -> None:
        self.g = g

    def where(self, op: Operator) -> str:
        return f"{self.g.path.name}: operator {op.index} ({op.opcode})"

    def t(self, op: Operator, i: int, kind: str = "input") -> Tensor | None:
        idx = (op.inputs if kind == "input" else op.outputs)
        return self.g.tensors[idx[i]] if i < len(idx) and idx[i] >= 0 else None

    def need(self, op: Operator, t: Tensor | None, dtype: str, what: str, const: bool | None = None) -> Tensor:
        if t is None:
            raise UsageError(f"{self.where(op)}: the {what} tensor is missing")
        if t.dtype != dtype:
            raise UsageError(f"{self.where(op)}: {what} tensor {t.label} is {t.dtype}, not {dtype}; the "
                             "firmware runs full-integer int8 models")
        if const is not None and (t.data is not None) != const:
            raise UsageError(f"{self.where(op)}: {what} tensor {t.label} must be "
                             f"{'a constant' if const else 'computed, not a constant'}")
        if not const and (len(t.scales) != 1 or t.scale <= 0):
            raise UsageError(f"{self.where(op)}: {what} tensor {t.label} needs one positive scale "
                             "(per-tensor int8 quantisation)")
        return t

    def positive(self, op: Operator, *sizes: int) -> None:
        if min(sizes) < 1:
            raise UsageError(f"{self.where(op)}: filter sizes, strides and dilations must be at least 1")

    def lower(self, op: Operator) -> Lowered:
        if op.opcode not in SUPPORTED:
            raise UsageError(f"{self.g.path.name}: operator {op.index} is {op.opcode}, which the firmware "
                             f"kernels do not support (supported: {', '.join(SUPPORTED)})")
        return getattr(self, "_" + op.opcode.lower())(op)

    def _conv(self, op: Operator, depthwise: bool) -> Lowered:
        x = self.need(op, self.t(op, 0), "int8", "input", const=False)
        w = self.need(op, self.t(op, 1), "int8", "filter", const=True)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        b = self.t(op, 2)
        o = op.options
        if len(x.shape) != 4 or x.shape[0] != 1 or len(w.shape) != 4 or len(y.shape) != 4:
            raise UsageError(f"{self.where(op)}: needs a [1, H, W, C] input and a 4-D filter")
        _, h, wd, c = x.shape
        oc = y.shape[3]
        kh, kw = w.shape[1], w.shape[2]
        if depthwise:
            if w.shape[0] != 1 or w.shape[3] != oc or oc % c:
                raise UsageError(f"{self.where(op)}: filter {list(w.shape)} does not fit input {list(x.shape)} "
                                 f"and output {list(y.shape)}")
        elif w.shape[0] != oc or w.shape[3] != c:
            raise UsageError(f"{self.where(op)}: filter {list(w.shape)} does not fit input channels {c} "
                             f"and output channels {oc} (grouped convolutions are not supported)")
        self.positive(op, kh, kw, o["stride_h"], o["stride_w"], o["dil_h"], o["dil_w"])
        oh, ph = padding(o["padding"], h, kh, o["stride_h"], o["dil_h"])
        ow, pw = padding(o["padding"], wd, kw, o["stride_w"], o["dil_w"])
        if o["padding"] not in ("same", "valid") or (1, oh, ow, oc) != y.shape:
            raise UsageError(f"{self.where(op)}: output shape {list(y.shape)} does not follow from the "
                             f"input, filter and {o['padding']} padding")
        mult, shift = self.per_channel(op, x, w, y, oc, 3 if depthwise else 0)
        act_min, act_max = activation_range(o["activation"], y, self.where(op))
        p = f"op{op.index}"
        decls = [c_array("int8_t", f"{p}_filter", as_ints(w.data, "b")),
                 c_array("int32_t", f"{p}_mult", mult), c_array("int8_t", f"{p}_shift", shift)]
        bias = self.bias(op, b, oc, decls, p)
        fields = dict(in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                      stride_h=o["stride_h"], stride_w=o["stride_w"], dil_h=o["dil_h"], dil_w=o["dil_w"],
                      pad_h=ph, pad_w=pw, depth_mult=oc // c if depthwise else 1, in_offset=-x.zero_point,
                      out_offset=y.zero_point, act_min=act_min, act_max=act_max,
                      fast_requant=fast_requant(w.data, oc, depthwise, b.data if b else None, shift),
                      filter=f"{p}_filter",
                      bias=bias, mult=f"{p}_mult", shift=f"{p}_shift")
        decls.append(c_struct("k_conv_t", p, fields))
        c4 = (c + 3) // 4 * 4  # K_DEPTHWISE_SCRATCH_BYTES and K_CONV2D_SCRATCH_BYTES of kernels.h
        scratch = (4 + 2 * kh * kw) * c4 + c4 if depthwise else 4 * kh * kw * c
        fn = "k_depthwise_conv2d" if depthwise else "k_conv2d"
        return Lowered(KERNEL_NAMES[op.opcode], decls, f"{fn}(&{p}, {{in0}}, {{out}}, {{scratch}});", scratch,
                       len(w.data) + 5 * oc + (4 * oc if b is not None else 0))

    def per_channel(self, op: Operator, x: Tensor, w: Tensor, y: Tensor, oc: int, dim: int) -> tuple[list, list]:
        if any(w.zero_points) or len(w.scales) not in (1, oc) or (len(w.scales) == oc > 1 and w.quant_dim != dim):
            raise UsageError(f"{self.where(op)}: filter {w.label} must be symmetric int8, per tensor or per "
                             f"output channel (dimension {dim})")
        scales = w.scales if len(w.scales) == oc else w.scales * oc
        pairs = [quantize_multiplier(x.scale * s / y.scale) for s in scales]
        # A multiplier flushed to 0 gives 0 with any shift: -1 keeps such channels on the kernels'
        # right-shift-only fast path.
        return [m for m, _ in pairs], [s if m else -1 for m, s in pairs]

    def bias(self, op: Operator, b: Tensor | None, n: int, decls: list[str], p: str) -> str:
        if b is None:
            return "NULL"
        self.need(op, b, "int32", "bias", const=True)
        if b.size != n:
            raise UsageError(f"{self.where(op)}: bias has {b.size} values for {n} output channels")
        decls.append(c_array("int32_t", f"{p}_bias", as_ints(b.data, "i")))
        return f"{p}_bias"

    def _conv_2d(self, op: Operator) -> Lowered:
        return self._conv(op, depthwise=False)

    def _depthwise_conv_2d(self, op: Operator) -> Lowered:
        return self._conv(op, depthwise=True)

    def _fully_connected(self, op: Operator) -> Lowered:
        x = self.need(op, self.t(op, 0), "int8", "input", const=False)
        w = self.need(op, self.t(op, 1), "int8", "weights", const=True)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        b = self.t(op, 2)
        if len(w.shape) != 2 or x.size % w.shape[1] or y.size != x.size // w.shape[1] * w.shape[0]:
            raise UsageError(f"{self.where(op)}: weights {list(w.shape)} do not fit input {list(x.shape)} "
                             f"and output {list(y.shape)}")
        if op.options.get("weights_format", 0) != 0 or len(w.scales) != 1 or any(w.zero_points):
            raise UsageError(f"{self.where(op)}: weights {w.label} must be plain symmetric int8 with one scale")
        n, k = w.shape
        mult, shift = quantize_multiplier(x.scale * w.scale / y.scale)
        act_min, act_max = activation_range(op.options["activation"], y, self.where(op))
        p = f"op{op.index}"
        decls = [c_array("int8_t", f"{p}_weights", as_ints(w.data, "b"))]
        bias = self.bias(op, b, n, decls, p)
        fields = dict(batches=x.size // k, in_size=k, out_size=n, in_offset=-x.zero_point,
                      out_offset=y.zero_point, mult=mult, shift=shift, act_min=act_min, act_max=act_max,
                      fast_requant=fast_requant(w.data, n, False, b.data if b else None, [shift] * n),
                      weights=f"{p}_weights", bias=bias)
        decls.append(c_struct("k_fc_t", p, fields))
        return Lowered("fully_connected", decls, f"k_fully_connected(&{p}, {{in0}}, {{out}}, {{scratch}});",
                       (2 * k + 3) // 4 * 4, len(w.data) + (4 * n if b is not None else 0))

    def _pool(self, op: Operator, fn: str) -> Lowered:
        x = self.need(op, self.t(op, 0), "int8", "input", const=False)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        o = op.options
        if len(x.shape) != 4 or x.shape[0] != 1 or len(y.shape) != 4:
            raise UsageError(f"{self.where(op)}: needs [1, H, W, C] input and output")
        if (x.scale, x.zero_point) != (y.scale, y.zero_point):
            raise UsageError(f"{self.where(op)}: input and output quantisation differ")
        _, h, wd, c = x.shape
        self.positive(op, o["k_h"], o["k_w"], o["stride_h"], o["stride_w"])
        oh, ph = padding(o["padding"], h, o["k_h"], o["stride_h"], 1)
        ow, pw = padding(o["padding"], wd, o["k_w"], o["stride_w"], 1)
        if o["padding"] not in ("same", "valid") or (1, oh, ow, c) != y.shape:
            raise UsageError(f"{self.where(op)}: output shape {list(y.shape)} does not follow from the input")
        act_min, act_max = activation_range(o["activation"], y, self.where(op))
        p = f"op{op.index}"
        fields = dict(in_h=h, in_w=wd, c=c, out_h=oh, out_w=ow, k_h=o["k_h"], k_w=o["k_w"],
                      stride_h=o["stride_h"], stride_w=o["stride_w"], pad_h=ph, pad_w=pw,
                      act_min=act_min, act_max=act_max)
        return Lowered(KERNEL_NAMES[op.opcode], [c_struct("k_pool_t", p, fields)],
                       f"{fn}(&{p}, {{in0}}, {{out}});")

    def _average_pool_2d(self, op: Operator) -> Lowered:
        return self._pool(op, "k_avg_pool2d")

    def _max_pool_2d(self, op: Operator) -> Lowered:
        return self._pool(op, "k_max_pool2d")

    def _add(self, op: Operator) -> Lowered:
        a = self.need(op, self.t(op, 0), "int8", "first input", const=False)
        b = self.need(op, self.t(op, 1), "int8", "second input", const=False)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        if not a.shape == b.shape == y.shape:
            raise UsageError(f"{self.where(op)}: shapes {list(a.shape)} + {list(b.shape)} -> {list(y.shape)}; "
                             "broadcasting is not supported")
        act_min, act_max = activation_range(op.options["activation"], y, self.where(op))
        fields = dict(size=y.size, in1_offset=-a.zero_point, in2_offset=-b.zero_point, out_offset=y.zero_point,
                      **add_params(a.scale, b.scale, y.scale), act_min=act_min, act_max=act_max)
        p = f"op{op.index}"
        return Lowered("add", [c_struct("k_add_t", p, fields)], f"k_add(&{p}, {{in0}}, {{in1}}, {{out}});")

    def _softmax(self, op: Operator) -> Lowered:
        x = self.need(op, self.t(op, 0), "int8", "input", const=False)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        if x.shape != y.shape or not x.shape or (y.scale, y.zero_point) != (1 / 256, -128):
            raise UsageError(f"{self.where(op)}: needs equal shapes and an output scale 1/256, zero point -128")
        mult, shift, diff_min = softmax_params(op.options.get("beta", 1.0), x.scale)
        depth = x.shape[-1]
        fields = dict(rows=x.size // depth, depth=depth, input_multiplier=mult, input_left_shift=shift,
                      diff_min=diff_min)
        p = f"op{op.index}"
        return Lowered("softmax", [c_struct("k_softmax_t", p, fields)], f"k_softmax(&{p}, {{in0}}, {{out}});")

    def _reshape(self, op: Operator) -> Lowered:
        x = self.need(op, self.t(op, 0), "int8", "input", const=False)
        y = self.need(op, self.t(op, 0, "output"), "int8", "output", const=False)
        if x.size != y.size or (x.scale, x.zero_point) != (y.scale, y.zero_point):
            raise UsageError(f"{self.where(op)}: input and output differ in size or quantisation")
        return Lowered("reshape", [], "/* reshape: the output shares the input's bytes */")


# ---- C text -------------------------------------------------------------------------------------

def as_ints(data: bytes | None, fmt: str) -> list[int]:
    import numpy as np

    return np.frombuffer(data or b"", dtype=np.int8 if fmt == "b" else "<i4").tolist()


def c_array(ctype: str, name: str, values: list[int]) -> str:
    per_line = 20 if ctype == "int8_t" else 8
    rows = [", ".join(str(v) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(values)}] = {{\n    {body}\n}};"


def c_struct(ctype: str, name: str, fields: dict[str, object]) -> str:
    body = ",\n    ".join(f".{k} = {v}" for k, v in fields.items())
    return f"static const {ctype} {name} = {{\n    {body}\n}};"


def c_float(v: float) -> str:
    return f"{v:.9e}f"  # 9 significant digits: the exact float32 back


# ---- the whole model ----------------------------------------------------------------------------

def _check_graph(g: Graph) -> tuple[Tensor, Tensor]:
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UsageError(f"{g.path.name}: {len(g.inputs)} inputs and {len(g.outputs)} outputs; the firmware "
                         "takes models with one of each")
    x, y = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    for what, t in (("input", x), ("output", y)):
        if t.dtype != "int8":
            raise UsageError(f"{g.path.name}: the {what} tensor {t.label} is {t.dtype}; the firmware compiler "
                             "takes full-integer models (int8 input, output and activations)")
    for t in g.tensors:
        if t.data is None and (any(d != 0 for d in t.dynamic_dims) or (t.dynamic_dims and t.shape[:1] != (1,))):
            raise UsageError(f"{g.path.name}: tensor {t.label} has a dynamic shape {t.signature}; only a "
                             "dynamic batch of 1 is supported")
    return x, y


def _buffers(g: Graph, lowered: list[Lowered]) -> tuple[dict[int, str], list[planner.Buffer]]:
    """Arena buffers (a reshape's output joins its input's) with their lifetimes, scratch included."""
    owner: dict[int, str] = {g.inputs[0]: f"t{g.inputs[0]}"}
    first: dict[str, int] = {owner[g.inputs[0]]: 0}
    last: dict[str, int] = {}
    size: dict[str, int] = {owner[g.inputs[0]]: g.tensors[g.inputs[0]].size}
    for op in g.operators:
        for i in op.inputs:
            if i < 0 or g.tensors[i].data is not None:
                continue
            if i not in owner:
                raise UsageError(f"{g.path.name}: operator {op.index} reads tensor {g.tensors[i].label} "
                                 "before any operator writes it")
            last[owner[i]] = op.index
        out = op.outputs[0]
        key = owner[op.inputs[0]] if op.opcode == "RESHAPE" else f"t{out}"
        owner[out] = key
        first.setdefault(key, op.index)
        size[key] = max(size.get(key, 0), g.tensors[out].size)
        last[key] = max(last.get(key, op.index), op.index)
    if g.outputs[0] not in owner:
        raise UsageError(f"{g.path.name}: no operator writes the output tensor")
    last[owner[g.outputs[0]]] = len(g.operators)
    bufs = [planner.Buffer(k, size[k], first[k], last.get(k, first[k])) for k in size]
    bufs += [planner.Buffer(f"scratch{i}", low.scratch, i, i) for i, low in enumerate(lowered) if low.scratch]
    return owner, bufs


def render(g: Graph, name: str, digest: str) -> tuple[str, CompiledModel]:
    x, y = _check_graph(g)
    lowering = _Lowering(g)
    for op in g.operators:
        if len(op.outputs) != 1:
            raise UsageError(f"{lowering.where(op)}: {len(op.outputs)} outputs; one is supported")
    lowered = [lowering.lower(op) for op in g.operators]
    owner, bufs = _buffers(g, lowered)
    offsets, arena = planner.plan(bufs)
    lines = [f"/* Generated by tinyharness.firmware.compiler from a model with sha256 {digest}. Do not edit. */",
             "#include <stddef.h>", "#include <stdint.h>", "", '#include "kernels.h"', '#include "model.h"', "",
             f"static int8_t arena[{max(arena, planner.ALIGN)}] __attribute__((aligned({planner.ALIGN})));", ""]
    calls = []
    for op, low in zip(g.operators, lowered):
        lines += [*low.decls, ""] if low.decls else []
        ins = [f"arena + {offsets[owner[i]]}" for i in op.inputs if i >= 0 and g.tensors[i].data is None]
        call = low.call.format(in0=ins[0], in1=ins[1] if len(ins) > 1 else "",
                               out=f"arena + {offsets[owner[op.outputs[0]]]}",
                               scratch=f"arena + {offsets.get(f'scratch{op.index}', 0)}")
        calls += [f"    MODEL_OP_HOOK({op.index});", f"    {call}"]
    names = ", ".join(f'"{low.kernel}"' for low in lowered)
    lines += [f'const char model_name[] = "{name}";', f"const size_t model_input_size = {x.size};",
              f"const size_t model_output_size = {y.size};",
              f"const model_quant_t model_input_quant = {{{c_float(x.scale)}, {x.zero_point}}};",
              f"const model_quant_t model_output_quant = {{{c_float(y.scale)}, {y.zero_point}}};",
              f"const int model_op_count = {len(lowered)};",
              f"const char *const model_op_names[] = {{{names or 'NULL'}}};", "",
              f"int8_t *model_input(void) {{ return arena + {offsets[owner[g.inputs[0]]]}; }}",
              f"const int8_t *model_output(void) {{ return arena + {offsets[owner[g.outputs[0]]]}; }}", "",
              "void model_invoke(void)", "{", *calls, f"    MODEL_OP_HOOK({len(lowered)});", "}", ""]
    info = CompiledModel(sources=(), include_dirs=(KERNELS_DIR, MODEL_DIR), arena_bytes=arena,
                         weight_bytes=sum(low.const_bytes for low in lowered), ops=tuple(l.kernel for l in lowered),
                         input_size=x.size, output_size=y.size, input_quant=(x.scale, x.zero_point),
                         output_quant=(y.scale, y.zero_point))
    return "\n".join(lines), info


def compile_model(tflite: Path, out_dir: Path, name: str) -> CompiledModel:
    """Write ``out_dir/model.c`` for a full-integer ``.tflite``; UsageError (one line) for what the
    kernels cannot run."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name):
        raise UsageError(f"model name {name!r}: use 1 to 32 letters, digits, '_', '.' or '-'")
    tflite, out_dir = Path(tflite), Path(out_dir)
    g = read_graph(tflite)
    text, info = render(g, name, hashlib.sha256(tflite.read_bytes()).hexdigest())
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "model.c"
    source.write_text(text)
    return replace(info, sources=(source,))


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tinyharness.firmware.compiler", description="Compile a "
                                 "full-integer .tflite into model.c for the firmware's int8 kernels.")
    ap.add_argument("model", type=Path, metavar="MODEL.tflite")
    ap.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    ap.add_argument("--name", required=True, help="model id reported by the firmware, e.g. kws01")
    args = ap.parse_args(argv)
    try:
        m = compile_model(args.model, args.out_dir, args.name)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{m.sources[0]}: {len(m.ops)} ops, arena {m.arena_bytes:,} B, constants {m.weight_bytes:,} B, "
          f"input {m.input_size} int8, output {m.output_size} int8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
