"""The SUT conformance kit: the rules, :func:`check_sut` and the pytest base class.

The rules, in the order they run (each one a ``test_<rule>`` method of :class:`SUTConformance`,
hyphens as underscores):

==========================  =====================================================================
``registration-light``      capabilities readable in a fresh process without importing the
                            runtime (:mod:`.registration`)
``options``                 each option refuses bad values with a one-line UsageError that names
                            it; an unknown key is refused (:func:`.rules.options`)
``output-spec``             prepare/infer/output after load match ``output_spec()``: dtype, shape
                            up to batch dimensions, finite (the accuracy pass's check)
``repeatable``              infer() again gives the same output; another sample another one
``reference``               outputs equal a reference SUT's within the tolerance (skipped when no
                            reference is given)
``no-allocation-growth``    infer() keeps nothing per call (:mod:`.memory`)
``timing-ratio``            infer() timed as the harness does against a raw loop: reported only
``offline-stamps``          issue_offline() stamps every sample within the call (SUTs that run
                            offline)
``close-idempotent``        close() twice raises nothing, before and after load
==========================  =====================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

from ..errors import UsageError
from .memory import no_allocation_growth
from .registration import registration_light
from .rules import close_idempotent, offline_stamps, output_spec, repeatable, timing_ratio
from .rules import options as options_rule
from .rules import reference as reference_rule
from .subject import (DEFAULT_BENCHMARK, DEFAULT_TOLERANCE, CheckResult, Failed, Skipped, Subject,
                      one_line, raised)

if TYPE_CHECKING:
    from ..sut import SUT

Rule = Callable[[Subject], "tuple[str, dict[str, Any]]"]
RULES: dict[str, Rule] = {
    "registration-light": registration_light,
    "options": options_rule,
    "output-spec": output_spec,
    "repeatable": repeatable,
    "reference": reference_rule,
    "no-allocation-growth": no_allocation_growth,
    "timing-ratio": timing_ratio,
    "offline-stamps": offline_stamps,
    "close-idempotent": close_idempotent,
}


def run_rule(rule: str, subject: Subject) -> CheckResult:
    """One rule on ``subject``; never raises for what the SUT does (only KeyboardInterrupt and
    the like pass through). A failure's message starts with the rule's name."""
    if rule not in RULES:
        raise UsageError(f"unknown conformance rule {rule!r}; the rules: {', '.join(RULES)}")
    detail: dict[str, Any] = {}
    try:
        message, detail = RULES[rule](subject)
        return CheckResult(rule, True, one_line(message), detail)
    except Skipped as exc:
        return CheckResult(rule, None, one_line(exc.args[0]), _detail(exc))
    except Failed as exc:
        return CheckResult(rule, False, one_line(f"{rule}: {exc.args[0]}"), _detail(exc))
    except Exception as exc:  # a SUT call outside calling(), or the kit's own bug: still a line
        return CheckResult(rule, False, f"{rule}: {raised('the check', exc)}", detail)


def _detail(exc: Exception) -> dict[str, Any]:
    return dict(exc.args[1]) if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}


def check_sut(sut: "str | type[SUT]", benchmark: str | None = DEFAULT_BENCHMARK,
              model: "Path | str | None" = None, options: Mapping[str, Any] | None = None,
              reference: "str | type[SUT] | None" = None, tolerance: float = DEFAULT_TOLERANCE,
              *, rules: "list[str] | None" = None) -> list[CheckResult]:
    """Run the conformance rules (all, or ``rules``) on a SUT: a registered name or the class.

    ``benchmark`` gives the samples (digits01, embedded, by default); ``model`` defaults to the
    benchmark's reference model in a format the SUT reads; ``options`` are ``--sut-option``
    values; ``reference`` names another SUT whose outputs must match within ``tolerance``
    (absolute, on dequantized outputs). Returns one :class:`CheckResult` per rule and never raises
    for a rule the SUT breaks; bad arguments (an unknown SUT, a model that does not exist, options
    the SUT refuses) are a one-line UsageError before any rule runs.
    """
    chosen = list(RULES) if rules is None else list(rules)
    unknown = [r for r in chosen if r not in RULES]
    if unknown:
        raise UsageError(f"unknown conformance rule(s) {', '.join(map(repr, unknown))}; the "
                         f"rules: {', '.join(RULES)}")
    subject = Subject(sut, benchmark, model, options, reference, tolerance)
    try:
        return [run_rule(rule, subject) for rule in chosen]
    finally:
        subject.close()


class SUTConformance:
    """Subclass in a test module to get one pytest test per conformance rule::

        from tinyharness.testing import SUTConformance

        class TestAcmeNPU(SUTConformance):
            sut = "acme-npu"          # a registered SUT name, or the SUT class itself
            benchmark = "digits01"    # embedded: needs no download
            options = {"threads": "1"}
            reference = "onnxruntime-cpu"   # optional
            tolerance = 1e-4

    A rule that does not apply is skipped with its reason; a broken one fails with a one-line
    message naming it. One loaded SUT serves the class's tests; it is closed in
    ``teardown_class`` (a subclass that overrides it calls ``super().teardown_class()``). Set
    ``options`` in ``setup_class`` when they are known only then (a port).
    """

    sut: ClassVar["str | type[SUT] | None"] = None
    benchmark: ClassVar[str] = DEFAULT_BENCHMARK
    model: ClassVar["Path | str | None"] = None
    options: ClassVar[Mapping[str, Any]] = {}
    reference: ClassVar["str | type[SUT] | None"] = None
    tolerance: ClassVar[float] = DEFAULT_TOLERANCE

    @classmethod
    def conformance_subject(cls) -> Subject:
        """The class's :class:`Subject`, made on first use."""
        subject = cls.__dict__.get("_conformance_subject")
        if subject is None:
            if cls.sut is None:
                raise UsageError(f"{cls.__name__}: set the class attribute 'sut' to a registered "
                                 "SUT name or a SUT class")
            subject = Subject(cls.sut, cls.benchmark, cls.model, cls.options, cls.reference,
                              cls.tolerance)
            cls._conformance_subject = subject
        return subject

    @classmethod
    def teardown_class(cls) -> None:
        subject = cls.__dict__.get("_conformance_subject")
        if subject is not None:
            del cls._conformance_subject
            subject.close()

    def check_rule(self, rule: str) -> CheckResult:
        """Run ``rule``: pytest.skip when it does not apply, pytest.fail (one line) when broken."""
        import pytest

        try:
            subject = type(self).conformance_subject()
        except UsageError as exc:
            pytest.fail(f"{rule}: {one_line(exc)}", pytrace=False)
        result = run_rule(rule, subject)
        if result.passed is None:
            pytest.skip(result.message)
        if not result.passed:
            pytest.fail(result.message, pytrace=False)
        print(f"{rule}: {result.message}")  # shown by pytest -rP (timing-ratio's figures)
        return result

    def test_registration_light(self) -> None:
        self.check_rule("registration-light")

    def test_options(self) -> None:
        self.check_rule("options")

    def test_output_spec(self) -> None:
        self.check_rule("output-spec")

    def test_repeatable(self) -> None:
        self.check_rule("repeatable")

    def test_reference(self) -> None:
        self.check_rule("reference")

    def test_no_allocation_growth(self) -> None:
        self.check_rule("no-allocation-growth")

    def test_timing_ratio(self) -> None:
        self.check_rule("timing-ratio")

    def test_offline_stamps(self) -> None:
        self.check_rule("offline-stamps")

    def test_close_idempotent(self) -> None:
        self.check_rule("close-idempotent")
