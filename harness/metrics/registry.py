"""The quality metrics every loaded plugin registers through ``register_metrics``, by name.

:func:`tinyharness.plugins.metric_registry` builds the process's one registry from the plugin
manager the SUTs come from; this module takes that manager as given (it never imports
``tinyharness.plugins``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError, did_you_mean
from .base import Metric, name_problem

if TYPE_CHECKING:
    import pluggy


class MetricRegistry:
    """The :class:`~tinyharness.metrics.base.Metric` objects of a plugin manager's plugins."""

    def __init__(self, pm: "pluggy.PluginManager", allow_env: str = "TINYHARNESS_PLUGINS") -> None:
        self.pm = pm
        self.metrics: dict[str, Metric] = {}
        self.origin: dict[str, str] = {}  # metric name -> the plugin that registered it
        self.allow_env = allow_env  # the variable that leaves a plugin out (tinyharness.plugins)

    def collect(self, only: str | None = None) -> None:
        """Call every plugin's ``register_metrics`` (or only plugin ``only``'s)."""
        for impl in self.pm.hook.register_metrics.get_hookimpls():
            if only is not None and impl.plugin_name != only:
                continue

            def register(metric, _plugin=impl.plugin_name):
                self._add(metric, _plugin)

            try:
                impl.function(register=register)
            except UsageError:
                raise
            except Exception as exc:  # a broken plugin must say which one it is
                raise UsageError(f"plugin {impl.plugin_name!r} failed in register_metrics: "
                                 f"{type(exc).__name__}: {exc}; set {self.allow_env} to skip it") from None

    def add(self, plugin: object, name: str) -> None:
        """Register a plugin object at run time (programmatic use, tests) and collect its
        metrics; a plugin already registered under ``name`` (e.g. for its SUTs) is only asked."""
        new = self.pm.get_plugin(name) is None
        if new:
            self.pm.register(plugin, name=name)
        try:
            self.collect(only=name)
        except BaseException:
            self.remove(name, unregister=new)
            raise

    def remove(self, name: str, unregister: bool = True) -> None:
        """Forget the metrics plugin ``name`` registered (and unregister the plugin)."""
        if unregister and self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        for metric in [m for m, origin in self.origin.items() if origin == name]:
            del self.metrics[metric], self.origin[metric]

    def _add(self, metric: object, plugin: str) -> None:
        if not isinstance(metric, Metric):
            raise UsageError(f"plugin {plugin!r} registered {metric!r}, which is not a "
                             "tinyharness.metrics.Metric")
        problem = name_problem(metric.name)
        if problem is not None:
            raise UsageError(f"plugin {plugin!r} registered {problem}")
        if metric.name in self.metrics:
            raise UsageError(f"metric name {metric.name!r} is registered by both plugin "
                             f"{self.origin[metric.name]!r} and plugin {plugin!r}; "
                             f"set {self.allow_env} to load only one of them")
        self.metrics[metric.name] = metric
        self.origin[metric.name] = plugin

    def names(self, kind: str | None = None) -> list[str]:
        """The registered names (of one kind), sorted."""
        return sorted(n for n, m in self.metrics.items() if kind is None or m.kind == kind)

    def get(self, name: str) -> Metric:
        """The metric ``name``; else a one-line UsageError with the closest names and all of them."""
        if name not in self.metrics:
            known = ", ".join(self.names()) or "none"
            raise UsageError(f"unknown metric {name!r}{did_you_mean(name, self.names())}; "
                             f"available: {known}, or evaluate:PATH (a Hugging Face Evaluate "
                             "module in a local folder)")
        return self.metrics[name]
