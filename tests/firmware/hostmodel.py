"""Test helper: a model compiled by tinyharness.firmware.compiler, built and run outside the firmware.

- :func:`host_build` / :func:`run_host`: the kernels and model.c with the host C compiler and
  ``src/host/host_main.c`` (int8 inputs on stdin, outputs on stdout). Builds are cached per test
  session (one temporary directory per process).
- :func:`m4_image` / :func:`run_m4`: the same code for a Cortex-M4 (``arm-none-eabi-gcc``) with the
  inputs compiled in, run on QEMU's ``mps2-an386`` under ``-icount shift=0`` (one virtual ns per
  instruction); it prints each output and the instructions of the fastest inference, measured with
  CMSDK timer0 (25 MHz: one tick is 40 instructions). Its startup code and linker script are
  test-only stand-ins, not the firmware's board support.
- :func:`tflm_outputs`: the oracle, tflite-micro's interpreter.
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyharness.firmware.compiler import SRC, CompiledModel, compile_model, kernel_sources

HOST_MAIN = SRC / "host" / "host_main.c"
M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2", "-ffunction-sections", "-fdata-sections",
            "--specs=nano.specs")
TICK_INSTRUCTIONS = 40  # 25 MHz timer ticks at 1 ns per instruction
_CACHE: dict[tuple, tuple[Path, CompiledModel]] = {}
_ROOT: list[Path] = []


def host_cc() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def _workdir(prefix: str) -> Path:
    if not _ROOT:
        root = Path(tempfile.mkdtemp(prefix="tinyharness-fw-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _ROOT.append(root)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_ROOT[0]))


def _run(cmd: list[str], what: str, timeout: float = 600) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise AssertionError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def host_build(model: Path, name: str, defines: tuple[str, ...] = (),
               cflags: tuple[str, ...] = ()) -> tuple[Path, CompiledModel]:
    """(executable, compiled model) for the host; cached per (model, defines, cflags)."""
    key = ("host", str(Path(model).resolve()), name, defines, cflags)
    if key not in _CACHE:
        work = _workdir(f"{name}-host-")
        compiled = compile_model(model, work, name)
        exe = work / "host_model"
        _run([host_cc() or "cc", "-std=c99", "-O2", *cflags, *(f"-D{d}" for d in defines),
              *(f"-I{d}" for d in compiled.include_dirs), *map(str, kernel_sources()),
              *map(str, compiled.sources), str(HOST_MAIN), "-o", str(exe)], f"host build of {name}")
        _CACHE[key] = exe, compiled
    return _CACHE[key]


def run_host(exe: Path, inputs: np.ndarray) -> np.ndarray:
    """One output row per input row (int8)."""
    x = np.ascontiguousarray(inputs, dtype=np.int8)
    proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return np.frombuffer(proc.stdout, np.int8).reshape(len(x), -1)


def tflm_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    """tflite-micro's output bytes, one row per input row."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model))
    shape = interp.get_input_details(0)["shape"]
    rows = []
    for x in np.asarray(inputs, np.int8):
        interp.set_input(x.reshape(shape), 0)
        interp.invoke()
        rows.append(np.asarray(interp.get_output(0)).reshape(-1).copy())
    return np.stack(rows)


# ---- Cortex-M4 on QEMU --------------------------------------------------------------------------

_LINKER = """MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
ENTRY(reset_handler)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_MAIN = r"""#include <stdint.h>
#include <string.h>
#include "model.h"
#include "inputs.h"
#define UART0 ((volatile uint32_t *)0x40004000)
#define TIMER0 ((volatile uint32_t *)0x40000000)
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;
static void put(char c) { while (UART0[1] & 1u) {} UART0[0] = (uint8_t)c; }
static void hex(uint8_t v) { put("0123456789abcdef"[v >> 4]); put("0123456789abcdef"[v & 15]); }
static void dec(uint32_t v) {
  char b[11]; int i = 10; b[i] = 0;
  do b[--i] = (char)('0' + v % 10); while (v /= 10);
  while (b[i]) put(b[i++]);
}
static void run(void) {
  UART0[4] = 16; UART0[2] = 1;
  TIMER0[2] = 0xffffffffu; TIMER0[1] = 0xffffffffu; TIMER0[0] = 1;
  uint32_t best = 0xffffffffu;
  for (int n = 0; n < N_INPUTS; ++n) {
    memcpy(model_input(), inputs[n], model_input_size);
    const uint32_t t0 = TIMER0[1]; model_invoke(); const uint32_t t1 = TIMER0[1];
    if (t0 - t1 < best) best = t0 - t1;
    put('o'); put(' ');
    for (size_t i = 0; i < model_output_size; ++i) hex((uint8_t)model_output()[i]);
    put('\n');
  }
  put('t'); put(' '); dec(best); put('\n');
  register uint32_t r0 __asm__("r0") = 0x18, r1 __asm__("r1") = 0x20026; /* semihosting exit */
  __asm__ volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}
