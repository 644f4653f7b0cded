"""``tinyharness published``: the published MLPerf Tiny results of a benchmark, ranked, with your
run among them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .types import choice

ENV = "TINYHARNESS_PUBLISHED"
SHOWN_WARNINGS = 10  # unreadable files named on stderr; --json lists them all


def published_paths(given) -> list[Path]:
    """--results PATHs, else the os.pathsep-separated TINYHARNESS_PUBLISHED; a UsageError when
    neither names anything."""
    from ..errors import UsageError

    paths = list(given) or [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    if not paths:
        raise UsageError(f"no published results to read: give --results PATH (a checkout or .tar.gz "
                         f"of mlcommons/tiny_results_v1.x) or set {ENV}")
    for path in paths:
        if not os.path.exists(path):
            raise UsageError(f"published results {path}: no such file or folder"
                             + (f" (from {ENV})" if not given else ""))
    return paths


def warn_unreadable(unreadable: list[tuple[str, str]]) -> None:
    for path, reason in unreadable[:SHOWN_WARNINGS]:
        click.echo(f"warning: {path}: {reason}", err=True)
    if len(unreadable) > SHOWN_WARNINGS:
        click.echo(f"warning: ... and {len(unreadable) - SHOWN_WARNINGS} more unreadable files "
                   "(--json lists them all)", err=True)


@click.command("published")
@click.option("--benchmark", metavar="ID", help="kws01, vww01, ic01, ic02 or ad01 (or the MLPerf "
              "names kws, vww, ic, ic2, ad). Default: the benchmarks of --mine, else all.")
@click.option("--results", "results", multiple=True, type=click.Path(exists=True, path_type=Path),
              metavar="PATH", help=f"A published results tree: a checkout of "
              "mlcommons/tiny_results_v1.x (or a folder holding several), its closed/ or open/ "
              f"folder, or a .tar.gz of one. Repeatable. Default: ${ENV} (paths separated by "
              f"'{os.pathsep}').")
@click.option("--mine", multiple=True, type=click.Path(exists=True, path_type=Path),
              metavar="RUN_OR_PACKAGE", help="Your run directory, folder of runs or package: "
              "ranked among the published results and marked YOURS. Repeatable.")
@click.option("--division", type=choice("closed", "open"), help="Only this division.")
@click.option("--version", "versions", multiple=True, metavar="VERSION",
              help="Only this MLPerf Tiny version (v1.0, 1.1 ...). Repeatable.")
@click.option("--processor", metavar="TEXT", help="Only systems whose processor contains TEXT "
              "(any case), e.g. M4.")
@click.option("--framework", metavar="TEXT", help="Only systems whose framework contains TEXT "
              "(any case), e.g. X-CUBE-AI: the description's Inference Framework, else its ML Model "
              "Compiler(s) or Software Libraries where that is blank or N/A.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
def published(benchmark, results, mine, division, versions, processor, framework, as_json) -> None:
    """Rank published MLPerf Tiny results, and your run among them.

    Reads the published result trees (results.txt of every runner variant, system descriptions
    as submitters wrote them) and lists each system's median throughput (inf./s), latency
    (1000 / throughput, ms, as MLCommons' report derives it), accuracy (top-1 %, AUC for ad)
    and median energy per inference where published, highest throughput first.

    With --mine, your runs are ranked among them by their MLPerf Tiny median window throughput
    (single-stream runs) and marked YOURS; filters never hide them. A published figure is one
    number from one run on another system: a rank says where you stand, not that the systems
    differ by more than run-to-run noise (see 'tinyharness compare --published').

    Files that cannot be read, or lack their figure, are named on stderr with the reason.
    """
    from ..errors import UsageError
    from ..published import ranking
    from ..published.tree import read_published
    from ..results.read import load_runs
    from ..tables import Col, console, print_table

    short = ranking.short_name(benchmark) if benchmark else None
    wanted_versions = [ranking.version_name(v) for v in versions]
    store = read_published(published_paths(results))
    mine_entries = [ranking.mine_of(r) for r in load_runs(list(mine))] if mine else []
    if short and mine_entries:
        kept = [m for m in mine_entries if ranking.short_name(m.benchmark) == short]
        if not kept:
            raise UsageError(f"--mine holds no {benchmark} run (it holds "
                             f"{', '.join(sorted({m.benchmark for m in mine_entries}))})")
        mine_entries = kept
    if short:
        benchmarks = [short]
    elif mine_entries:
        benchmarks = list(dict.fromkeys(ranking.short_name(m.benchmark) for m in mine_entries))
    else:
        benchmarks = sorted({r.benchmark for r in store.results})
    tables = []
    for bench in benchmarks:
        chosen = ranking.select(store.results, bench, [division] if division else [], wanted_versions,
                                processor, framework)
        mine_here = [m for m in mine_entries if ranking.short_name(m.benchmark) == bench]
        tables.append((bench, ranking.ranked(chosen, mine_here), mine_here))
    if as_json:
        click.echo(json.dumps({
            "filters": {"benchmark": benchmark, "division": division, "versions": wanted_versions,
                        "processor": processor, "framework": framework},
            "paths": [str(p) for p in (results or published_paths(()))],
            "benchmarks": [{"benchmark": b, "results": [ranking.json_entry(e) for e in entries],
                            "mine": [ranking.standing(entries, m) for m in mine_here]}
                           for b, entries, mine_here in tables],
            "unreadable": [{"path": p, "reason": why} for p, why in store.unreadable],
            "variants": _variant_counts(store.variants)}, indent=1))
        return
    warn_unreadable(store.unreadable)
    out = console()
    # Numbers hold no spaces, so they never wrap; only the headers may, which keeps the table
    # as narrow as its longest names allow before it turns into blocks.
    columns = [Col(c, key=c in ("submitter", "system"), nowrap=c == "rank",
                   justify="right" if c in ("rank", "inf/s", "latency ms", "energy µJ/inf") else "left")
               for c in ranking.COLUMNS]
    for bench, entries, mine_here in tables:
        from ..submission.layout import BENCHMARK_OF

        shown = sum(not e.mine for e in entries)
        title = (f"{BENCHMARK_OF.get(bench, bench)} ({bench}): {shown} published result"
                 f"{'s' * (shown != 1)}, by median throughput")
        if not shown and not mine_here:
            out.print(f"{title}: none matches the filters")
            continue
        print_table(columns, [_styled(ranking.row(e), e.mine) for e in entries], title=title, out=out)
        for m in mine_here:
            out.print(ranking.standing(entries, m), soft_wrap=True, markup=False, highlight=False)
        out.print()


def _styled(cells: list[str], mine: bool):
    from rich.text import Text

    return [Text(c, style="bold reverse" if mine else "") for c in cells]


def _variant_counts(variants: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in variants.values():
        counts[v] = counts.get(v, 0) + 1
    return counts
