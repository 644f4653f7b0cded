"""``tinyharness plugins new NAME``: the files of a minimal, installable SUT plugin package.

The package is named for the SUT: ``acme-npu`` gives the folder ``acme-npu/``, the distribution
``tinyharness-acme-npu``, the import package ``tinyharness_acme_npu`` (never plain ``acme_npu``,
which may be the vendor's own runtime), the entry point ``acme-npu`` and the SUT ``acme-npu``. Its
SUT wraps ONNX Runtime, so that it runs the embedded digits01 benchmark and passes the conformance
kit as soon as it is installed; every part to replace with another runtime is marked
``YOUR RUNTIME``. ``examples/acme-npu/`` in the repository is this module's output, kept equal to
it by a test. The walk-through: docs/writing-a-sut.md (``tinyharness docs writing-a-sut``).

Only the standard library is imported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import UsageError

NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_NAME = 40  # a --sut name is typed and shown in tables: keep it short


@dataclass(frozen=True)
class Names:
    """Every name the package derives from the SUT's name."""

    sut: str  # acme-npu: the --sut name, the entry point's name and the folder's
    distribution: str  # tinyharness-acme-npu
    package: str  # tinyharness_acme_npu
    cls: str  # AcmeNpuSUT
    config: str  # AcmeNpuConfig
    test_class: str  # TestAcmeNpu

    @classmethod
    def of(cls, name: str) -> "Names":
        check_name(name)
        camel = "".join(part[:1].upper() + part[1:] for part in name.split("-"))
        return cls(sut=name, distribution=f"tinyharness-{name}",
                   package="tinyharness_" + name.replace("-", "_"), cls=f"{camel}SUT",
                   config=f"{camel}Config", test_class=f"Test{camel}")


def check_name(name: str) -> None:
    """A one-line UsageError unless ``name`` can be a SUT, entry-point and folder name: lower case
    letters and digits in words joined by single hyphens, starting with a letter."""
    shown = name if name.isprintable() else repr(name)
    if not name:
        raise UsageError("the plugin name is empty; give the SUT's name, e.g. 'acme-npu'")
    if len(name) > MAX_NAME:
        raise UsageError(f"the plugin name {shown[:MAX_NAME]}... is {len(name)} characters long; "
                         f"at most {MAX_NAME}")
    if NAME.fullmatch(name) is None:
        hint = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
        near = f" (e.g. {hint!r})" if hint and NAME.fullmatch(hint) and len(hint) <= MAX_NAME else ""
        raise UsageError(f"the plugin name {shown!r} is not a valid SUT name: use lower-case letters "
                         f"and digits, words joined by single hyphens, starting with a letter{near}")


def files(name: str) -> dict[str, str]:
    """{relative path: text} of the package for SUT ``name`` (its folder's contents)."""
    names = Names.of(name)
    major, minor = __version__.split(".")[:2]
    values = {"__SUT__": names.sut, "__DISTRIBUTION__": names.distribution,
              "__PACKAGE__": names.package, "__CLASS__": names.cls, "__CONFIG__": names.config,
              "__TEST_CLASS__": names.test_class, "__REQUIRES__": f"tinyharness>={major}.{minor}"}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    return {fill(path): fill(text) for path, text in TEMPLATES.items()}


def write(name: str, output: Path | str = ".", force: bool = False) -> Path:
    """Write the package for SUT ``name`` into ``output/name/`` and return that folder. An
    existing folder is a UsageError unless ``force``, which writes the package's files over it
    (other files in it stay)."""
    content = files(name)
    root = Path(output) / name
    if root.exists() or root.is_symlink():
        if not force:
            raise UsageError(f"{root} already exists; choose another --output, or give --force "
                             "to write the plugin's files over it")
        if not root.is_dir():
            raise UsageError(f"{root} exists and is not a folder")
    try:
        for relative, text in content.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise UsageError(f"cannot write {root}: {exc.strerror or exc}") from None
    return root


