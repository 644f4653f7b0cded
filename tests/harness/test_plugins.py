"""Plugin registry: SUT registration through pluggy, entry-point filtering, broken plugins."""

from __future__ import annotations

import types
from importlib import metadata

import pytest

from fakes import FakeSUT
from tinyharness import plugins
from tinyharness.errors import UsageError
from tinyharness.hookspecs import hookimpl
from tinyharness.plugins import ENV_ALLOW, GROUP, Registry


class AlphaSUT(FakeSUT):
    name = "alpha-test"


class BetaSUT(FakeSUT):
    name = "beta-test"


class OtherAlphaSUT(FakeSUT):
    name = "alpha-test"  # the same name as AlphaSUT


class NamelessSUT(FakeSUT):
    name = ""


class Plugin:
    """A throw-away plugin object that registers the given classes."""

    def __init__(self, *classes) -> None:
        self.classes = classes

    @hookimpl
    def register_suts(self, register):
        for cls in self.classes:
            register(cls)


@pytest.fixture
def reg():
    registry = Registry()
    yield registry
    for name, _ in list(registry.pm.list_name_plugin()):
        registry.pm.unregister(name=name)


def test_registers_suts_from_plugin_objects(reg):
    reg.pm.register(Plugin(AlphaSUT), name="p-one")
    reg.pm.register(Plugin(BetaSUT), name="p-two")
    reg.collect()
    assert reg.suts == {"alpha-test": AlphaSUT, "beta-test": BetaSUT}
    assert reg.origin == {"alpha-test": "p-one", "beta-test": "p-two"}
    assert reg.get("beta-test") is BetaSUT


def test_one_plugin_may_register_several(reg):
    reg.pm.register(Plugin(AlphaSUT, BetaSUT), name="both")
    reg.collect()
    assert set(reg.suts) == {"alpha-test", "beta-test"}
    assert set(reg.origin.values()) == {"both"}


def test_unnamed_plugin_object_is_collected(reg):
    reg.pm.register(Plugin(BetaSUT))
    reg.collect()
    assert reg.suts == {"beta-test": BetaSUT}


def test_duplicate_name_names_both_plugins(reg):
    reg.pm.register(Plugin(AlphaSUT), name="first-plugin")
    reg.pm.register(Plugin(OtherAlphaSUT), name="second-plugin")
    with pytest.raises(UsageError) as info:
        reg.collect()
    message = str(info.value)
    assert "alpha-test" in message
    assert "first-plugin" in message and "second-plugin" in message
    assert ENV_ALLOW in message


@pytest.mark.parametrize("thing", [int, object(), "alpha-test", AlphaSUT(scenario="offline"), NamelessSUT],
                         ids=["int-class", "object", "string", "sut-instance", "nameless-sut"])
def test_registering_a_non_sut_is_a_usage_error(reg, thing):
    reg.pm.register(Plugin(thing), name="bad-plugin")
    with pytest.raises(UsageError, match="bad-plugin"):
        reg.collect()
    assert reg.suts == {}


def test_unknown_sut_lists_the_known_ones(reg):
    reg.pm.register(Plugin(AlphaSUT, BetaSUT), name="p")
    reg.collect()
    with pytest.raises(UsageError) as info:
        reg.get("gamma")
    assert "gamma" in str(info.value)
    assert "alpha-test, beta-test" in str(info.value)


def test_unknown_sut_with_nothing_registered(reg):
    with pytest.raises(UsageError, match="none"):
        reg.get("null")


def test_plugin_manager_is_the_registrys_and_declares_both_hooks():
    pm = plugins.plugin_manager()
    assert pm is plugins.registry().pm
    assert hasattr(pm.hook, "register_suts") and hasattr(pm.hook, "register_commands")


# -- entry points ------------------------------------------------------------------------------

INSTALLED = {"null", "onnxruntime-cpu", "openvino-cpu", "tflite-cpu"}


def test_installed_entry_points():
    names = {ep.name for ep in metadata.entry_points(group=GROUP)}
    assert INSTALLED <= names


