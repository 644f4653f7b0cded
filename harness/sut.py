"""The system-under-test (SUT) contract that every backend plugin implements.

A SUT wraps one runtime (or one device) running one model. The load generator drives it in three
steps per query, so that untimed work stays outside the measured latency:

1. ``prepare(sample)``: untimed. Copy one model-ready input (already in the model's dtype and shape,
   see :class:`TensorSpec`) into the SUT's own input buffer.
2. ``infer()``: timed. Run the model on the prepared input. Nothing else: no allocation, no copy
   into Python objects, no logging.
3. ``output()``: untimed, accuracy mode only. A copy of the raw output of the last ``infer()``.

Offline runs call :meth:`SUT.issue_offline` once with every sample of the query; a SUT may batch or
run requests in parallel there, and stamps each sample's completion time itself.
"""

from __future__ import annotations

import abc
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from .errors import UsageError
from .settings import Choice, Scenario
from .sut_config import HostConfig, SUTConfig

if TYPE_CHECKING:
    from .benchmark import Benchmark


class Timing(Choice):
    """Whose clock measures an inference."""

    HOST = "host"  # the harness times infer() with time.perf_counter_ns
    DEVICE = "device"  # the SUT reports its own elapsed time (a microcontroller's m-lap-us)


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and quantization of one model input or output (batch dimension fixed to 1)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "int8", "uint8", "float32", ...
    scale: float = 0.0  # 0.0 means not quantized
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


@dataclass(frozen=True)
class SUTDescription:
    """What a SUT reports about itself for the logs: enough to reproduce the result."""

    name: str
    runtime: str
    runtime_version: str
    device: str
    model_format: str
    precision: str  # the model's numeric precision as run: its input dtype (int8, float32, ...)
    threads: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    # what the runtime computes in where it chooses (OpenVINO: f32 or bf16); None = as the model
    inference_precision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "runtime": self.runtime, "runtime_version": self.runtime_version,
                "device": self.device, "model_format": self.model_format,
                "precision": self.precision,
                "inference_precision": self.inference_precision or self.precision,
                "threads": self.threads, "extra": dict(self.extra)}


class SUTError(Exception):
    """A SUT failed to load or to run (not a user mistake): the run is marked failed."""


