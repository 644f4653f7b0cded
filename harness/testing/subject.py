"""What a conformance check runs on: the SUT class, the benchmark, the model, the options and the
samples, resolved once, and the SUT instances the rules drive.

Every user mistake (an unknown SUT or benchmark, a missing model file, an option the SUT refuses)
is a one-line :class:`~tinyharness.errors.UsageError` when the :class:`Subject` is built, before any
rule runs; what goes wrong after that is the SUT's doing and becomes a failed rule.

At most one instance of the SUT under test is loaded at a time (a device SUT holds a serial port
that only one may open): :meth:`Subject.fresh` closes the shared instance first, and
:meth:`Subject.loaded` loads it again when a later rule needs it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ..errors import UsageError, first_line

if TYPE_CHECKING:
    import numpy as np

    from ..sut import SUT, TensorSpec

DEFAULT_BENCHMARK = "digits01"
DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rule: ``passed`` True, False, or None when the rule was skipped (it does
    not apply to this SUT, or a needed input was not given). ``message`` is one line; a failure's
    starts with the rule's name. ``detail`` holds the figures behind it (JSON-safe)."""

    rule: str
    passed: bool | None
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "SKIP" if self.passed is None else "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "result": self.status, "passed": self.passed,
                "message": self.message, "detail": self.detail}


class Failed(Exception):
    """A rule's verdict, raised from inside it: the SUT broke the rule (``message`` says how)."""


