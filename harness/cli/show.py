"""``tinyharness show``: runs rendered for people (text, Markdown) or as schema-2 JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .types import choice


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=choice("text", "markdown", "json"), default="text",
              show_default=True, help="text: as summary.txt; markdown: a table per run, to paste "
              "into an issue or a pull request; json: the summaries as schema 2.")
def show(paths, fmt) -> None:
    """Print runs: run directories, folders of runs or submission packages (folder or .tar.gz).

    Summaries written by older versions (schema 1) are read and shown in today's form.
    """
    from ..results import render
    from ..results.read import load_runs

    runs = load_runs(paths)
    if fmt == "json":
        click.echo(json.dumps([r.summary.to_dict() for r in runs], indent=1))
        return
    write = render.markdown if fmt == "markdown" else render.text
    click.echo("\n".join(write(r.summary) for r in runs), nl=False)
