"""The model compiler (tinyharness.firmware.compiler): what it writes, what it refuses, its arena plan."""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinyharness.errors import UsageError
from tinyharness.firmware import planner
from tinyharness.firmware.compiler import compile_model

KWS = "models/kws/kws_ref_model.tflite"
VWW = "models/vww/vww_96_int8.tflite"


def c_array(source: str, name: str) -> list[int]:
    """The values of ``static const T name[N] = {...};`` in generated C."""
    m = re.search(rf"\b{name}\[(\d+)\] = \{{(.*?)\}};", source, re.S)
    assert m, name
    values = [int(v) for v in m.group(2).replace("\n", " ").split(",") if v.strip()]
    assert len(values) == int(m.group(1))
    return values


def c_field(source: str, struct: str, field: str) -> int:
    m = re.search(rf"\b{struct} = \{{(.*?)\}};", source, re.S)
    assert m, struct
    return int(re.search(rf"\.{field} = (-?\d+)", m.group(1)).group(1))


def tflite_quant(model: Path) -> list[tuple[str, tuple[float, ...]]]:
    """(tensor name, scales) per tensor, read with the tflite package."""
    import tflite

    g = tflite.Model.GetRootAsModel(model.read_bytes(), 0).Subgraphs(0)
    out = []
    for i in range(g.TensorsLength()):
        q = g.Tensors(i).Quantization()
        scales = tuple(float(s) for s in q.ScaleAsNumpy()) if q and q.ScaleLength() else ()
        out.append((g.Tensors(i).Name().decode(), scales))
    return out


def op_tensors(model: Path, op: int) -> tuple[list[int], list[int]]:
    import tflite

    o = tflite.Model.GetRootAsModel(model.read_bytes(), 0).Subgraphs(0).Operators(op)
    return list(o.InputsAsNumpy()), list(o.OutputsAsNumpy())


