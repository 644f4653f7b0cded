"""The emulated firmware's model: a full-integer ``.tflite`` on TFLite Micro or LiteRT.

A model file is untrusted input: it is read with a size bound, must carry the TFLite flatbuffer
identifier, must pass LiteRT's flatbuffer verifier (when LiteRT is installed) and TFLite Micro's
own Python parse with every tensor, buffer and operator index in range, all before a C++
interpreter sees it (a corrupted flatbuffer can crash one). Whatever fails is a one-line
:class:`UsageError` naming the file, never a ``struct.error`` traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import sys
from pathlib import Path

import numpy as np
from tinyharness.errors import UsageError, first_line
from tinyharness.fileio import read_bounded

RUNTIMES = ("tflite-micro", "litert")
MAX_MODEL_BYTES = 16 << 20  # a microcontroller's flash holds far less; the largest reference is 1.9 MB
IDENTIFIER = b"TFL3"  # the TFLite schema's flatbuffer file identifier, at bytes 4..8


def invalid(path: Path, why: str) -> UsageError:
    return UsageError(f"model {path}: not a valid TFLite model ({why})")


def read_model(path: Path | str) -> bytes:
    """The bytes of a ``.tflite`` file that looks like one (size bound, identifier)."""
    path = Path(path)
    data = read_bounded(path, MAX_MODEL_BYTES, "model")
    if len(data) < 16 or data[4:8] != IDENTIFIER:
        raise invalid(path, f"{len(data):,} bytes without the TFL3 flatbuffer identifier")
    return data


def verify_model(path: Path, data: bytes) -> None:
    """The structural checks a C++ interpreter does not do before it reads the flatbuffer."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = None
    if Interpreter is not None:
        try:
            Interpreter(model_content=data)
        except ValueError as exc:  # other failures (an op LiteRT lacks) are TFLite Micro's to judge
            if "flatbuffer" in str(exc).lower():
                raise invalid(path, "the flatbuffer verifier refused it") from None
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError:
        return
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        problem = _index_problem(model)
    except struct.error:  # an offset outside the file
        raise invalid(path, f"corrupt flatbuffer: it points outside its {len(data):,} bytes") from None
    except Exception as exc:  # IndexError, UnicodeDecodeError, ...
        raise invalid(path, f"corrupt flatbuffer: {type(exc).__name__}: {first_line(exc)[:80]}") from None
    if problem:
        raise invalid(path, problem)


def _index_problem(model) -> str | None:
    """The first tensor, buffer or operator index out of range, or None."""
    subgraphs, buffers, codes = model.subgraphs or [], model.buffers or [], model.operatorCodes or []
    if not subgraphs:
        return "no subgraph"
    for g, graph in enumerate(subgraphs):
        tensors = graph.tensors or []
        for t in tensors:
            if not 0 <= t.buffer < max(len(buffers), 1):
                return f"subgraph {g}: a tensor's buffer {t.buffer} is out of range"
        refs = [*(graph.inputs if graph.inputs is not None else []),
                *(graph.outputs if graph.outputs is not None else [])]
        for op in graph.operators or []:
            if not 0 <= op.opcodeIndex < len(codes):
                return f"subgraph {g}: operator code {op.opcodeIndex} is out of range"
            refs += [i for i in [*(op.inputs if op.inputs is not None else []),
                                 *(op.outputs if op.outputs is not None else [])] if i != -1]
        if any(not 0 <= int(i) < len(tensors) for i in refs):
            return f"subgraph {g}: a tensor index is out of range"
    if not len(subgraphs[0].inputs if subgraphs[0].inputs is not None else []) or \
            not len(subgraphs[0].outputs if subgraphs[0].outputs is not None else []):
        return "the main subgraph has no input or no output"
    return None


def _first_quant(params: dict) -> tuple[float, int]:
    """(scale, zero point) of a tensor's first channel; (0.0, 0) when it has none (a float
    tensor, refused right after by the int8 check)."""
    scales, zero_points = params.get("scales", ()), params.get("zero_points", ())
    return (float(scales[0]) if len(scales) else 0.0, int(zero_points[0]) if len(zero_points) else 0)


@contextlib.contextmanager
def _quiet_stdout():
    """tflite-micro's constructor may print to the C stdout (fd 1): point fd 1 at /dev/null and
    flush the C buffers before restoring it, so nothing leaks later into a CLI's stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


class Backend:
    """One full-integer model as ``th_load_tensor``/``th_infer``/``th_results`` drive it: the
    input shape, (scale, zero point) of input and output, ``set_input``, ``invoke``, ``output``."""

    def __init__(self, model: Path | str, runtime: str = "tflite-micro") -> None:
        model = Path(model)
        if runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
        if not model.exists():
            raise UsageError(f"model file not found: {model}")
        self.runtime = runtime
        data = read_model(model)
        try:
            verify_model(model, data)
            ins, outs = self._tflm(data) if runtime == "tflite-micro" else self._litert(data)
        except ImportError as exc:
            raise UsageError(f"{runtime} is not installed: pip install "
                             f"{'tflite-micro' if runtime == 'tflite-micro' else 'ai-edge-litert'}") from exc
        except UsageError:
            raise
        except Exception as exc:  # the interpreter refused it (RuntimeError, ValueError, ...)
            raise invalid(model, f"{runtime}: {first_line(exc)[:160]}") from None
        if np.dtype(ins["dtype"]) != np.int8 or np.dtype(outs["dtype"]) != np.int8:
            raise UsageError(f"{model.name}: the reference firmware runs full-integer models (int8 "
                             f"input and output), not {np.dtype(ins['dtype'])} -> {np.dtype(outs['dtype'])}")
        self.shape = (1, *(int(d) for d in ins["shape"][1:]))
        self.output_size = int(np.prod(outs["shape"][1:]))

    def _tflm(self, data: bytes) -> tuple[dict, dict]:
        from tflite_micro import runtime

        with _quiet_stdout():
            interp = runtime.Interpreter.from_bytes(data)
        ins, outs = interp.get_input_details(0), interp.get_output_details(0)
        self.input_quant, self.output_quant = (_first_quant(d["quantization_parameters"])
                                               for d in (ins, outs))
        self.set_input = lambda q: interp.set_input(np.asarray(q, np.int8).reshape(self.shape), 0)
        self.invoke = interp.invoke
        self.output = lambda: np.asarray(interp.get_output(0)).reshape(-1)
        return ins, outs

    def _litert(self, data: bytes) -> tuple[dict, dict]:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # Built-in kernels: XNNPACK's int8 results differ from what runs on the device.
        interp = Interpreter(model_content=data, num_threads=1,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        ins, outs = interp.get_input_details()[0], interp.get_output_details()[0]
        if ins["shape"][0] != 1:  # the MLPerf Tiny files have a dynamic batch
            interp.resize_tensor_input(ins["index"], [1, *ins["shape"][1:]])
        interp.allocate_tensors()
        self.input_quant, self.output_quant = (
            (float(d["quantization"][0]), int(d["quantization"][1])) for d in (ins, outs))
        self.set_input = lambda q: interp.set_tensor(ins["index"], np.asarray(q, np.int8).reshape(self.shape))
        self.invoke = interp.invoke
        self.output = lambda: interp.get_tensor(outs["index"]).reshape(-1)
        return ins, outs
