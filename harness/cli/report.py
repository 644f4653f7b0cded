"""``tinyharness report``: a self-contained HTML page (or PNG files) about runs and packages."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--output", type=click.Path(path_type=Path), metavar="PATH", help="The HTML file "
              "(default: report.html), or with --format png the folder for the PNG files (default: report).")
@click.option("--format", "fmt", type=click.Choice(["html", "png"]), default="html", show_default=True,
              help="html: one self-contained page (plots embedded); png: the plots as PNG files only.")
def report_command(paths, output, fmt) -> None:
    """Report on runs: a summary table and plots in one self-contained HTML page.

    PATHS are run directories, folders of runs or submission packages (folder or .tar.gz).
    Plots: latency histogram and CDF, MLPerf Tiny window throughput, offline completions,
    accuracy against the target, and p50/throughput across the SUTs of each benchmark.
    """
    output = output or Path("report.html" if fmt == "html" else "report")
    from ..report import make_report

    written = make_report(list(paths), output, fmt)
    click.echo(f"report: {output} ({len(written)} file{'s' if len(written) != 1 else ''})", err=True)
