"""``tinyharness compare``: B against A, with bootstrap confidence intervals and verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the bootstrap intervals.")
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap resamples per metric.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def compare_command(a, b, as_json, confidence, resamples, seed) -> None:
    """Compare runs B against runs A: p50/p90 latency, median window throughput, offline throughput.

    A and B are run directories, folders of runs or submission packages (folder or .tar.gz).
    Runs pair by (benchmark, scenario); each metric gets (B - A) / A, a bootstrap confidence
    interval from the stored per-query latencies and a verdict: "B faster", "B slower" or "no
    significant difference" (the interval includes 0). Offline runs are one query each: a plain
    ratio, no interval.
    """
    from ..compare import compare, print_table

    result = compare([a], [b], confidence, resamples, seed)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        print_table(result)
