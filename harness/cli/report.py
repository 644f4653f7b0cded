"""``tinyharness report``: a self-contained HTML page (or PNG files) about runs and packages."""

from __future__ import annotations

from pathlib import Path

import click

from .run_sources import RunSource, expand, sweep_tables
from .types import choice


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=RunSource())
@click.option("--output", type=click.Path(path_type=Path), metavar="PATH", help="The HTML file "
              "(default: report.html), or with --format png the folder for the PNG files (default: report).")
@click.option("--format", "fmt", type=choice("html", "png"), default="html", show_default=True,
              help="html: one self-contained page (plots embedded); png: the plots as PNG files only, "
              "each named after its benchmark.")
@click.option("--published", "published", multiple=True, type=click.Path(exists=True, path_type=Path),
              metavar="PATH", help="A published MLPerf Tiny results tree (a checkout or .tar.gz of "
              "mlcommons/tiny_results_v1.x): each benchmark also gets your runs ranked among its "
              "published results, as a chart (log throughput axis) and a table. Repeatable.")
@click.option("--db", type=click.Path(path_type=Path), metavar="PATH",
              help="Results database for sweep:ID and query:EXPR (default: as 'tinyharness results').")
def report_command(paths, output, fmt, published, db) -> None:
    """Report on runs: a summary table and plots in one self-contained HTML page.

    PATHS are run directories, folders of runs or submission packages (folder or .tar.gz), or
    from the results database sweep:ID (a sweep's runs) and query:EXPR (e.g. 'query:benchmark=kws01
    valid=true', as 'tinyharness results query'); a sweep also gets its table (status, latency or
    throughput, accuracy, node, reason per cell) with the status legend.
    The table gives each run's mode, start, result (VALID, INVALID, FAILED, INTERRUPTED) and
    reasons, latency, throughput and accuracy. Plots: latency histogram and CDF, MLPerf Tiny
    window throughput, offline completions, and per benchmark the runs compared and each run's
    accuracy as its distance to the target. With --published, per benchmark your runs among the
    published MLPerf Tiny results (rank, submitter, system, processor, framework, throughput,
    latency, accuracy, energy, version, division).

    Runs that did not finish (status.json says failed or interrupted) are listed in the table
    but not plotted, with a warning each; with no finished run left it is a usage error.
    Needs matplotlib: pip install 'tinyharness[report]'.
    """
    output = output or Path("report.html" if fmt == "html" else "report")
    from ..report import make_report

    written = make_report(expand(paths, db), output, fmt, list(published),
                          sweep_tables(paths, db))
    click.echo(f"report: {output} ({len(written)} file{'s' if len(written) != 1 else ''})", err=True)
