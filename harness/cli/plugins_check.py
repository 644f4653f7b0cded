"""``tinyharness plugins check``: run the SUT conformance kit (tinyharness.testing) on one SUT.

Only click is imported here; the command imports the kit when it runs. The ``plugins`` group
attaches it with ``plugins.add_command(check)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .types import finite


@click.command("check")
@click.argument("name", metavar="NAME")
@click.option("--benchmark", "benchmark", metavar="ID", help="Benchmark whose samples (and "
              "reference model) the checks use (default: digits01, embedded: no download).")
@click.option("--model", type=click.Path(path_type=Path), metavar="PATH",
              help="Model file instead of the benchmark's reference model in a format the SUT "
              "reads.")
@click.option("--sut-option", "sut_options", multiple=True, metavar="K=V",
              help="Option for the SUT under test, repeatable (e.g. threads=1).")
@click.option("--reference", metavar="SUT", help="Another SUT whose outputs the SUT's must equal, "
              "within --tolerance (default: that rule is skipped).")
@click.option("--tolerance", type=finite(0, 1e9), default=1e-4, show_default=True, metavar="X",
              help="Largest absolute difference from --reference's outputs (dequantized).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the results instead "
              "of a table.")
def check(name, benchmark, model, sut_options, reference, tolerance, as_json) -> None:
    """Check that the SUT NAME keeps the SUT plugin contract, one rule per line: its
    capabilities load without its runtime (registration-light), its options refuse bad values
    in one line, its outputs match its output spec, repeat and (with --reference) equal another
    SUT's, infer() allocates nothing that stays, offline completion stamps lie within the call,
    close() may be called twice, and how much the harness's timing adds to infer() (reported).

    The same checks run in a plugin's own test suite by subclassing
    tinyharness.testing.SUTConformance (one pytest test per rule).

    Exit codes: 0 every rule passed or was skipped, 1 a rule failed, 2 usage or input error.
    """
    from ..testing import check_sut
    from .run import benchmark_id, parse_sut_options
    from .types import registered_sut

    options = parse_sut_options(sut_options)
    sut = registered_sut(None, None, name)
    reference = registered_sut(None, None, reference)
    benchmark = benchmark_id(benchmark)
    results = check_sut(sut, benchmark, model, options, reference, tolerance)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        from rich.text import Text

        from ..tables import Col, print_table

        styles = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
        print_table((Col("rule", key=True), Col("result", nowrap=True), "message"),
                    [(r.rule, Text(r.status, style=styles[r.status]),
                      r.message.removeprefix(f"{r.rule}: ")) for r in results],
                    title=f"SUT {sut!r} on {benchmark or 'digits01'}")
    failed = [r.rule for r in results if r.passed is False]
    if failed:
        if not as_json:
            click.echo(f"{len(failed)} of {len(results)} rules failed: {', '.join(failed)}",
                       err=True)
        sys.exit(1)
