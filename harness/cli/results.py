"""``tinyharness results``: the runs indexed in the results database, listed, shown, exported and
queried; ``results index`` rebuilds the index from run directories (which stay the record)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

import click

from .types import count

LIST_LIMIT = 50  # rows a table shows unless told otherwise (the newest)
DB_HELP = ("Results database (default: $TINYHARNESS_DB, else results.db in the user data "
           "directory).")


def db_option(function):
    return click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                        help=DB_HELP)(function)


def filter_options(function):
    """The filters of ``list`` and ``export``; each text filter is repeatable (any of them)."""
    options = [
        click.option("--benchmark", multiple=True, metavar="ID", help="Only this benchmark (repeatable)."),
        click.option("--sut", multiple=True, metavar="NAME", help="Only this SUT (repeatable)."),
        click.option("--scenario", multiple=True, metavar="NAME", help="Only this scenario (repeatable)."),
        click.option("--mode", multiple=True, metavar="MODE", help="performance, accuracy or all."),
        click.option("--state", multiple=True, metavar="STATE",
                     help="done, failed, interrupted or running (repeatable)."),
        click.option("--sweep", multiple=True, metavar="ID", help="Only the runs of this sweep."),
        click.option("--node", multiple=True, metavar="HOST", help="Only runs a sweep ran on this node."),
        click.option("--valid/--invalid", "valid", default=None, help="Only VALID (or INVALID) runs."),
        click.option("--since", metavar="DATE", help="Runs started on or after DATE (ISO date or "
                     "time, UTC unless it has an offset)."),
        click.option("--until", metavar="DATE", help="Runs started up to DATE (a date: that whole day)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _filters(given: dict[str, Any]):
    """The filter options given (click hands over every option, an empty one as None or ())."""
    from ..db import Filters

    return Filters.of(**{k: v for k, v in given.items() if v not in (None, ())})


def _open(db: Path | None):
    """The database to read: --db must exist; the default one may not yet (None: no runs)."""
    from ..db import ResultsDB, default_db_path

    if db is not None:
        return ResultsDB(db, create=False)
    return ResultsDB() if default_db_path().exists() else None


@click.group("results")
def results() -> None:
    """The results database: every run indexed as it finishes (run or sweep), to list, filter,
    show and export. The run directories stay the record: 'results index' rebuilds the index
    from them."""


@results.command("list")
@filter_options
@click.option("--limit", type=count(1), default=LIST_LIMIT, show_default=True, metavar="N",
              help="Show the newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list.")
@db_option
def list_runs(limit, as_json, db, **given) -> None:
    """List indexed runs, newest first, with their verdict, latency, throughput and accuracy."""
    _show_runs(db, _filters(given), limit, as_json, "--limit N")


@results.command("query")
@click.argument("expression", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list.")
@db_option
def query(expression, as_json, db) -> None:
    """List the runs that match EXPRESSION: key=value terms, all of which must match.

    \b
    e.g. tinyharness results query benchmark=kws01 sut=tflite-cpu valid=true since=2026-12-01
    Keys: benchmark, sut, scenario, mode, state, sweep, node (a comma-separated value matches
    any of its values), valid (true or false), since and until (ISO dates or times, UTC), limit.
    """
    from ..db import parse_query

    filters = parse_query(" ".join(expression))
    _show_runs(db, filters, filters.limit or LIST_LIMIT, as_json, "limit=N")


def _show_runs(db: Path | None, filters, limit: int, as_json: bool, more_hint: str) -> None:
    import dataclasses

    store = _open(db)
    if store is None:
        rows, total = [], 0
    else:
        with store:
            rows = list(store.iter_runs(dataclasses.replace(filters, limit=limit)))
            total = len(rows) if len(rows) < limit else store.count(filters)
    if as_json:
        click.echo(json.dumps([_json_row(r) for r in rows], indent=1))
        return
    if not rows:
        click.echo("no indexed runs match" if store is not None else
                   "no runs indexed yet: runs are indexed as they finish, or 'tinyharness results "
                   "index DIR' indexes run directories", err=True)
        return
    print_runs(rows)
    if total > len(rows):
        click.echo(f"the newest {len(rows)} of {total} runs; {more_hint} shows more", err=True)


def print_runs(rows: list[dict]) -> None:
    from ..tables import Col, print_table

    print_table((Col("run", key=True), Col("result", nowrap=True), "options",
                 Col("p50 us", nowrap=True, justify="right"), Col("p90 us", nowrap=True, justify="right"),
                 Col("throughput/s", nowrap=True, justify="right"), Col("accuracy", nowrap=True)),
                [(r["run_id"], verdict(r), _options(r["sut_options"]) or None, _number(r["p50_us"]),
                  _number(r["p90_us"]), _number(r["throughput_ips"]), _accuracy(r)) for r in rows])


def verdict(row: dict) -> str:
    """VALID or INVALID for a run that finished, else its state (failed, interrupted ...)."""
    if row["state"] != "done" or row["valid"] is None:
        return row["state"]
    return "VALID" if row["valid"] else "INVALID"


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _accuracy(row: dict) -> str | None:
    if row["accuracy"] is None:
        return None
    return f"AUC {row['accuracy']:.4f}" if row["accuracy_metric"] == "auc" else f"{row['accuracy']:.2f} %"


def _options(text: str | None) -> str:
    options = json.loads(text) if text else {}
    return " ".join(f"{k}={v}" for k, v in options.items())


def _json_row(row: dict) -> dict:
    """A row as JSON shows it: valid as true/false/null, sut_options as an object."""
    out = dict(row)
    out["valid"] = None if row["valid"] is None else bool(row["valid"])
    out["sut_options"] = json.loads(row["sut_options"]) if row.get("sut_options") else {}
    return out


@results.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the row as JSON.")
@db_option
def show(run_id, as_json, db) -> None:
    """Show one indexed run: every field of its row. RUN_ID may be the start of an id, or a run
    directory (its name is its id). The run directory itself: 'tinyharness show PATH'."""
    from ..errors import UsageError

    store = _open(db)
    if store is None:
        raise UsageError(f"run {run_id!r} is not indexed: no runs are yet")
    with store:
        row = store.run(_run_id(store, run_id))
    if as_json:
        click.echo(json.dumps(_json_row(row), indent=1))
        return
    from ..tables import Col, print_table

    print_table((Col("field", key=True), "value"),
                [(key, _shown(key, row)) for key in row], title=f"{row['run_id']}: {verdict(row)}")


def _run_id(store, given: str) -> str:
    """The run id ``given`` names: an id, the start of one, or a run directory's path."""
    from ..errors import UsageError

    name = Path(given).name if ("/" in given or Path(given).is_dir()) else given
    if store.run(name) is not None:
        return name
    found = store.run_ids(name)
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"{given!r} is the start of {'more than ' if len(found) >= 10 else ''}"
                         f"{len(found)} run ids ({', '.join(found[:3])} ...); give more of it")
    raise UsageError(f"no indexed run {given!r}; 'tinyharness results list' lists them, "
                     "'tinyharness results index DIR' adds run directories")