void reset_handler(void) {
  memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
  memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
  run();
  for (;;) {}
}
static void fault(void) { for (;;) {} }
__attribute__((section(".vectors"), used)) static const void *const vectors[8] = {
  &_stack_top, (void *)reset_handler, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault, 0};
"""


def m4_tools() -> str | None:
    """Why the Cortex-M4 checks cannot run here, or None."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not installed (apt-get install gcc-arm-none-eabi " \
           "libnewlib-arm-none-eabi qemu-system-arm)" if missing else None


def m4_image(model: Path, name: str, inputs: np.ndarray, defines: tuple[str, ...] = ()) -> Path:
    """An mps2-an386 ELF that runs the model on each input row (compiled in) and prints the outputs."""
    work = _workdir(f"{name}-m4-")
    compiled = compile_model(model, work, name)
    x = np.asarray(inputs, np.int8).reshape(len(inputs), -1)
    rows = ",\n".join("{" + ",".join(map(str, r.tolist())) + "}" for r in x)
    (work / "inputs.h").write_text(f"#define N_INPUTS {len(x)}\nstatic const int8_t inputs[{len(x)}][{x.shape[1]}] = "
                                   f"{{\n{rows}}};\n")
    (work / "main.c").write_text(_MAIN)
    (work / "link.ld").write_text(_LINKER)
    elf = work / "image.elf"
    _run(["arm-none-eabi-gcc", *M4_FLAGS, "-std=c99", "-nostartfiles", "-Wl,--gc-sections", "-T", str(work / "link.ld"),
          *(f"-D{d}" for d in defines), *(f"-I{d}" for d in (*compiled.include_dirs, work)),
          str(work / "main.c"), *map(str, kernel_sources()), *map(str, compiled.sources), "-o", str(elf)],
         f"Cortex-M4 build of {name}")
    return elf


def run_m4(elf: Path, n_inputs: int, timeout: float = 600) -> tuple[np.ndarray, int]:
    """(output rows, instructions of the fastest inference) from QEMU mps2-an386 at icount shift 0."""
    proc = subprocess.run(["qemu-system-arm", "-machine", "mps2-an386", "-icount", "shift=0", "-nographic",
                           "-monitor", "none", "-serial", "stdio", "-semihosting-config", "enable=on,target=native",
                           "-kernel", str(elf)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [bytes.fromhex(m) for m in re.findall(r"^o ([0-9a-f]*)$", proc.stdout, re.M)]
    ticks = re.search(r"^t (\d+)$", proc.stdout, re.M)
    assert len(rows) == n_inputs and ticks, proc.stdout[-2000:]
    return np.stack([np.frombuffer(r, np.int8) for r in rows]), int(ticks.group(1)) * TICK_INSTRUCTIONS


# ---- tiny full-integer models, built with the TFLite schema's object API ------------------------

class TinyModel:
    """A one-subgraph int8 ``.tflite`` assembled tensor by tensor (for ops and options no
    MLPerf Tiny model uses: max pool, dilation, depth multiplier, RELU6, SAME pooling, ...)."""

    def __init__(self) -> None:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        self.s = schema
        self.tensors: list = []
        self.buffers: list = [schema.BufferT()]  # buffer 0: the empty sentinel
        self.ops: list = []
        self.codes: list[int] = []

    def tensor(self, shape: tuple[int, ...], scale: float | list[float] = 1.0, zero_point: int = 0,
               data: np.ndarray | None = None, dtype: str = "int8", quant_dim: int = 0) -> int:
        s = self.s
        t = s.TensorT()
        t.shape, t.name = list(shape), f"t{len(self.tensors)}".encode()
        t.type = {"int8": s.TensorType.INT8, "int32": s.TensorType.INT32, "float32": s.TensorType.FLOAT32}[dtype]
        scales = scale if isinstance(scale, list) else [scale]
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = scales, [zero_point] * len(scales), quant_dim
        t.quantization = q
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            np_type = {"int8": np.int8, "int32": "<i4", "float32": "<f4"}[dtype]
            b.data = list(np.ascontiguousarray(data, np_type).tobytes())
            t.buffer = len(self.buffers)
            self.buffers.append(b)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name: str, inputs: list[int], outputs: list[int], options: str | None = None, **fields) -> None:
        s = self.s
        code = getattr(s.BuiltinOperator, name)
        if code not in self.codes:
            self.codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.codes.index(code), inputs, outputs
        if options:
            opts = getattr(s, options + "T")()
            for k, v in fields.items():
                setattr(opts, k, v)
            o.builtinOptionsType, o.builtinOptions = getattr(s.BuiltinOptions, options), opts
        self.ops.append(o)

    def write(self, path: Path, inputs: list[int], outputs: list[int]) -> Path:
        import flatbuffers

        s = self.s
        g = s.SubGraphT()
        g.tensors, g.operators, g.inputs, g.outputs = self.tensors, self.ops, inputs, outputs
        m = s.ModelT()
        m.version, m.subgraphs, m.buffers = 3, [g], self.buffers
        m.operatorCodes = []
        for code in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            m.operatorCodes.append(c)
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        path.write_bytes(bytes(b.Output()))
        return path
