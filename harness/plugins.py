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
    from .sut import SUT

from . import hookspecs
from .errors import UsageError

GROUP = "tinyharness"
ENV_ALLOW = "TINYHARNESS_PLUGINS"


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
        if name not in self.suts:
            known = ", ".join(sorted(self.suts)) or "none"
            raise UsageError(f"unknown SUT {name!r}; available: {known} (see 'tinyharness suts')")
        return self.suts[name]


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
