"""The SUT conformance kit (tinyharness.testing): a SUT that keeps the contract passes every rule,
and each way of breaking it is caught by its rule with a one-line message naming the rule."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakes import registered
from tinyharness.cli.exits import handled
from tinyharness.cli.plugins_check import check
from tinyharness.errors import UsageError
from tinyharness.plugins import registry
from tinyharness.testing import RULES, CheckResult, SUTConformance, check_sut
from tinyharness.testing.registration import runtime_modules

from . import conformance_fakes as fakes


def assert_one_line_failure(result: CheckResult, rule: str, fragment: str) -> None:
    assert result.rule == rule and result.passed is False and result.status == "FAIL"
    assert result.message.startswith(f"{rule}: "), result.message
    assert "\n" not in result.message and fragment in result.message, result.message


# -- the good SUT ---------------------------------------------------------------------------------
def test_a_sut_that_keeps_the_contract_passes_every_rule():
    results = check_sut(fakes.LinearSUT, reference=fakes.LinearSUT)
    assert [r.rule for r in results] == list(RULES)
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert all("\n" not in r.message and r.message for r in results)
    by_rule = {r.rule: r for r in results}
    assert by_rule["no-allocation-growth"].detail["calls"] == 2000
    assert by_rule["timing-ratio"].detail["ratio"] > 0  # reported, never judged
    assert json.dumps([r.to_dict() for r in results])  # JSON-safe detail


def test_the_reference_rule_is_skipped_without_a_reference_and_catches_another_model():
    skipped, = check_sut(fakes.LinearSUT, rules=["reference"])
    assert skipped.passed is None and skipped.status == "SKIP" and "no reference" in skipped.message
    other, = check_sut(fakes.OtherWeights, reference=fakes.LinearSUT, rules=["reference"])
    assert_one_line_failure(other, "reference", "differs from reference 'fake-linear'")
    assert other.detail["max_abs_difference"] > other.detail["tolerance"]
    loose, = check_sut(fakes.OtherWeights, reference=fakes.LinearSUT, tolerance=1e3,
                       rules=["reference"])
    assert loose.passed is True


# -- each way of breaking the contract ------------------------------------------------------------
@pytest.mark.parametrize("sut, rule, fragment", [
    (fakes.AllocatingSUT, "no-allocation-growth", "binds a new numpy array to self.y on every call"),
    (fakes.HoardingSUT, "no-allocation-growth", "the Python heap grew by"),
    (fakes.NativeLeakSUT, "no-allocation-growth", "in each of 3 windows"),
    (fakes.WrongShapeSUT, "output-spec", "returned 10 values for sample 0; its output spec is "
                                         "float32[1, 12]"),
    (fakes.FutureStampsSUT, "offline-stamps", "after issue_offline() returned"),
    (fakes.CloseTwiceSUT, "close-idempotent", "close() (the second call, never loaded) raised "
                                              "RuntimeError"),
    (fakes.OwnBufferSUT, "repeatable", "output() must return a copy"),
    (fakes.BadOptionSUT, "options", "option level=not-a-value: parse_options() raised KeyError"),
], ids=lambda v: v.name if isinstance(v, type) else None)
def test_a_broken_sut_is_caught_by_its_rule_in_one_line(sut, rule, fragment):
    result, = check_sut(sut, rules=[rule])
    assert_one_line_failure(result, rule, fragment)


def test_alternating_between_buffers_made_at_load_is_no_allocation():
    result, = check_sut(fakes.DoubleBufferSUT, rules=["no-allocation-growth"])
    assert result.passed is True, result.message


def test_a_failing_rule_does_not_stop_the_others():
    results = {r.rule: r for r in check_sut(fakes.FutureStampsSUT)}
    assert results["offline-stamps"].passed is False
    assert results["output-spec"].passed and results["close-idempotent"].passed


def test_a_sut_that_cannot_load_fails_each_rule_that_needs_it(tmp_path):
    class Unloadable(fakes.LinearSUT):
        name = "fake-unloadable"

        def load(self, model):
            raise RuntimeError("libacme.so: cannot open shared object file")

    results = {r.rule: r for r in check_sut(Unloadable)}
    assert results["options"].passed is True
    assert results["registration-light"].passed is None  # defined in a function: not importable
    for rule in ("output-spec", "repeatable", "no-allocation-growth", "timing-ratio"):
        assert_one_line_failure(results[rule], rule, "load(digits01_float.onnx) raised RuntimeError")


# -- registration-light: a real entry-point plugin --------------------------------------------------
PLUGIN = '''
from tinyharness.hookspecs import hookimpl


@hookimpl
def register_suts(register):
    from {sut_module} import MarkerSUT

    register(MarkerSUT)
'''

SUT_MODULE = '''
{top}
from testing.conformance_fakes import LinearSUT


class MarkerSUT(LinearSUT):
    name = "{name}"
    runtime = "{runtime}"

    def load(self, model):
        import {runtime}
        super().load(model)
'''


def install_plugin(root: Path, name: str, heavy: bool, numpy_at_import: bool = False) -> None:
    """A distribution on sys.path, as test_third_party_plugin.py makes one: an entry module, the
    SUT's module and a marker 'runtime' module; the entry point registered in this process."""
    tag = name.replace("-", "_")
    runtime, sut_module, entry = f"{tag}_runtime", f"{tag}_sut", f"{tag}_plugin"
    (root / f"{runtime}.py").write_text("LOADED = True\n")
    (root / f"{sut_module}.py").write_text(SUT_MODULE.format(
        top=f"import {runtime}" if heavy else "", name=name, runtime=runtime))
    (root / f"{entry}.py").write_text(("import numpy\n" if numpy_at_import else "")
                                      + PLUGIN.format(sut_module=sut_module))
    info = root / f"{tag}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {tag}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tinyharness]\n{name} = {entry}\n")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """plugin(name, heavy=...) -> the entry-point plugin installed and registered (removed after)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def make(name: str, heavy: bool, numpy_at_import: bool = False) -> str:
        import importlib

        install_plugin(tmp_path, name, heavy, numpy_at_import)
        registry().add(importlib.import_module(f"{name.replace('-', '_')}_plugin"), name)
        added.append(name)
        return name

    yield make
    for name in added:
        registry().remove(name)
        for module in [m for m in sys.modules if m.startswith(name.replace("-", "_"))]:
            monkeypatch.delitem(sys.modules, module)


@pytest.mark.parametrize("heavy, numpy_at_import, passed, fragment", [
    (True, False, False, "registering through entry point 'acme-marker' (acme_marker_plugin) and "
                         "reading the capabilities imported the runtime (acme_marker_runtime)"),
    (False, True, False, "importing entry point 'acme-marker' (acme_marker_plugin) imported numpy"),
    (False, False, True, "without importing acme_marker_runtime"),
], ids=["runtime-at-registration", "numpy-in-entry-module", "light"])
def test_registration_light_in_a_fresh_process(plugin, heavy, numpy_at_import, passed, fragment):
    name = plugin("acme-marker", heavy, numpy_at_import)
    result, = check_sut(name, rules=["registration-light"])
    assert result.passed is passed, result.message
    assert fragment in result.message and "\n" not in result.message
    if not passed:
        assert result.message.startswith("registration-light: ")
    assert result.detail["runtime_modules"] == ["acme_marker_runtime"]


def test_runtime_modules_are_found_by_distribution_and_import_name():
    from tinyharness.suts.onnxruntime_cpu.sut import OnnxRuntimeCPU
    from tinyharness.suts.serial.sut import SerialSUT

    assert runtime_modules(OnnxRuntimeCPU) == (["onnxruntime"], "tinyharness.plugins.RUNTIME_MODULES")
    assert runtime_modules(SerialSUT)[0] == ["serial"]  # runtime = "pyserial", a distribution
    assert runtime_modules(fakes.LinearSUT)[0] == []  # numpy: every SUT module may import it

    class ByImportName(fakes.LinearSUT):
        name, runtime = "fake-json", "json"

    class Unknown(fakes.LinearSUT):
        name, runtime = "fake-unknown", "no-such-runtime-xyz"

    assert runtime_modules(ByImportName)[0] == ["json"]
    assert runtime_modules(Unknown)[0] == []


# -- the pytest base class --------------------------------------------------------------------------
class TestLinearSUTConformance(SUTConformance):
    """The kit as a plugin author uses it: nine tests collected from the base class."""

    sut = fakes.LinearSUT
    reference = fakes.LinearSUT


class _WrongShapeConformance(SUTConformance):  # not collected: driven by the test below
    sut = fakes.WrongShapeSUT


def test_the_base_class_fails_in_one_line_and_skips_with_the_reason():
    case = _WrongShapeConformance()
    try:
        with pytest.raises(pytest.fail.Exception) as failed:
            case.test_output_spec()
        assert str(failed.value).startswith("output-spec: SUT 'fake-wrong-shape' returned 10 values")
        assert "\n" not in str(failed.value)
        with pytest.raises(pytest.skip.Exception, match="no reference SUT given"):
            case.test_reference()
        assert case.check_rule("close-idempotent").passed is True
    finally:
        _WrongShapeConformance.teardown_class()
    assert "_conformance_subject" not in _WrongShapeConformance.__dict__


def test_the_base_class_without_a_sut_fails_naming_the_attribute():
    class NoSut(SUTConformance):
        pass

    with pytest.raises(pytest.fail.Exception, match="set the class attribute 'sut'"):
        NoSut().test_options()


# -- bad arguments are usage errors, not failed rules ----------------------------------------------
@pytest.mark.parametrize("kwargs, fragment", [
    ({"sut": "no-such-sut"}, "unknown SUT 'no-such-sut'"),
    ({"sut": fakes.LinearSUT, "options": {"gain": "-1"}}, "--sut-option gain=-1: expected"),
    ({"sut": fakes.LinearSUT, "model": "missing.onnx"}, "missing.onnx"),
    ({"sut": fakes.LinearSUT, "benchmark": "nope"}, "unknown benchmark 'nope'"),
    ({"sut": fakes.LinearSUT, "rules": ["speed"]}, "unknown conformance rule(s) 'speed'"),
    ({"sut": fakes.LinearSUT, "tolerance": float("nan")}, "tolerance nan"),
    ({"sut": object}, "must be a registered SUT name or a named subclass"),
])
def test_bad_arguments_are_one_line_usage_errors(kwargs, fragment):
    with pytest.raises(UsageError) as caught:
        check_sut(**kwargs)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


# -- tinyharness plugins check ----------------------------------------------------------------------
def test_the_command_prints_a_table_and_exits_by_the_results():
    runner = CliRunner()
    with registered(fakes.LinearSUT, fakes.WrongShapeSUT):
        good = runner.invoke(check, ["FAKE-LINEAR", "--reference", "fake-linear"])
        bad = runner.invoke(check, ["fake-wrong-shape"])
        as_json = runner.invoke(check, ["fake-wrong-shape", "--json"])
    assert good.exit_code == 0, good.output
    lines = good.stdout.splitlines()
    assert lines[:2] == ["SUT 'fake-linear' on digits01", "rule\tresult\tmessage"]
    assert [ln.split("\t")[:2] for ln in lines[2:]] == [[rule, "PASS"] for rule in RULES]
    assert bad.exit_code == 1
    assert "output-spec\tFAIL\tSUT 'fake-wrong-shape' returned 10 values" in bad.stdout
    assert "reference\tSKIP\tno reference SUT given" in bad.stdout
    assert bad.stderr == "1 of 9 rules failed: output-spec\n"
    rows = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and [r["rule"] for r in rows] == list(RULES)
    assert {r["rule"]: r["result"] for r in rows}["output-spec"] == "FAIL"


@pytest.mark.parametrize("args, fragment", [
    (["no-such-sut"], "unknown SUT 'no-such-sut'"),
    (["null", "--sut-option", "threads"], "is not KEY=VALUE"),
    (["null", "--sut-option", "threads=2"], "does not accept option(s) threads"),
    (["null", "--reference", "nope"], "unknown SUT 'nope'"),
    (["null", "--tolerance", "nan"], "not a finite number"),
    (["null", "--benchmark", "digits"], "unknown benchmark 'digits'"),
])
def test_the_command_exits_2_with_one_line_for_usage_errors(capsys, args, fragment):
    code = handled(lambda: check.main(args, prog_name="tinyharness plugins check",
                                      standalone_mode=False))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err


def test_the_command_on_the_null_sut_passes():
    done = CliRunner().invoke(check, ["null"])
    assert done.exit_code == 0, done.output
    assert "registration-light\tPASS" in done.stdout and "repeatable\tSKIP" in done.stdout


HELP_IS_LIGHT = textwrap.dedent("""
    import sys
    from tinyharness.cli.plugins_check import check
    assert "tinyharness.testing" not in sys.modules and "numpy" not in sys.modules
""")


def test_importing_the_command_imports_neither_the_kit_nor_numpy():
    import subprocess

    done = subprocess.run([sys.executable, "-c", HELP_IS_LIGHT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