def test_env_restricts_to_the_null_plugin(reg, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "null")
    reg.load_entry_points()
    assert [name for name, _ in reg.pm.list_name_plugin()] == ["null"]
    assert reg.warnings == []
    reg.collect()
    assert list(reg.suts) == ["null"]
    assert reg.origin == {"null": "null"}


def test_env_list_is_comma_separated_and_trimmed(reg, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, " null , tflite-cpu ,,")
    reg.load_entry_points()
    attempted = {name for name, _ in reg.pm.list_name_plugin()}
    attempted |= {w.split("'")[1] for w in reg.warnings}  # failed to load: named in the warning
    assert attempted == {"null", "tflite-cpu"}
    for excluded in ("onnxruntime-cpu", "openvino-cpu"):
        assert reg.pm.get_plugin(excluded) is None
        assert not any(excluded in w for w in reg.warnings)


def test_empty_env_loads_nothing(reg, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "")
    reg.load_entry_points()
    assert reg.pm.list_name_plugin() == []
    assert reg.warnings == []


def test_without_env_every_installed_entry_point_is_tried(reg, monkeypatch):
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    reg.load_entry_points()
    loaded = {name for name, _ in reg.pm.list_name_plugin()}
    warned = {w.split("'")[1] for w in reg.warnings}
    assert INSTALLED <= loaded | warned
    assert "null" in loaded


def test_loading_twice_does_not_register_twice(reg, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "null")
    reg.load_entry_points()
    reg.load_entry_points()
    assert [name for name, _ in reg.pm.list_name_plugin()] == ["null"]


def _fake_entry_points(*eps):
    def entry_points(group=None, **kwargs):
        return [ep for ep in eps if group is None or ep.group == group]
    return entry_points


def test_broken_entry_point_becomes_a_warning(reg, monkeypatch):
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    broken = metadata.EntryPoint(name="broken-test", value="tinyharness_no_such_module_xyz", group=GROUP)
    good = metadata.EntryPoint(name="null", value="tinyharness.suts.null", group=GROUP)
    fake = types.SimpleNamespace(entry_points=_fake_entry_points(broken, good))
    monkeypatch.setattr(plugins, "metadata", fake)
    reg.load_entry_points()
    assert [name for name, _ in reg.pm.list_name_plugin()] == ["null"]
    assert len(reg.warnings) == 1
    warning = reg.warnings[0]
    assert "broken-test" in warning
    assert "tinyharness_no_such_module_xyz" in warning
    assert ENV_ALLOW in warning
    reg.collect()
    assert list(reg.suts) == ["null"]