def _shown(key: str, row: dict) -> str | None:
    if key == "valid":
        return verdict(row)
    if key == "sut_options":
        return _options(row[key]) or None
    value = row[key]
    return None if value is None else str(value)


@results.command("export")
@filter_options
@click.option("--csv", "fmt", flag_value="csv", help="Comma-separated values with a header row.")
@click.option("--json", "fmt", flag_value="json", help="A JSON list of rows (valid as true/false, "
              "sut_options as an object).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write to FILE (default: standard output).")
@db_option
def export(fmt, output, db, **given) -> None:
    """Export indexed runs, newest first, as CSV or JSON: every field of the index.

    \b
    The columns, in this order (stable; new ones are only appended):
    run_id, path, benchmark, sut, scenario, mode, started, finished, state, valid, error,
    reasons, accuracy, accuracy_metric, p50_us, p90_us, throughput_ips, latency_us,
    sut_options, model, model_sha256, runtime, runtime_version, device, host,
    harness_version, sweep_id, cell_id, node, indexed_at
    Times are ISO 8601 UTC; valid is 1 (VALID), 0 (INVALID) or empty (did not finish);
    latencies in us, throughput in samples/s; sut_options is a JSON object.
    """
    from ..errors import UsageError

    if fmt is None:
        raise UsageError("give --csv or --json")
    store = _open(db)
    rows: Iterable[dict] = store.iter_runs(_filters(given)) if store is not None else iter(())
    try:
        if output is None:
            _write(fmt, rows, sys.stdout)
        else:
            _write_file(fmt, rows, output)
    finally:
        if store is not None:
            store.close()


def _write_file(fmt: str, rows: Iterable[dict], output: Path) -> None:
    """Write to a temporary file beside ``output``, renamed over it once complete."""
    import os
    import tempfile

    from ..errors import UsageError

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            _write(fmt, rows, handle)
        os.replace(tmp, output)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write(fmt: str, rows: Iterable[dict], out) -> None:
    """Rows as CSV or a JSON list, one row at a time (an export of any size in bounded memory)."""
    import csv

    from ..db.index import RUN_COLUMNS

    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=RUN_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        return
    out.write("[")
    for number, row in enumerate(rows):
        out.write(("," if number else "") + "\n " + json.dumps(_json_row(row)))
    out.write("\n]\n")


@results.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@db_option
def index(paths, db) -> None:
    """Index run directories (PATHs: runs, or folders of them, searched a few levels down) in the
    results database; a run indexed before is updated. What is not a run, or a damaged one, is
    skipped with a one-line warning."""
    from ..db import ResultsDB
    from ..errors import UsageError

    skipped: list[str] = []

    def warn(message: str) -> None:
        skipped.append(message)
        click.echo(f"warning: {message}", err=True)

    with ResultsDB(db) as store:
        indexed = store.rebuild(paths, warn=warn)
        where = store.path
    if not indexed:
        raise UsageError(f"no run directories indexed from {', '.join(map(str, paths))}"
                         + (" (see the warnings above)" if skipped else ""))
    click.echo(f"indexed {indexed} run director{'y' if indexed == 1 else 'ies'} in {where}")


@results.command("prune")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the rows that would be dropped; drop nothing.")
@db_option
def prune(paths, dry_run, db) -> None:
    """Drop the rows of runs whose run directory is gone (deleted or moved): of runs under PATHs,
    or of every run when none is given. The run directories are the record: a moved one comes
    back with 'results index NEWPATH'. A folder on a drive that is not mounted counts as gone, so
    name the folders you deleted from, or look first with --dry-run."""
    store = _open(db)
    if store is None:
        click.echo("no results database yet: nothing to prune")
        return
    with store:
        gone = store.prune(paths, dry_run=dry_run)
        where = store.path
    for row in gone:
        click.echo(f"{row['run_id']}\t{row['path']}")
    click.echo(f"{'would drop' if dry_run else 'dropped'} {len(gone)} run{'' if len(gone) == 1 else 's'} "
               f"whose directory is gone, from {where}")