def tflite_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier, from its definition: frexp, std::round (halves away from
    zero) of q * 2^31, 2^31 folded into the exponent, shifts below -31 flushed to (0, 0)."""
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    fixed = int(math.floor(q * 2**31 + 0.5))  # q > 0
    if fixed == 2**31:
        fixed, e = fixed // 2, e + 1
    return (0, 0) if e < -31 else (fixed, e)


def test_compiles_the_four_benchmarks_with_their_interface(shared_data, tmp_path):
    expected = {  # from mlperf-tiny.md §3: input/output sizes and quantisation
        "kws01": (KWS, 490, 12, (0.5847029089927673, 83), (0.00390625, -128)),
        "vww01": (VWW, 27648, 2, (0.003921568859368563, -128), (0.00390625, -128)),
        "ic01": ("models/ic/pretrainedResnet_quant.tflite", 3072, 10, (1.0, -128), (0.00390625, -128)),
        "ad01": ("models/ad/ad01_int8.tflite", 640, 640, (0.3910152316093445, 89), (0.36449846625328064, 96)),
    }
    for name, (model, n_in, n_out, q_in, q_out) in expected.items():
        m = compile_model(shared_data / model, tmp_path / name, name)
        assert (m.input_size, m.output_size) == (n_in, n_out)
        assert m.input_quant == pytest.approx(q_in, rel=1e-7) and m.input_quant[1] == q_in[1]
        assert m.output_quant == pytest.approx(q_out, rel=1e-7) and m.output_quant[1] == q_out[1]
        assert m.sources == (tmp_path / name / "model.c",)
        assert all((d / h).is_file() for d, h in zip(m.include_dirs, ("kernels.h", "model.h")))
        text = m.sources[0].read_text()
        assert f'const char model_name[] = "{name}";' in text
        assert f"const int model_op_count = {len(m.ops)};" in text
        assert text.count("MODEL_OP_HOOK(") == len(m.ops) + 1
    kws = compile_model(shared_data / KWS, tmp_path / "again", "kws01")
    assert kws.ops == ("conv2d", "depthwise_conv2d", "conv2d", "depthwise_conv2d", "conv2d", "depthwise_conv2d",
                       "conv2d", "depthwise_conv2d", "conv2d", "avg_pool2d", "reshape", "fully_connected", "softmax")


def test_arena_is_the_peak_of_live_tensors(shared_data, tmp_path):
    # kws01: two 25x5x64 activations (8000 B each) live at every depthwise layer, plus its scratch:
    # folded bias 4*64, int16 weights 2*9*64, zero-point row 64 = 1472 B.
    assert compile_model(shared_data / KWS, tmp_path / "k", "kws01").arena_bytes == 2 * 8000 + 1472
    # vww01: the first pointwise conv reads 48x48x8 (18 432 B) and writes 48x48x16 (36 864 B); its
    # im2col scratch is 4*1*1*8 = 32 B.
    assert compile_model(shared_data / VWW, tmp_path / "v", "vww01").arena_bytes == 18432 + 36864 + 32


def test_output_is_deterministic(shared_data, tmp_path):
    a = compile_model(shared_data / KWS, tmp_path / "a", "kws01")
    b = compile_model(shared_data / KWS, tmp_path / "b", "kws01")
    assert a.sources[0].read_bytes() == b.sources[0].read_bytes()
    assert (a.arena_bytes, a.weight_bytes, a.ops) == (b.arena_bytes, b.weight_bytes, b.ops)
    assert compile_model(shared_data / KWS, tmp_path / "c", "other").sources[0].read_text().replace(
        '"other"', '"kws01"') == a.sources[0].read_text()


def test_requantisation_parameters_follow_tflite(shared_data, tmp_path):
    model = shared_data / KWS
    text = compile_model(model, tmp_path, "kws01").sources[0].read_text()
    quant = tflite_quant(model)
    for op, channels in ((0, (0, 1, 17, 63)), (1, (0, 5, 40, 63)), (2, (2, 33, 62))):
        (x, w, _), (y,) = op_tensors(model, op)
        mult, shift = c_array(text, f"op{op}_mult"), c_array(text, f"op{op}_shift")
        for c in channels:
            real = quant[x][1][0] * quant[w][1][c] / quant[y][1][0]
            assert (mult[c], shift[c]) == tflite_multiplier(real), (op, c)
    (x, w, _), (y,) = op_tensors(model, 11)  # the fully connected layer: one multiplier
    assert (c_field(text, "op11", "mult"), c_field(text, "op11", "shift")) == \
        tflite_multiplier(quant[x][1][0] * quant[w][1][0] / quant[y][1][0])
    # SOFTMAX: PreprocessSoftmaxScaling (beta 1, 5 integer bits) and CalculateInputRadius
    (x,), _ = op_tensors(model, 12)
    mult, shift = tflite_multiplier(min(1.0 * quant[x][1][0] * 2**26, 2**31 - 1.0))
    assert c_field(text, "op12", "input_multiplier") == mult
    assert c_field(text, "op12", "input_left_shift") == shift
    assert c_field(text, "op12", "diff_min") == -math.floor(31 * 2**26 / 2**shift)


def test_flushed_multipliers_are_zero(shared_data, tmp_path):
    """vww01 has filter scales near 1e-9: TFLite flushes those channels' multipliers to zero."""
    model = shared_data / VWW
    text = compile_model(model, tmp_path, "vww01").sources[0].read_text()
    quant = tflite_quant(model)
    (x, w, _), (y,) = op_tensors(model, 14)
    reals = [quant[x][1][0] * s / quant[y][1][0] for s in quant[w][1]]
    mult = c_array(text, "op14_mult")
    flushed = [c for c, r in enumerate(reals) if tflite_multiplier(r) == (0, 0)]
    assert flushed and all(mult[c] == 0 for c in flushed)
    assert all(mult[c] == tflite_multiplier(r)[0] for c, r in enumerate(reals))