def test_entry_point_that_raises_on_import_becomes_a_warning(reg, monkeypatch, tmp_path):
    (tmp_path / "tinyharness_test_exploding_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    ep = metadata.EntryPoint(name="exploding", value="tinyharness_test_exploding_plugin", group=GROUP)
    monkeypatch.setattr(plugins, "metadata", types.SimpleNamespace(entry_points=_fake_entry_points(ep)))
    reg.load_entry_points()
    assert reg.pm.list_name_plugin() == []
    assert len(reg.warnings) == 1
    assert "exploding" in reg.warnings[0] and "boom at import" in reg.warnings[0]


def test_env_skips_a_broken_entry_point(reg, monkeypatch):
    broken = metadata.EntryPoint(name="broken-test", value="tinyharness_no_such_module_xyz", group=GROUP)
    good = metadata.EntryPoint(name="null", value="tinyharness.suts.null", group=GROUP)
    monkeypatch.setattr(plugins, "metadata", types.SimpleNamespace(entry_points=_fake_entry_points(broken, good)))
    monkeypatch.setenv(ENV_ALLOW, "null")
    reg.load_entry_points()
    assert reg.warnings == []
    assert [name for name, _ in reg.pm.list_name_plugin()] == ["null"]


# -- names from the user: any case, the closest ones named; the default SUT ---------------------

def test_a_sut_name_matches_in_any_case_and_an_unknown_one_names_the_closest(reg):
    """Issue: --sut openvino listed the SUTs but did not offer openvino-cpu."""
    reg.pm.register(Plugin(AlphaSUT, BetaSUT), name="both")
    reg.collect()
    assert reg.get("Alpha-TEST") is AlphaSUT
    with pytest.raises(UsageError) as info:
        reg.get("alpha")
    assert str(info.value) == ("unknown SUT 'alpha' (did you mean 'alpha-test'?); available: "
                               "alpha-test, beta-test (see 'tinyharness suts')")
    with pytest.raises(UsageError, match=r"^unknown SUT 'btea-test' \(did you mean 'beta-test'\?\);"):
        reg.get("btea-test")
    with pytest.raises(UsageError, match=r"^unknown SUT 'zzz'; available"):
        reg.get("zzz")


def test_the_builtin_openvino_prefix_names_openvino_cpu():
    with pytest.raises(UsageError, match=r"^unknown SUT 'openvino' \(did you mean 'openvino-cpu'\?\)"):
        plugins.registry().get("openvino")


def only_importable(monkeypatch, *modules: str) -> list[str]:
    """importlib.util.find_spec finds ``modules`` and nothing else among the runtimes; the
    names it was asked for are returned (nothing may be imported to decide)."""
    import importlib.util

    asked: list[str] = []
    real = importlib.util.find_spec

    def find_spec(name, package=None):
        asked.append(name)
        if name in ("onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime"):
            return real("os") if name in modules else None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return asked


@pytest.mark.parametrize(("modules", "default"), [
    (("onnxruntime", "openvino", "ai_edge_litert"), "onnxruntime-cpu"),
    (("openvino", "ai_edge_litert"), "openvino-cpu"),
    (("ai_edge_litert",), "tflite-cpu"),
    (("tflite_runtime",), "tflite-cpu"),
    (("onnxruntime", "tflite_runtime"), "onnxruntime-cpu"),
])
def test_the_default_sut_is_the_first_installed_in_the_documented_order(monkeypatch, modules, default):
    """Issue: after 'pip install .' (no runtime) run picked onnxruntime-cpu, not installed."""
    import sys

    asked = only_importable(monkeypatch, *modules)
    before = set(sys.modules)
    assert plugins.DEFAULT_SUTS == ("onnxruntime-cpu", "openvino-cpu", "tflite-cpu")
    assert plugins.default_sut() == default
    assert "onnxruntime" in asked
    assert not {"onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime"} & (set(sys.modules) - before)


def test_no_installed_runtime_is_one_line_naming_the_extras(monkeypatch):
    only_importable(monkeypatch)
    with pytest.raises(UsageError) as info:
        plugins.default_sut()
    assert str(info.value) == (
        "no SUT runtime is installed (tried onnxruntime-cpu, openvino-cpu, tflite-cpu): "
        "pip install 'tinyharness[onnxruntime]' or pip install 'tinyharness[openvino]' or "
        "pip install 'tinyharness[litert]'; or choose a SUT with --sut (see 'tinyharness suts')")


def test_the_default_skips_a_sut_left_out_by_the_allow_list(reg, monkeypatch):
    from tinyharness.suts.openvino_cpu.sut import OpenVINOCPU
    from tinyharness.suts.tflite_cpu.sut import TFLiteCPU

    only_importable(monkeypatch, "onnxruntime", "ai_edge_litert")
    reg.pm.register(Plugin(OpenVINOCPU, TFLiteCPU), name="two")  # no onnxruntime-cpu registered
    reg.collect()
    assert reg.default_sut() == "tflite-cpu"


def test_a_third_party_sut_is_installed_when_its_runtime_version_is_known():
    class Known(FakeSUT):
        name = "known-test"

        @classmethod
        def runtime_version(cls):
            return "1.0"

    class Missing(Known):
        name = "missing-test"

        @classmethod
        def runtime_version(cls):
            return None

    assert plugins.installed(Known) and not plugins.installed(Missing)


def test_without_a_default_sut_loaded_the_error_names_the_allow_list(reg, monkeypatch):
    monkeypatch.setenv(ENV_ALLOW, "null")
    reg.load_entry_points()
    reg.collect()
    assert set(reg.suts) == {"null"}
    with pytest.raises(UsageError) as info:
        reg.default_sut()
    assert str(info.value) == ("none of onnxruntime-cpu, openvino-cpu, tflite-cpu is loaded "
                               "(TINYHARNESS_PLUGINS='null'); choose a SUT with --sut (see "
                               "'tinyharness suts')")
