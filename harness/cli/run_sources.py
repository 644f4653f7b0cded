"""Where ``report`` and ``compare`` read runs from: paths, or the results database.

``sweep:ID`` is every run of a sweep (an id prefix of 4 or more characters will do) and
``query:EXPR`` the runs a ``tinyharness results query`` expression selects (``query:benchmark=kws01
sut=tflite-cpu valid=true``); both resolve to the run directories the database indexed.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError

PREFIXES = ("sweep:", "query:")


class RunSource(click.ParamType):
    """A path that exists, or a ``sweep:ID`` / ``query:EXPR`` token (resolved later, with --db)."""

    name = "PATH|sweep:ID|query:EXPR"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith(PREFIXES):
            return value
        return click.Path(exists=True, path_type=Path).convert(value, param, ctx)


def expand(sources, db: Path | None) -> list[Path]:
    """The run directories behind ``sources``, in order; paths pass through."""
    found: list[Path] = []
    for source in sources:
        if isinstance(source, str) and source.startswith(PREFIXES):
            found += _from_db(source, db)
        else:
            found.append(Path(source))
    return found


def _from_db(token: str, db: Path | None) -> list[Path]:
    from ..db import ResultsDB
    from ..db.query import parse_query

    kind, _, text = token.partition(":")
    if not text.strip():
        raise UsageError(f"{token!r} is empty: give {kind}:{'ID' if kind == 'sweep' else 'EXPR'}")
    with ResultsDB(db, create=False) as store:
        if kind == "sweep":
            rows = store.runs(sweep=_sweep_id(store, text.strip()))
        else:
            rows = list(store.iter_runs(parse_query(text)))
    paths = [Path(r["path"]) for r in rows if r.get("path")]
    missing = [p for p in paths if not p.is_dir()]
    if missing:
        raise UsageError(f"{token}: {len(missing)} indexed run director"
                         f"{'y is' if len(missing) == 1 else 'ies are'} gone (e.g. {missing[0]}); "
                         "'tinyharness results index PATH' re-indexes from what is on disk")
    if not paths:
        raise UsageError(f"{token} selects no runs in the results database")
    return paths


def _sweep_id(store, given: str) -> str:
    ids = [s["sweep_id"] for s in store.sweeps() if s["sweep_id"].startswith(given)]
    if len(given) < 4 or len(ids) != 1:
        known = ", ".join(s["sweep_id"] for s in store.sweeps()[:5]) or "none"
        why = "is ambiguous" if len(ids) > 1 else "matches no sweep"
        raise UsageError(f"sweep {given!r} {why} (sweeps: {known}; 'tinyharness results list "
                         "--sweep ID' shows one)")
    return ids[0]


def sweep_tables(sources, db: Path | None) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of each ``sweep:ID`` source's table, as the sweep printed it."""
    from ..db import ResultsDB
    from ..sweep.table import rows_for_report

    tables = []
    tokens = [s for s in sources if isinstance(s, str) and s.startswith("sweep:")]
    if not tokens:
        return tables
    with ResultsDB(db, create=False) as store:
        for token in tokens:
            sweep_id = _sweep_id(store, token.partition(":")[2].strip())
            name = next((s["name"] for s in store.sweeps() if s["sweep_id"] == sweep_id), "")
            headers, rows = rows_for_report(store.cells(sweep_id))
            tables.append((f"Sweep {name} ({sweep_id})", headers, rows))
    return tables