# -- the templates ---------------------------------------------------------------------------------
# Placeholders: __SUT__, __DISTRIBUTION__, __PACKAGE__, __CLASS__, __CONFIG__, __TEST_CLASS__,
# __REQUIRES__. Paths are templates too.

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "__DISTRIBUTION__"
version = "0.1.0"
description = "tinyharness SUT plugin: __SUT__"
readme = "README.md"
requires-python = ">=3.10"
# YOUR RUNTIME: replace onnxruntime with your runtime's Python package.
dependencies = ["__REQUIRES__", "onnxruntime>=1.17"]

[project.optional-dependencies]
test = ["pytest>=7"]

# tinyharness finds the plugin here: the SUT's name = the module that holds the hooks.
[project.entry-points.tinyharness]
__SUT__ = "__PACKAGE__.plugin"

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# __DISTRIBUTION__

A tinyharness SUT plugin: the SUT `__SUT__`.

It runs ONNX models with ONNX Runtime on the CPU, as generated by `tinyharness plugins new`:
replace the parts marked `YOUR RUNTIME` in `src/__PACKAGE__/sut.py` (and the dependency in
`pyproject.toml`) with your runtime's. The walk-through: `tinyharness docs writing-a-sut`.

## Install and run

```bash
pip install -e .
tinyharness suts  # lists __SUT__ and its options
tinyharness run --sut __SUT__  # the embedded digits01 benchmark
tinyharness run --sut __SUT__ --sut-option optimization=basic
```

## Options (`--sut-option KEY=VALUE`)

- `threads`: intra-op threads (default: 1 for single-stream, all cores for offline)
- `optimization`: graph optimization, `all` (default), `basic` or `none`

## Test

```bash
pip install -e '.[test]'
pytest  # the tinyharness conformance kit, one test per rule
tinyharness plugins check __SUT__  # the same checks from the command line
```

## Layout

- `src/__PACKAGE__/plugin.py`: the hook that registers the SUT (light: no numpy, no runtime)
- `src/__PACKAGE__/sut.py`: the SUT and its typed options
- `tests/test_conformance.py`: the conformance kit, run against the SUT
'''

GITIGNORE = '''\
__pycache__/
*.egg-info/
.pytest_cache/
build/
dist/
results/
'''

INIT = '''\
"""tinyharness SUT plugin: __SUT__ (the entry point is plugin.py, the SUT is in sut.py)."""
'''

PLUGIN = '''\
"""The hooks tinyharness calls: pyproject.toml's entry point names this module.

Keep it light: tinyharness imports it for every command, --help included. Import the SUT (numpy,
the runtime's bindings) inside the hook, never here.
"""

from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from .sut import __CLASS__

    register(__CLASS__)
'''

SUT = '''\
"""The __SUT__ SUT: the model on ONNX Runtime's CPU execution provider.

Generated by 'tinyharness plugins new'. To benchmark your own runtime, replace each part marked
YOUR RUNTIME with its calls and keep the contract of tinyharness.sut.SUT:

- load(model): untimed. Compile the model, allocate and bind the buffers once, warm up.
- prepare(sample): untimed. Copy one model-ready input into the bound input buffer.
- infer(): timed. Run the model on that buffer and nothing else: no allocation, no copy, no log.
- output(): untimed. A copy of the raw output of the last infer().
- issue_offline(samples, completions): the offline scenario; the base class runs the samples one
  after another (override it to batch, or to run in parallel).
- describe(): after load, what ran (runtime, version, device, precision) for the logs.
- close(): release everything; called once, also after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyharness.errors import UsageError, first_line
from tinyharness.sut import SUT, SUTDescription, TensorSpec
from tinyharness.sut_config import HostConfig, choice, option

WARMUP = 10  # untimed runs at load: a runtime's first inferences are slower
# YOUR RUNTIME: its tensor types as numpy dtype names.
DTYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}
# The option 'optimization' as ONNX Runtime's graph optimization levels.
LEVELS = {"all": "ORT_ENABLE_ALL", "basic": "ORT_ENABLE_BASIC", "none": "ORT_DISABLE_ALL"}


@dataclass(frozen=True)
class __CONFIG__(HostConfig):
    """The SUT's --sut-option keys: 'threads' (from HostConfig) and one field each below."""

    optimization: str = option("graph optimization: all (default), basic or none",
                               choice(*LEVELS), "all")


