"""Plugin loading: entry points in the group ``tinyharness``, collected through pluggy.

:func:`plugin_manager` only imports the entry-point modules (light: the CLI needs it for
``--help``); :func:`registry` then asks them for their SUT classes.

``TINYHARNESS_PLUGINS`` (comma-separated entry-point names) restricts which plugins load; set it to
the built-ins (e.g. ``null,onnxruntime-cpu``) to get past a broken third-party plugin. A plugin that
fails to import is skipped with a warning instead of taking the whole tool down.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .metrics.registry import MetricRegistry
    from .sut import SUT

from . import hookspecs
from .errors import UsageError, canonical, did_you_mean, first_line

GROUP = "tinyharness"
ENV_ALLOW = "TINYHARNESS_PLUGINS"

# The host SUTs ``tinyharness run`` picks from without ``--sut``, in this order: the first one
# installed. Each with the top-level modules that make it installed (any one of them) and the
# pip extra that installs it.
DEFAULT_SUTS = ("onnxruntime-cpu", "openvino-cpu", "tflite-cpu")
RUNTIME_MODULES = {"onnxruntime-cpu": ("onnxruntime",), "openvino-cpu": ("openvino",),
                   "tflite-cpu": ("ai_edge_litert", "tflite_runtime"), "torch-cpu": ("torch",),
                   "executorch-cpu": ("executorch",), "deepsparse-cpu": ("deepsparse",),
                   "tensorrt-gpu": ("tensorrt",)}
EXTRAS = {"onnxruntime-cpu": "onnxruntime", "openvino-cpu": "openvino", "tflite-cpu": "litert",
          "torch-cpu": "torch", "executorch-cpu": "executorch", "deepsparse-cpu": "deepsparse",
          "tensorrt-gpu": "tensorrt", "eim": "edgeimpulse"}


def _importable(module: str) -> bool:
    """Whether ``module`` (top level) can be imported, found without importing it."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: in sys.modules without a __spec__
        return module in sys.modules


def installed(sut: "type[SUT]") -> bool:
    """Whether ``sut``'s runtime is installed: one of its runtime's top-level modules can be
    found (importlib.util.find_spec, which imports nothing); a SUT this module does not know is
    installed when its ``runtime_version()`` is known, as ``tinyharness suts`` shows it."""
    modules = RUNTIME_MODULES.get(getattr(sut, "name", ""))
    if modules is None:
        return sut.runtime_version() is not None
    return any(_importable(m) for m in modules)


