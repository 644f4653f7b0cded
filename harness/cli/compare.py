"""``tinyharness compare``: B against A, with confidence intervals that include run-to-run
variation, verdicts, and an exit code for regressions (``--fail-above``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .run_sources import RunSource, expand
from .types import count, finite

# --resamples: 100 gives a rough interval, 100 000 (compare.metrics.MAX_RESAMPLES) more precision
# than any run's noise allows; the bootstrap draws in bounded chunks (compare/bootstrap.py,
# ELEMENTS), so the maximum needs little more memory than the default, only more time.
RESAMPLES = (100, 100_000)


def _pairs(ctx, param, values: tuple[str, ...]) -> list[tuple[list[str], list[str]]]:
    from ..compare import parse_pair
    from ..errors import UsageError

    try:
        return [parse_pair(v) for v in values]
    except UsageError as exc:
        raise click.BadParameter(str(exc).removeprefix("--pair "), ctx, param) from None


@click.command("compare")
@click.argument("a", required=False, type=RunSource())
@click.argument("b", required=False, type=RunSource())
@click.option("--published", "published", multiple=True, metavar="PATH[:SUBMITTER/SYSTEM]",
              help="Side A is this published MLPerf Tiny result: a results tree (a checkout or "
              ".tar.gz of mlcommons/tiny_results_v1.x), and which result in it (SUBMITTER/SYSTEM, "
              "or VERSION/SUBMITTER/SYSTEM; any case); then give only B, your runs. Repeatable.")
@click.option("--pair", "pairs", multiple=True, metavar="A_RUN=B_RUN", callback=_pairs,
              help="Compare these runs (a run path or run directory name as printed; several "
              "replicates separated by commas), e.g. two SUTs or models. Repeatable; the runs it "
              "names are not paired otherwise.")
@click.option("--noise-floor", type=finite(0, 100, max_open=True), default=5.0,
              show_default=True, metavar="PCT",
              help="With one run a side, differences within this many percent are run-to-run noise.")
@click.option("--fail-above", type=finite(min=0), metavar="PCT",
              help="Exit 1 when, on any metric, B is slower than A (verdict \"B slower\") by more "
              "than PCT percent with confidence: the slowdown's lower confidence bound (its value "
              "where there is no interval) exceeds PCT. Slowdown: B's time over A's minus 1, "
              "(B - A) / A for latency, A / B - 1 for throughput.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--confidence", type=finite(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the bootstrap intervals.")
@click.option("--resamples", type=count(*RESAMPLES), default=2000, show_default=True,
              help="Bootstrap resamples per metric.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the bootstrap.")
@click.option("--db", type=click.Path(path_type=Path), metavar="PATH",
              help="Results database for sweep:ID and query:EXPR (default: as 'tinyharness results').")
def compare_command(a, b, published, pairs, noise_floor, fail_above, as_json, confidence, resamples,
                    seed, db) -> None:
    """Compare runs B against runs A: p50/p90 latency, median window throughput, offline throughput.

    A and B are run directories, folders of runs or submission packages (folder or .tar.gz), or
    sweep:ID / query:EXPR from the results database (e.g. A = sweep:3f2a, B = sweep:9c1d). Runs
    pair by configuration: benchmark, scenario, SUT and model (sha256, else file name; a device's
    model by benchmark and SUT). Several runs of one configuration on a side, and the repetitions
    inside a run (run --repeat), are replicates. Each metric gets (B - A) / A, a confidence
    interval and a verdict.

    With 2 or more replicates a side: a hierarchical bootstrap (runs, then repetitions, then
    queries or windows, each with replacement; per side the mean of the runs' values), widened for
    few replicates, so the interval includes run-to-run variation. Verdict "B faster", "B slower"
    or "no significant difference" (the interval includes 0).

    With one run on a side nothing measures run-to-run variation: a difference within the noise
    floor, or whose within-run interval reaches into it, is "within run-to-run noise"; offline
    runs (one value each) are held against the floor without an interval.

    Published results: A or B may be an MLPerf Tiny results tree (published results, no runs),
    or --published PATH[:SUBMITTER/SYSTEM] is A and the one path given is B. Each run is paired
    with the published results of its benchmark (kws01 with kws ...) by mode, and both systems
    (board, processor, framework) are printed. A published figure is one number from one run:
    no bootstrap; median throughput and latency (1000 / throughput) get a verdict only beyond
    the noise floor, accuracy is compared at the published precision.

    \b
    Exit codes: 0 no regression (or no --fail-above), 1 a regression beyond --fail-above
    (the metrics are printed), 2 usage or input error.
    """
    from ..compare import print_table
    from ..compare.published import compare_paths
    from ..errors import UsageError

    given = [p for p in (a, b) if p is not None]
    if published and len(given) != 1:
        raise UsageError("with --published give one path, your runs (B): the published result is A")
    if not published and len(given) != 2:
        raise UsageError("compare needs A and B (run directories, folders of runs, packages or a "
                         "published results tree), or --published PATH[:SUBMITTER/SYSTEM] and B")
    given = [expand([p], db) for p in given]
    a_paths, b_paths = ([], given[0]) if published else (given[0], given[1])
    result = compare_paths(a_paths, b_paths, published, confidence, resamples, seed,
                           noise_floor / 100.0, pairs, None if fail_above is None else fail_above / 100.0)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        print_table(result)
    if fail_above is None:
        return
    if not result["pairs"]:
        click.echo("warning: --fail-above checked nothing: no pairs", err=True)
    for r in result["regressions"]:
        click.echo(f"regression: {r['benchmark']} {r['scenario']} {r['metric']}: B ({r['b']}) is "
                   f"{r['slowdown']:+.1%} slower than A ({r['a']}), at least {r['slowdown_low']:+.1%} "
                   f"with {confidence:.0%} confidence, above --fail-above {fail_above:g}%", err=True)
    if result["regressions"]:
        sys.exit(1)