class __CLASS__(SUT):
    name = "__SUT__"  # the --sut name
    summary = "ONNX Runtime on the CPU (a tinyharness plugin scaffold)"
    runtime = "onnxruntime"  # YOUR RUNTIME: the distribution whose version 'tinyharness suts' shows
    model_formats = ("onnx",)  # YOUR RUNTIME: the model file suffixes it loads
    config_class = __CONFIG__

    session = binding = None

    def load(self, model: Path) -> None:
        self.model_format = self.check_format(model)
        try:
            import onnxruntime as ort  # YOUR RUNTIME: imported here, never at module level
        except ImportError:
            raise UsageError(f"SUT {self.name!r} needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                   LEVELS[self.config.optimization])
        try:
            self.session = ort.InferenceSession(str(model), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # a corrupt or unsupported model is the user's input: exit 2
            raise UsageError(f"cannot load {model}: onnxruntime: {first_line(exc)}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UsageError(f"{Path(model).name}: SUT {self.name!r} runs models with one input "
                             f"and one output, not {len(inputs)} and {len(outputs)}")
        self.input_tensor, self.output_tensor = self._spec(inputs[0]), self._spec(outputs[0])
        self.version = ort.__version__
        # The buffers infer() reads and writes: allocated and bound once, here.
        self.input_buffer = np.zeros(self.input_tensor.shape, self.input_tensor.dtype)
        self.output_buffer = np.zeros(self.output_tensor.shape, self.output_tensor.dtype)
        self.values = [ort.OrtValue.ortvalue_from_numpy(buffer)  # views of the numpy buffers
                       for buffer in (self.input_buffer, self.output_buffer)]
        self.binding = self.session.io_binding()
        self.binding.bind_ortvalue_input(inputs[0].name, self.values[0])
        self.binding.bind_ortvalue_output(outputs[0].name, self.values[1])
        for _ in range(WARMUP):
            self.infer()

    def _spec(self, tensor) -> TensorSpec:
        dtype = DTYPES.get(tensor.type)
        if dtype is None:
            raise UsageError(f"tensor {tensor.name!r} is {tensor.type}; SUT {self.name!r} runs "
                             f"{', '.join(DTYPES.values())} tensors")
        # A batch dimension left open (None or a name) is run as 1. An int8 model's input needs
        # its scale and zero point here (TensorSpec) when the benchmark quantizes with them.
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in tensor.shape)
        return TensorSpec(tensor.name, shape, dtype)

    def input_spec(self) -> TensorSpec:
        return self.input_tensor

    def output_spec(self) -> TensorSpec:
        return self.output_tensor

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self.input_buffer, sample)  # untimed: into the bound buffer

    def infer(self) -> None:
        self.session.run_with_iobinding(self.binding)  # YOUR RUNTIME: run, and nothing else

    def output(self) -> np.ndarray:
        return self.output_buffer.copy()  # a copy: the next infer() overwrites the buffer

    def describe(self) -> SUTDescription:
        return SUTDescription(name=self.name, runtime=self.runtime, runtime_version=self.version,
                              device="CPU", model_format=self.model_format,
                              precision=self.input_tensor.dtype, threads=self.threads(),
                              extra={"optimization": self.config.optimization})

    def close(self) -> None:
        self.binding = self.session = None
        self.values = []
'''

TEST = '''\
"""The tinyharness conformance kit run against __SUT__: one test per rule of the SUT contract.

'pytest' runs it once the package is installed ('pip install -e .'); 'tinyharness plugins check
__SUT__' runs the same checks from the command line.
"""

from tinyharness.testing import SUTConformance


class __TEST_CLASS__(SUTConformance):
    sut = "__SUT__"
    benchmark = "digits01"  # embedded in tinyharness: nothing to download
    options = {}  # --sut-option values to check with, e.g. {"optimization": "basic"}
    reference = "onnxruntime-cpu"  # a SUT whose outputs on the same model this one's must equal
'''

TEMPLATES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".gitignore": GITIGNORE,
    "src/__PACKAGE__/__init__.py": INIT,
    "src/__PACKAGE__/plugin.py": PLUGIN,
    "src/__PACKAGE__/sut.py": SUT,
    "tests/test_conformance.py": TEST,
}