class SUT(abc.ABC):
    """Base class for SUT plugins. Subclasses set the class attributes and implement the methods.

    Class attributes describe capabilities without importing the runtime, so that
    ``tinyharness suts`` and ``--help`` stay fast:

    - ``name``: the ``--sut`` name, e.g. ``"openvino-cpu"``.
    - ``summary``: one line for listings.
    - ``runtime``: the runtime's import/distribution name, used for the version and the error hint.
    - ``distributions``: where the runtime comes in several pip packages, their names, tried in
      order for the version (default: ``runtime``).
    - ``extra``: the pip extra that installs the runtime (``pip install 'tinyharness[extra]'``).
    - ``model_formats``: file suffixes without the dot it can load, e.g. ``("onnx", "tflite")``.
    - ``devices``, ``scenarios``: what it can run.
    - ``config_class``: a :class:`~tinyharness.sut_config.SUTConfig` dataclass whose fields are the
      accepted ``--sut-option`` keys; parsed and validated once, before the run directory exists.
    - ``timing``: :attr:`Timing.HOST` (the harness times :meth:`infer` with its own clock) or
      :attr:`Timing.DEVICE` (the SUT times itself, e.g. a microcontroller's ``m-lap-us`` stamps;
      the harness then calls :meth:`run_window` and never uses the host clock for latency).
    - ``needs_model``: False when the model lives on the device (no model file is resolved).
    - ``reports_runtime_latency``: True when :meth:`runtime_latency_ns` has the runtime's own
      measure of each inference (recorded beside the harness's latency, never instead of it).
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    runtime: ClassVar[str] = ""
    distributions: ClassVar[tuple[str, ...]] = ()  # pip names of the runtime, tried in order
    extra: ClassVar[str] = ""
    model_formats: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    scenarios: ClassVar[tuple[Scenario, ...]] = tuple(Scenario)
    config_class: ClassVar[type[SUTConfig]] = HostConfig
    timing: ClassVar[Timing] = Timing.HOST
    needs_model: ClassVar[bool] = True
    reports_runtime_latency: ClassVar[bool] = False

    def __init__(self, scenario: Scenario | str, config: SUTConfig | Mapping[str, str] | None = None,
                 *, benchmark: "Benchmark | None" = None) -> None:
        self.scenario = Scenario.parse(scenario)
        # The benchmark the run is for: its tensors, labels and metric (a device checks its model).
        self.benchmark = benchmark
        if not isinstance(config, SUTConfig):
            config = self.parse_options(config or {})
        self.config = config

    # -- capabilities (no runtime import) ---------------------------------------------------
    @classmethod
    def runtime_version(cls) -> str | None:
        """Installed version of the runtime (the first of ``distributions`` installed, else the
        distribution named ``runtime``), or None when it is not installed."""
        from importlib import metadata

        for dist in cls.distributions or (cls.runtime,):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    @classmethod
    def parse_options(cls, raw: Mapping[str, str]) -> SUTConfig:
        """``--sut-option`` strings as this SUT's typed config, or a one-line UsageError."""
        return cls.config_class.parse(raw, cls.name)

    @classmethod
    def options(cls) -> dict[str, str]:
        """The accepted ``--sut-option`` keys and their help, for listings."""
        return cls.config_class.help()

    def threads(self) -> int:
        """The intra-op thread count: the option, else 1 for single-stream, all cores offline."""
        import os

        chosen = getattr(self.config, "threads", None)
        if chosen:
            return chosen
        return 1 if self.scenario is Scenario.SINGLE_STREAM else (os.cpu_count() or 1)

    @classmethod
    def check_format(cls, model: Path) -> str:
        """The model's format (suffix), or a UsageError naming the formats this SUT reads."""
        fmt = Path(model).suffix.lstrip(".").lower()
        if fmt not in cls.model_formats:
            raise UsageError(f"SUT {cls.name!r} cannot load {Path(model).name}: accepted model "
                             f"formats: {', '.join('.' + f for f in cls.model_formats)}")
        return fmt

    def missing_runtime(self) -> UsageError:
        """The one-line error for an uninstalled runtime, naming the extra that installs it."""
        return UsageError(f"SUT {self.name!r} needs {self.runtime}: "
                          f"pip install 'tinyharness[{self.extra}]'")

    # -- life cycle ---------------------------------------------------------------------------
    @abc.abstractmethod
    def load(self, model: Path) -> None:
        """Untimed: read and compile the model, allocate and bind buffers, run a warm-up."""

    @abc.abstractmethod
    def input_spec(self) -> TensorSpec:
        """The model input after :meth:`load` (batch 1)."""

    @abc.abstractmethod
    def output_spec(self) -> TensorSpec:
        """The model output after :meth:`load` (batch 1)."""

    @abc.abstractmethod
    def prepare(self, sample: np.ndarray) -> None:
        """Untimed: copy one model-ready input (``input_spec`` dtype and shape) into the SUT."""

    @abc.abstractmethod
    def infer(self) -> None:
        """Timed: run the model once on the prepared input. Must not allocate or copy out.

        A SUT may replace it after :meth:`load` with the runtime's own bound call
        (``self.infer = request.infer``), so no Python frame of its own sits inside the timing.
        """

    @abc.abstractmethod
    def output(self) -> np.ndarray:
        """Untimed: a copy of the raw output of the last :meth:`infer`, in ``output_spec``'s dtype
        and shape (a batch-1 dimension may be present or not). The accuracy pass checks every
        output against the spec (shape, dtype, finite values) and fails the run on a mismatch."""

    def issue_offline(self, samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
        """Run every sample once, in any order or concurrency, and store in ``completions[i]``
        the ``time.perf_counter_ns()`` at which sample ``i`` completed, before returning.

        Stamps need not be in sample order (parallel lanes complete out of order), but each lies
        within the call: the harness checks, after the query, that every sample has one and that
        it is neither before the issue nor after the return, else the run fails.

        The default runs them one after another on the calling thread.
        """
        prepare, infer, clock = self.prepare, self.infer, time.perf_counter_ns
        for i, sample in enumerate(samples):
            prepare(sample)
            infer()
            completions[i] = clock()

    def run_window(self, iterations: int, warmup: int) -> int:
        """Device-timed SUTs only: run the prepared sample ``warmup`` times untimed, then
        ``iterations`` times back to back, and return the elapsed device time in nanoseconds
        (MLPerf Tiny's ``infer N W``). Called only when ``timing is Timing.DEVICE``."""
        raise NotImplementedError(f"SUT {self.name!r} is host-timed")

    def runtime_latency_ns(self) -> int:
        """Untimed, single-stream, only when ``reports_runtime_latency``: the runtime's own
        measure of the last :meth:`infer` in nanoseconds (OpenVINO's ``InferRequest.latency``),
        read after the harness's clock pair. It lets a user compare with the runtime's own tools
        (``benchmark_app``) like for like; the harness's latency stays issue to completion."""
        raise NotImplementedError(f"SUT {self.name!r} reports no runtime latency")

    @abc.abstractmethod
    def describe(self) -> SUTDescription:
        """Runtime name and version, device, precision, threads and model format, after load."""

    @classmethod
    def system_fields(cls, recorded: Mapping[str, Any] | None = None) -> dict[str, str]:
        """MLPerf Tiny system-description fields this SUT knows better than the host detection
        (an emulated or attached board, its processor, the compilers), read from a run's recorded
        ``describe().extra`` when one is given. Default: none."""
        return {}

    def run_stats(self) -> dict[str, Any]:
        """Counters the SUT kept during the run, for the logs (a serial link: uploads, restarts,
        stray lines). Called once at the end of a run, before :meth:`close`."""
        return {}

    def close(self) -> None:
        """Release the runtime's resources. Called once, also after a failure, including a
        ``load`` that raised: release what was acquired before the error, ignore the rest."""


def issue_in_lanes(lanes: Sequence[tuple[np.ndarray, Callable[[], Any]]],
                   samples: Sequence[np.ndarray], completions: np.ndarray) -> None:
    """Offline issue over parallel lanes: lane k owns an input array bound to its own request
    (or binding) and runs samples k, k + L, k + 2L, ... synchronously, stamping each completion.

    Runtimes release the GIL inside inference, so the lanes overlap; a fixed stride keeps each
    lane's completions in order (a shared counter measured the same). An exception in any lane is
    raised on the calling thread as a SUTError.
    """
    import threading

    count, errors, clock = len(lanes), [], time.perf_counter_ns

    def lane(k: int) -> None:
        array, infer = lanes[k]
        try:
            for i in range(k, len(samples), count):
                np.copyto(array, samples[i])
                infer()
                completions[i] = clock()
        except Exception as exc:  # surfaced on the calling thread below
            errors.append(exc)

    workers = [threading.Thread(target=lane, args=(k,), name=f"lane{k}") for k in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise SUTError(f"offline request failed: {type(errors[0]).__name__}: {errors[0]}") from errors[0]


PROBE_LIMIT = 1 << 22  # samples in the largest query offline_rate issues


def offline_rate(issue: Callable[[Sequence[np.ndarray], np.ndarray], None],
                 samples: Sequence[np.ndarray], seconds: float = 0.15) -> float:
    """Samples per second of an offline issue function, from growing queries over ``samples``
    (cycled) until one lasts ``seconds``. The offline scenario sizes its query with it; a SUT
    picks with it, untimed at load, between ways of running offline (parallel lanes win on models
    of tens of µs; on µs-scale models the GIL makes them lose)."""
    n = 64
    while True:
        completions = np.zeros(n, dtype=np.int64)
        start = time.perf_counter_ns()
        issue([samples[i % len(samples)] for i in range(n)], completions)
        span = (int(completions.max()) - start) / 1e9
        if span >= seconds or n >= PROBE_LIMIT:
            return n / max(span, 1e-9)
        # never past PROBE_LIMIT samples (64 MiB of references and stamps), whatever a SUT stamps
        n = min(PROBE_LIMIT, n * (2 if span <= 0 else max(2, min(16, math.ceil(seconds / span)))))