class Skipped(Exception):
    """A rule's verdict, raised from inside it: the rule does not apply (``message`` says why)."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def raised(what: str, exc: BaseException) -> str:
    """``"infer() raised RuntimeError: device fell over"``, one line."""
    return one_line(f"{what} raised {type(exc).__name__}: {first_line(exc)}")


@contextmanager
def calling(what: str) -> Iterator[None]:
    """A SUT call inside a rule: an exception there fails the rule, naming the call;
    NotImplementedError skips it (a SUT may implement only part of the contract, e.g. an
    offline-only SUT has no infer())."""
    try:
        yield
    except (Failed, Skipped):
        raise
    except NotImplementedError as exc:
        raise Skipped(one_line(f"{what} is not implemented: {exc}")) from None
    except Exception as exc:
        raise Failed(raised(what, exc)) from None


def sut_class(sut: "str | type[SUT]", role: str = "SUT") -> "type[SUT]":
    """A registered SUT name (any case) or a SUT subclass, as the class."""
    from ..sut import SUT

    if isinstance(sut, str):
        from ..plugins import registry

        return registry().get(sut)
    if isinstance(sut, type) and issubclass(sut, SUT) and getattr(sut, "name", ""):
        return sut
    raise UsageError(f"the {role} to check must be a registered SUT name or a named subclass of "
                     f"tinyharness.sut.SUT, not {sut!r}")


def scenario_of(cls: "type[SUT]"):
    """The scenario a SUT is checked in: single-stream where it has it, else its first."""
    from ..settings import Scenario

    return Scenario.SINGLE_STREAM if Scenario.SINGLE_STREAM in cls.scenarios else Scenario.parse(
        cls.scenarios[0])


def resolve_model(cls: "type[SUT]", benchmark, model: "Path | str | None") -> Path | None:
    """The model file ``cls`` loads: ``model`` (a bounded regular file of a format it reads), else
    the benchmark's reference model in the first of its formats the benchmark has; None for a SUT
    whose model is on the device."""
    from ..model_store import ModelStore, model_file

    if not cls.needs_model:
        if model is not None:
            raise UsageError(f"SUT {cls.name!r} runs the model flashed on the device; a model "
                             "file does not apply")
        return None
    if model is not None:
        model_file(Path(model))
        path = Path(model)
    else:
        path = ModelStore().resolve(benchmark.default_entry(cls.model_formats)).path
    cls.check_format(path)
    return path


def dequantized(values, spec: "TensorSpec"):
    """An output as float64 values: ``(q - zero_point) x scale`` when the spec is quantized."""
    import numpy as np

    flat = np.asarray(values).reshape(-1).astype(np.float64)
    return (flat - spec.zero_point) * spec.scale if spec.quantized else flat


class Subject:
    """A SUT with everything a conformance check needs, resolved up front (see the module)."""

    def __init__(self, sut: "str | type[SUT]", benchmark: str | None = DEFAULT_BENCHMARK,
                 model: "Path | str | None" = None, options: Mapping[str, Any] | None = None,
                 reference: "str | type[SUT] | None" = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> None:
        from ..benchmark import get_benchmark
        from ..dataset import Dataset

        self.cls = sut_class(sut)
        self.name = self.cls.name
        self.benchmark = get_benchmark(DEFAULT_BENCHMARK if benchmark is None else benchmark)
        self.options = {str(k): str(v) for k, v in dict(options or {}).items()}
        self.config = self.cls.parse_options(self.options)
        self.reference = None if reference is None else sut_class(reference, "reference SUT")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
                or not math.isfinite(tolerance) or tolerance < 0:
            raise UsageError(f"tolerance {tolerance!r}: expected a finite number >= 0")
        self.tolerance = float(tolerance)
        self.model = resolve_model(self.cls, self.benchmark, model)
        self.dataset = Dataset.for_benchmark(self.benchmark)
        self.scenario = scenario_of(self.cls)
        self._shared: "SUT | None" = None
        self._load_error: str | None = None
        self._open: list["SUT"] = []

    # -- samples --------------------------------------------------------------------------------
    def indices(self, count: int) -> list[int]:
        """``count`` dataset indices, one of each label first (different inputs, different
        outputs), then the next ones in order."""
        entries = self.dataset.entries
        first: dict[int, int] = {}
        for i, entry in enumerate(entries):
            first.setdefault(entry.label, i)
        chosen = sorted(first.values())[:count]
        taken = set(chosen)
        for i in range(len(entries)):
            if len(chosen) >= count:
                break
            if i not in taken:
                chosen.append(i)
        return chosen

    def samples(self, spec: "TensorSpec", count: int, benchmark=None) -> list["np.ndarray"]:
        """``count`` model-ready inputs for a SUT whose input spec is ``spec``, as the harness's
        QSL makes them (an empty dtype takes the raw sample as it is)."""
        from ..qsl import transform

        bench = benchmark or self.benchmark
        kind = bench.transform.get(spec.dtype) if spec.dtype else "identity"
        if kind is None:
            raise Failed(f"input dtype {spec.dtype} is not one benchmark {bench.id} can feed "
                         f"({', '.join(bench.transform)})")
        try:
            return [transform(self.dataset.read(i), kind, spec) for i in self.indices(count)]
        except UsageError as exc:
            raise Failed(f"input_spec() {spec.dtype}{list(spec.shape)} does not fit benchmark "
                         f"{bench.id}'s samples: {one_line(exc)}") from None

    # -- instances ------------------------------------------------------------------------------
    def construct(self, scenario=None, cls: "type[SUT] | None" = None, config=None) -> "SUT":
        cls = cls or self.cls
        config = config if config is not None else (self.config if cls is self.cls else {})
        with calling(f"{cls.__name__}()"):
            return cls(scenario or scenario_of(cls), config, benchmark=self.benchmark)

    def load(self, sut: "SUT", model: Path | None) -> "SUT":
        """``sut.load(model)``, the runtime's own console output kept out of the way; on failure
        the instance is closed and the rule fails naming the load."""
        from ..native_output import captured

        self._open.append(sut)
        try:
            with captured():
                sut.load(model)
        except Exception as exc:
            self.close_quietly(sut)
            raise Failed(raised(f"load({model.name if model else None})", exc)) from None
        return sut

    def loaded(self) -> "SUT":
        """The shared loaded instance (scenario :attr:`scenario`), loaded on first use; a load
        that failed once fails every later rule that needs it with the same message."""
        if self._load_error is not None:
            raise Failed(self._load_error)
        if self._shared is None:
            try:
                self._shared = self.load(self.construct(self.scenario), self.model)
            except Failed as exc:
                self._load_error = str(exc)
                raise
        return self._shared

    def fresh(self, scenario=None, load: bool = True) -> "SUT":
        """A new instance of the SUT under test (the shared one is closed first), loaded unless
        ``load`` is False. The caller closes it (or :meth:`close` does)."""
        self.release()
        sut = self.construct(scenario)
        if not load:
            self._open.append(sut)
            return sut
        return self.load(sut, self.model)

    def reference_sut(self) -> "SUT":
        """The reference SUT, loaded with its default options: with the model under test when
        it reads that format, else with the benchmark's reference model in a format it reads."""
        cls = self.reference
        same = self.model is not None and self.model.suffix.lstrip(".").lower() in cls.model_formats
        try:
            model = self.model if same else resolve_model(cls, self.benchmark, None)
        except UsageError as exc:
            raise Failed(f"reference SUT {cls.name!r} has no model to compare with: "
                         f"{one_line(exc)}") from None
        return self.load(self.construct(cls=cls), model)

    def release(self) -> None:
        """Close the shared instance (a later :meth:`loaded` loads a new one)."""
        shared, self._shared = self._shared, None
        if shared is not None:
            self.close_quietly(shared)

    def forget(self, sut: "SUT") -> None:
        """Stop tracking ``sut`` (a rule closed it itself)."""
        if sut in self._open:
            self._open.remove(sut)

    def close_quietly(self, sut: "SUT") -> None:
        self.forget(sut)
        try:
            sut.close()
        except Exception:  # close-idempotent reports close() errors; cleanup must go on
            pass

    def close(self) -> None:
        """Close every instance still open."""
        self._shared = None
        for sut in list(self._open):
            self.close_quietly(sut)