def edited_kws(shared: Path, path: Path, edit) -> Path:
    """A copy of the kws01 model changed through the TFLite schema's object API."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel((shared / KWS).read_bytes(), 0))
    edit(m, schema)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


def refusal(model: Path, tmp_path: Path) -> str:
    with pytest.raises(UsageError) as info:
        compile_model(model, tmp_path / "out", "x")
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def test_refuses_an_unsupported_operator(shared_data, tmp_path):
    def to_tanh(m, schema):
        softmax = schema.BuiltinOperator.SOFTMAX
        code = next(c for c in m.operatorCodes if max(c.builtinCode, c.deprecatedBuiltinCode) == softmax)
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH

    message = refusal(edited_kws(shared_data, tmp_path / "tanh.tflite", to_tanh), tmp_path)
    assert "operator 12 is TANH" in message
    assert "supported: CONV_2D, DEPTHWISE_CONV_2D" in message and "SOFTMAX" in message
    assert not (tmp_path / "out" / "model.c").exists()


def test_refuses_a_float_model(shared_data, tmp_path):
    message = refusal(shared_data / "models" / "kws" / "kws_ref_model_float32.tflite", tmp_path)
    assert "float32" in message and "int8" in message


def test_refuses_two_subgraphs_and_dynamic_shapes(shared_data, tmp_path):
    def second_subgraph(m, schema):
        m.subgraphs.append(m.subgraphs[0])

    def dynamic_width(m, schema):
        t = m.subgraphs[0].tensors[m.subgraphs[0].operators[0].outputs[0]]
        t.shapeSignature = [-1, 25, -1, 64]

    assert "2 subgraphs" in refusal(edited_kws(shared_data, tmp_path / "two.tflite", second_subgraph), tmp_path)
    assert "dynamic shape" in refusal(edited_kws(shared_data, tmp_path / "dyn.tflite", dynamic_width), tmp_path)


def test_refuses_bad_names_and_files(shared_data, tmp_path):
    assert "model name" in refusal_name(shared_data, tmp_path, 'kws"01')
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 64)
    assert "TFL3" in refusal(junk, tmp_path)
    assert "not found" in refusal(tmp_path / "missing.tflite", tmp_path)


def refusal_name(shared: Path, tmp_path: Path, name: str) -> str:
    with pytest.raises(UsageError) as info:
        compile_model(shared / KWS, tmp_path / "n", name)
    return str(info.value)


def test_command_line(shared_data, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "tinyharness.firmware.compiler", str(shared_data / KWS),
                         str(tmp_path / "cli"), "--name", "kws01"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "13 ops" in ok.stdout and (tmp_path / "cli" / "model.c").is_file()
    bad = subprocess.run([sys.executable, "-m", "tinyharness.firmware.compiler",
                          str(shared_data / "models" / "kws" / "kws_ref_model_float32.tflite"), str(tmp_path / "bad"),
                          "--name", "kws01"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


# ---- the planner ----------------------------------------------------------------------------------

def test_planner_places_by_lifetime():
    bufs = [planner.Buffer("a", 100, 0, 1), planner.Buffer("b", 50, 1, 2), planner.Buffer("c", 100, 2, 3)]
    offsets, size = planner.plan(bufs)
    # a and c never live together and share offset 0; b lives with both and goes after them,
    # at the next 16-byte boundary.
    assert offsets == {"a": 0, "b": 112, "c": 0} and size == 176


def test_planner_never_overlaps_live_buffers():
    rng = random.Random(3)
    for _ in range(200):
        bufs = []
        for i in range(rng.randrange(1, 12)):
            first = rng.randrange(0, 10)
            bufs.append(planner.Buffer(f"b{i}", rng.randrange(1, 3000), first, first + rng.randrange(0, 4)))
        offsets, size = planner.plan(bufs)
        assert all(offsets[b.key] % 16 == 0 and offsets[b.key] + b.size <= size for b in bufs)
        for i, p in enumerate(bufs):
            for q in bufs[i + 1:]:
                if p.first <= q.last and q.first <= p.last:
                    assert offsets[p.key] + p.size <= offsets[q.key] or offsets[q.key] + q.size <= offsets[p.key]
        peak = max(sum(b.size for b in bufs if b.first <= t <= b.last) for t in range(14))
        assert size >= peak