def _extra(name: str, sut: "type[SUT] | None") -> str:
    return (getattr(sut, "extra", "") or EXTRAS[name]) if sut is not None else EXTRAS[name]


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV_ALLOW)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class Registry:
    """The SUT classes registered by all loaded plugins, by name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.suts: dict[str, type["SUT"]] = {}
        self.origin: dict[str, str] = {}
        self.warnings: list[str] = []
        self.errors: dict[str, str] = {}  # entry point name -> "Type: first line" of its failed import

    def load_entry_points(self) -> None:
        allowed = _allowed()
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the tool
                self.errors[ep.name] = f"{type(exc).__name__}: {first_line(exc)}"
                self.warnings.append(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}; "
                                     f"set {ENV_ALLOW} to skip it")
                continue
            self.pm.register(plugin, name=ep.name)

    def collect(self, only: str | None = None) -> None:
        for impl in self.pm.hook.register_suts.get_hookimpls():
            if only is not None and impl.plugin_name != only:
                continue

            def register(cls, _plugin=impl.plugin_name):
                self._add(cls, _plugin)

            try:
                impl.function(register=register)
            except UsageError:
                raise
            except Exception as exc:  # a broken plugin must say which one it is
                raise UsageError(f"plugin {impl.plugin_name!r} failed in register_suts: "
                                 f"{type(exc).__name__}: {exc}; set {ENV_ALLOW} to skip it") from None

    def add(self, plugin: object, name: str) -> None:
        """Register a plugin object at run time (programmatic use and tests) and collect its SUTs."""
        self.pm.register(plugin, name=name)
        try:
            self.collect(only=name)
        except BaseException:
            self.remove(name)
            raise

    def remove(self, name: str) -> None:
        """Unregister a plugin and forget the SUTs it registered."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        for sut in [s for s, origin in self.origin.items() if origin == name]:
            del self.suts[sut], self.origin[sut]

    def _add(self, cls: type, plugin: str) -> None:
        from .sut import SUT

        if not (isinstance(cls, type) and issubclass(cls, SUT)) or not getattr(cls, "name", ""):
            raise UsageError(f"plugin {plugin!r} registered {cls!r}, which is not a named SUT subclass")
        if cls.name in self.suts:
            raise UsageError(f"SUT name {cls.name!r} is registered by both plugin "
                             f"{self.origin[cls.name]!r} and plugin {plugin!r}; "
                             f"set {ENV_ALLOW} to load only one of them")
        self.suts[cls.name] = cls
        self.origin[cls.name] = plugin

    def get(self, name: str) -> type["SUT"]:
        """The SUT class named ``name``, in any case when that is unambiguous (``OpenVINO-CPU``);
        else a one-line UsageError naming the closest names and every available one."""
        found = canonical(name, self.suts)
        if found is None:
            known = ", ".join(sorted(self.suts)) or "none"
            raise UsageError(f"unknown SUT {name!r}{did_you_mean(name, sorted(self.suts))}; "
                             f"available: {known} (see 'tinyharness suts')")
        return self.suts[found]

    def default_sut(self) -> str:
        """The SUT ``tinyharness run`` uses without ``--sut``: the first of :data:`DEFAULT_SUTS`
        that is registered and whose runtime is installed; a one-line UsageError naming the
        extras to install when there is none."""
        loaded = [name for name in DEFAULT_SUTS if name in self.suts]
        for name in loaded:
            if installed(self.suts[name]):
                return name
        if not loaded:
            allowed = os.environ.get(ENV_ALLOW)
            why = f"{ENV_ALLOW}={allowed!r}" if allowed is not None else "their plugins did not load"
            raise UsageError(f"none of {', '.join(DEFAULT_SUTS)} is loaded ({why}); choose a SUT "
                             "with --sut (see 'tinyharness suts')")
        extras = [_extra(name, self.suts.get(name)) for name in loaded]
        hint = " or ".join(f"pip install 'tinyharness[{e}]'" for e in dict.fromkeys(extras))
        raise UsageError(f"no SUT runtime is installed (tried {', '.join(loaded)}): {hint}; "
                         "or choose a SUT with --sut (see 'tinyharness suts')")


def load_errors() -> dict[str, str]:
    """{entry point name: 'Type: first line'} of the plugins that failed to import."""
    return dict(_loaded().errors)


@lru_cache(maxsize=1)
def _loaded() -> Registry:
    reg = Registry()
    reg.load_entry_points()
    for warning in reg.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return reg


def plugin_manager() -> pluggy.PluginManager:
    """The plugins of the entry-point group, imported but not yet asked for SUTs."""
    return _loaded().pm


@lru_cache(maxsize=1)
def registry() -> Registry:
    """Every SUT class of every loaded plugin."""
    reg = _loaded()
    reg.collect()
    return reg


def default_sut() -> str:
    """The first installed of :data:`DEFAULT_SUTS` (see :meth:`Registry.default_sut`)."""
    return registry().default_sut()


# -- quality metrics ------------------------------------------------------------------------------
BUILTIN_METRICS = "metrics"  # the entry point name of tinyharness.metrics.builtin


@lru_cache(maxsize=1)
def metric_registry() -> "MetricRegistry":
    """Every quality metric of every loaded plugin (``register_metrics``), the built-ins always
    among them: registered here where their entry point is not loaded (not installed, or left
    out by TINYHARNESS_PLUGINS), since every accuracy pass reports them."""
    from .metrics import builtin
    from .metrics.registry import MetricRegistry

    pm = plugin_manager()
    if not pm.is_registered(builtin):
        name = BUILTIN_METRICS if pm.get_plugin(BUILTIN_METRICS) is None else builtin.__name__
        pm.register(builtin, name=name)
    reg = MetricRegistry(pm, ENV_ALLOW)
    reg.collect()
    return reg
