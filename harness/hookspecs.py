"""The plugin surface of tinyharness: every hook a plugin may implement.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the hooks
below. Third-party plugins are found through the entry-point group ``tinyharness``; the built-in
SUTs are declared in that same group and use the same hooks. Example::

    from tinyharness.hookspecs import hookimpl
    from tinyharness.sut import SUT

    class MyNPU(SUT):
        name = "my-npu"
        ...

    @hookimpl
    def register_suts(register):
        register(MyNPU)
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("tinyharness")
hookimpl = pluggy.HookimplMarker("tinyharness")


@hookspec
def register_suts(register: Callable[[type], None]) -> None:
    """Register the SUT classes this plugin provides.

    Called once per process, when the plugins are first loaded, for every plugin that implements
    it (all results are collected; none ends the call). Call ``register(cls)`` once for each
    subclass of :class:`tinyharness.sut.SUT`. Registering a name that another plugin already
    registered is an error that names both plugins. The hook must not import the runtime: import it
    inside ``SUT.load`` so that listing SUTs and ``--help`` stay fast. Returns nothing.
    """
