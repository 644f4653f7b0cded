"""The plugin surface of tinyharness: every hook a plugin may implement.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the hooks
below. Third-party plugins are found through the entry-point group ``tinyharness``; the built-in
SUTs are declared in that same group and use the same hooks. Keep the module an entry point names
light (no runtime, no numpy at import): ``tinyharness --help`` loads it to collect commands.
Example::

    from tinyharness.hookspecs import hookimpl

    @hookimpl
    def register_suts(register):
        from my_package.sut import MyNPU   # a subclass of tinyharness.sut.SUT
        register(MyNPU)
"""

from __future__ import annotations

from typing import Callable

import click
import pluggy

hookspec = pluggy.HookspecMarker("tinyharness")
hookimpl = pluggy.HookimplMarker("tinyharness")


# -- SUTs -----------------------------------------------------------------------------------------
@hookspec
def register_suts(register: Callable[[type], None]) -> None:
    """Register the SUT classes this plugin provides.

    Called once per process, the first time SUTs are needed (``run``, ``suts``; never for
    ``--help``), for every plugin that implements it; all calls are made, no result ends the call.
    Call ``register(cls)`` once for each subclass of :class:`tinyharness.sut.SUT`. Registering a
    name that another plugin already registered is an error that names both plugins. The SUT's
    module may import numpy; its runtime is imported inside ``SUT.load``. Returns nothing.
    """


# -- quality metrics ------------------------------------------------------------------------------
@hookspec
def register_metrics(register: Callable[[object], None]) -> None:
    """Register the quality metrics this plugin provides, for ``tinyharness run --metric NAME``.

    Called once per process, the first time metrics are needed (a run resolving its metrics;
    never for ``--help``), for every plugin that implements it; all calls are made, no result
    ends the call. Call ``register(metric)`` once for each :class:`tinyharness.metrics.Metric`
    (a name, the kind of benchmark it applies to, which way is better, and a compute function
    that returns a :class:`tinyharness.metrics.MetricValue`). Registering a name that another
    plugin already registered is an error that names both plugins. Import numpy and the metric's
    code here, not at the module's import. Returns nothing. Example::

        @hookimpl
        def register_metrics(register):
            from my_package.metrics import BALANCED_ACCURACY   # a tinyharness.metrics.Metric
            register(BALANCED_ACCURACY)
    """


# -- the command line -----------------------------------------------------------------------------
@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``tinyharness`` CLI with ``cli.add_command(...)``.

    Called once per process when the CLI is built (also for ``--help``), for every plugin that
    implements it; all calls are made. Import only click at that point: a command imports what it
    needs when it runs. A command name that is already taken is an error naming the plugin.
    Returns nothing.
    """
