"""The ``tinyharness`` command line: one module per command group. Help texts are the reference
documentation (docs/cli.md is generated from them).

Exit codes (errors.py): 0 success or a VALID result, 1 an INVALID result, check violations or a
compare regression, 2 usage or input error, 3 run failed (SUT, device or runtime error),
130 interrupted. Commands import what they need when they run, so ``tinyharness --help`` loads no
runtime; plugins add commands through the ``register_commands`` hook.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import raise_terminated
from . import (compare, docs, listing, models, plugins, published, report, results, run, show,
               submission, sweep, sweep_worker)
from .exits import handled


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tinyharness")
def cli() -> None:
    """Benchmark tiny ML models with MLPerf semantics: latency, throughput and accuracy of a
    reference model on a system under test (SUT).

    \b
    Quick start (no download; the embedded digits01 benchmark):
      tinyharness run --scenario single-stream --sut openvino-cpu

    \b
    Exit codes: 0 success (a VALID result), 1 an INVALID result, check violations or a
    compare regression, 2 usage or input error, 3 run failed (SUT, device or runtime
    error), 130 interrupted.
    """


for command in (run.run, show.show, listing.suts, listing.benchmarks, models.models,
                compare.compare_command, report.report_command, submission.package_cmd,
                submission.check_cmd, submission.system, docs.docs, published.published,
                plugins.plugins, results.results, sweep.sweep, sweep_worker.sweep_scheduler,
                sweep_worker.sweep_worker):
    cli.add_command(command)


def _add_plugin_commands() -> None:
    from ..plugins import plugin_manager

    pm = plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # a broken plugin must not take the tool down
            click.echo(f"warning: plugin {impl.plugin_name!r} failed in register_commands: "
                       f"{type(exc).__name__}: {exc}", err=True)
        for name, command in before.items():
            if cli.commands.get(name) is not command:  # a plugin may add, never replace
                cli.commands[name] = command
                click.echo(f"warning: plugin {impl.plugin_name!r} tried to replace the command "
                           f"{name!r}; kept the original", err=True)


_add_plugin_commands()


def main(argv: list[str] | None = None) -> None:
    import signal

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        try:
            signal.signal(signal.SIGTERM, raise_terminated)
        except ValueError:  # not the main thread (an embedding application's): leave it be
            pass
    sys.exit(handled(lambda: cli.main(args=argv, prog_name="tinyharness", standalone_mode=False)))
