"""``tinyharness report``: one self-contained HTML page (or PNG files) about runs and packages.

The page has no external assets: plots are PNGs embedded as base64 data URIs, styles are inline,
and every string that comes from a run is HTML-escaped (a SUT name is user input). The table
lists every run, those that did not finish too (marked, with their reason); the figures
(:mod:`.report_charts`, matplotlib's Agg backend, an optional extra) show finished runs only.
"""

from __future__ import annotations

import base64
import html
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

from .errors import UsageError
from .fileio import atomic_write
from .results.read import RunRecord, SkippedRun, load_runs
from .results.summary import RunSummary

MAX_RUNS = 500  # runs in one report: each adds figures (and seconds) to a page held in memory
NEEDS_MATPLOTLIB = "tinyharness report needs matplotlib: pip install 'tinyharness[report]'"
Entry = Union[RunRecord, SkippedRun]

_CSS = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.8em;"
        "vertical-align:top}th{background:#f2f2f2}td.num{text-align:right;white-space:nowrap}"
        "td.reason{max-width:24em}td.date{white-space:nowrap}.ok{color:#176d2c;font-weight:bold}"
        ".bad{color:#b00020;font-weight:bold}"
        "tr.skipped td{color:#777;background:#f7f7f7}tr.skipped td.bad{color:#b00020}"
        "img{max-width:100%;margin:.5em 0;display:block}code{font-size:.85em}h2{margin-top:1.6em;"
        "border-bottom:1px solid #ccc}p.note{color:#555;font-size:.85em;max-width:70em}"
        "tr.mine td{background:#fde9d9;font-weight:bold}")
_NOTE = ("p50/p90: single-stream latency percentiles (LoadGen's rule); early-stopping p90: the "
         "estimate MLPerf reports; window median: the MLPerf Tiny median window throughput; offline: "
         "samples per second. Runs that did not finish are listed but not plotted. Hatched grey "
         "bars are INVALID runs.")


def require_matplotlib() -> None:
    """A one-line UsageError when matplotlib (the ``report`` extra) is not importable."""
    import importlib

    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise UsageError(NEEDS_MATPLOTLIB) from None


# -- the table -------------------------------------------------------------------------------

def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _date(iso: str | None) -> str:
    """'2026-12-01 22:40' (UTC) from an ISO time; the text itself when it is not one."""
    if not iso:
        return "-"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M")


def accuracy_cell(s: RunSummary) -> str:
    """'98.33 % (target 90 %, pass)' for top-1, 'AUC 0.8620 (target 0.85, fail)' for AUC."""
    acc = s.accuracy
    if acc is None:
        return "-"
    top1 = acc.metric == "top1"
    target = f"target {acc.target:g}{' %' if top1 else ''}"
    if acc.value is None:
        return f"{acc.metric} undefined ({target})"
    value = f"{acc.value:.2f} %" if top1 else f"{acc.metric.upper()} {acc.value:.4f}"
    return f"{value} ({target}, {'pass' if acc.passed else 'fail'})"


def result_of(entry: Entry) -> str:
    """VALID or INVALID for a finished run; FAILED, INTERRUPTED, UNFINISHED ... for one that did not."""
    if isinstance(entry, RunRecord):
        return "VALID" if entry.summary.valid else "INVALID"
    return {"running": "UNFINISHED", "done": "INCOMPLETE", "no status.json": "INCOMPLETE",
            "unreadable": "UNKNOWN"}.get(entry.state, entry.state.upper())


def reasons_of(entry: Entry) -> list[str]:
    if isinstance(entry, SkippedRun):
        return [entry.reason]
    return [*map(str, entry.summary.invalid_reasons), *entry.summary.errors]


def row_of(entry: Entry) -> dict[str, str]:
    """The summary-table cells of one run (plain text; escaped when rendered)."""
    row = {"benchmark": entry.key[0], "SUT": entry.label, "scenario": entry.key[1]}
    if isinstance(entry, SkippedRun):
        row.update({"mode": entry.mode or "-", "started (UTC)": _date(entry.started),
                    "result": result_of(entry), "reason": "; ".join(reasons_of(entry))})
        return row | {column: "-" for column in _MEASURED}
    s, lat, sy = entry.summary, entry.summary.latency_us, entry.summary.system
    row.update({"mode": s.mode, "started (UTC)": _date(s.started), "result": result_of(entry),
                "reason": "; ".join(reasons_of(entry))})
    return row | {
        "p50 (µs)": _num(None if lat is None else lat.p50),
        "p90 (µs)": _num(None if lat is None else lat.p90),
        "early-stopping p90 (µs)": _num(None if lat is None else lat.p90_early_stopping),
        "window median (inf/s)": _num(s.windows.median_throughput_ips if s.windows else None, 1),
        "offline (samples/s)": _num(s.offline_throughput_ips, 1),
        "accuracy": accuracy_cell(s),
        "runtime": _runtime(sy),
    }


def _runtime(sy) -> str:
    """'onnxruntime 1.32.0, float32, 1 thread': the runtime, its version, precision and threads."""
    threads = [] if sy.threads is None else [f"{sy.threads} thread{'s' * (sy.threads != 1)}"]
    return ", ".join([f"{sy.runtime} {sy.runtime_version}".strip(), sy.precision, *threads])


_MEASURED = ("p50 (µs)", "p90 (µs)", "early-stopping p90 (µs)", "window median (inf/s)",
             "offline (samples/s)", "accuracy", "runtime")
_NUMERIC = {c for c in _MEASURED if "(" in c}


def ordered(runs: list[RunRecord], skipped: list[SkippedRun]) -> list[Entry]:
    """Every run in path order, grouped by benchmark (in order of first appearance); the skipped
    runs back where they were read."""
    merged: list[Entry] = []
    left = sorted(skipped, key=lambda s: s.position)
    for i, run in enumerate([*runs, None]):
        while left and left[0].position == i:
            merged.append(left.pop(0))
        if run is not None:
            merged.append(run)
    benchmarks = list(dict.fromkeys(e.key[0] for e in merged))
    return sorted(merged, key=lambda e: benchmarks.index(e.key[0]))


# -- HTML ------------------------------------------------------------------------------------

def _table(entries: list[Entry]) -> str:
    e = html.escape
    rows = [row_of(entry) for entry in entries]
    head = "<th>#</th>" + "".join(f"<th>{e(c)}</th>" for c in rows[0])
    body = []
    for number, (entry, row) in enumerate(zip(entries, rows), start=1):
        cells = [f'<td class="num">{number}</td>']
        for column, value in row.items():
            cls = ("ok" if value == "VALID" else "bad") if column == "result" else (
                "num" if column in _NUMERIC else "date" if column == "started (UTC)" else
                "reason" if column == "reason" else "")
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{e(value)}</td>")
        kind = ' class="skipped"' if isinstance(entry, SkippedRun) else ""
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _img(name: str, data: bytes) -> str:
    return (f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode("ascii")}">')


def _run_section(number: int, entry: Entry) -> list[str]:
    """The heading, path and (escaped) reasons of one run."""
    e, result = html.escape, result_of(entry)
    mode = entry.mode if isinstance(entry, SkippedRun) else entry.summary.mode
    parts = [f"<h3>{number}. {e(entry.label)} &middot; {e(entry.key[1])} &middot; "
             f"{e(mode) + ' &middot; ' if mode else ''}"
             f'<span class="{"ok" if result == "VALID" else "bad"}">{e(result)}</span></h3>'
             f"<p><code>{e(entry.path)}</code></p>"]
    if isinstance(entry, SkippedRun):
        parts.append(f"<p>Not plotted: the run did not finish (status: {e(entry.state)}).</p>")
    elif entry.summary.accuracy is not None and entry.summary.accuracy.metrics:
        shown = [f"{name} {m.shown}" for name, m in entry.summary.accuracy.metrics.items()
                 if "matrix" not in m.detail]  # a matrix is drawn below, not written
        parts += [f"<p>Quality metrics: {e('; '.join(shown))}</p>"] if shown else []
    if reasons := [r for r in reasons_of(entry) if r]:
        parts.append("<ul>" + "".join(f'<li class="bad">{e(r)}</li>' for r in reasons) + "</ul>")
    return parts


# -- against published results -----------------------------------------------------------------

_PUBLISHED_NOTE = ("Published figures are single numbers from one run each on another system: the "
                   "median throughput of five windows, latency = 1000 / throughput (as MLCommons' "
                   "report derives it), top-1 % (AUC for ad), the median energy per inference where "
                   "published. A rank says where a run stands, not that two systems differ beyond "
                   "run-to-run noise ('tinyharness compare --published' says that).")
_PUBLISHED_NUMERIC = {"rank", "inf/s", "latency ms", "energy µJ/inf"}
NUM, MINE = ' class="num"', ' class="mine"'


def _published_table(entries) -> str:
    from .published.ranking import COLUMNS, row

    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = []
    for entry in entries:
        cells = "".join(f"<td{NUM if c in _PUBLISHED_NUMERIC else ''}>{e(v)}</td>"
                        for c, v in zip(COLUMNS, row(entry)))
        body.append(f"<tr{MINE if entry.mine else ''}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def published_sections(runs: list[RunRecord], paths) -> list[tuple[str, str, bytes | None, str]]:
    """(benchmark, figure name, PNG or None, HTML) for each benchmark of the runs that the
    published trees at ``paths`` have results of: the ranking chart and table, the runs ranked
    among all published results of the benchmark (every version and division)."""
    from .fileio import slug
    from .published import ranking
    from .published.tree import read_published
    from .report_charts import png, published_figure

    store = read_published(paths)
    sections = []
    for benchmark in dict.fromkeys(r.key[0] for r in runs):
        if benchmark not in ranking.SHORT:
            continue
        mine = [ranking.mine_of(r) for r in runs if r.key[0] == benchmark]
        field = ranking.select(store.results, ranking.short_name(benchmark))
        if not field:
            continue
        entries = ranking.ranked(field, mine)
        fig = published_figure(benchmark, entries)
        name = f"{slug(benchmark)}_published"
        standing = "".join(f"<li>{html.escape(ranking.standing(entries, m))}</li>" for m in mine)
        unreadable = (f" {len(store.unreadable)} file{'s' * (len(store.unreadable) != 1)} of the "
                      "published trees could not be read ('tinyharness published --json' lists "
                      "them)." if store.unreadable else "")
        parts = [f"<h3>Against {len(field)} published results</h3>", f"<ul>{standing}</ul>"]
        data = None if fig is None else png(fig)
        if data is not None:
            parts.append(_img(name, data))
        parts += [_published_table(entries),
                  f'<p class="note">{html.escape(_PUBLISHED_NOTE + unreadable)}</p>']
        sections.append((benchmark, name, data, "\n".join(parts)))
    return sections


def _sweep_section(title: str, headers: list[str], rows: list[list[str]]) -> str:
    from .sweep.table import LEGEND

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"
            f'<p class="note">{html.escape(LEGEND)}</p>')


def render_html(entries: list[Entry], images: list[tuple[str, int | None, str, bytes]],
                published: dict[str, str] | None = None, sweeps=()) -> str:
    benchmarks = list(dict.fromkeys(entry.key[0] for entry in entries))
    unfinished = sum(isinstance(entry, SkippedRun) for entry in entries)
    summary = (f"{len(entries)} run{'s' * (len(entries) != 1)} of {len(benchmarks)} benchmark"
               f"{'s' * (len(benchmarks) != 1)}" + (f"; {unfinished} did not finish" if unfinished else ""))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>tinyharness report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>tinyharness report</h1>", f"<p>{html.escape(summary)}.</p>", _table(entries),
             f'<p class="note">{html.escape(_NOTE)}</p>']
    parts += [_sweep_section(*table) for table in sweeps]
    for benchmark in benchmarks:
        parts.append(f"<h2>{html.escape(benchmark)}</h2>")
        parts += [_img(name, data) for name, number, of, data in images if number is None and of == benchmark]
        if published and benchmark in published:
            parts.append(published[benchmark])
        for number, entry in enumerate(entries, start=1):
            if entry.key[0] == benchmark:
                parts += _run_section(number, entry)
                parts += [_img(name, data) for name, index, _, data in images if index == number]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def check_output(output: Path, fmt: str = "html") -> None:
    """Refuse an ``--output`` the report cannot be written to, before any work: for html a file
    path (not a folder, FIFO or device), for png a folder; its nearest existing folder writable
    and nothing on the way a file. A one-line UsageError naming the path."""
    output = Path(output)
    try:
        mode = os.stat(output).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the latter: a file on the way, named below
        mode = None
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot use it: {exc.strerror}") from None
    if fmt == "png" and mode is not None and not stat.S_ISDIR(mode):
        raise UsageError(f"--output {output} exists and is not a folder; with --format png give a "
                         "folder for the PNG files")
    if fmt != "png" and mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"--output {output} is a folder; give the HTML file's path, e.g. "
                         f"{output / 'report.html'}")
    if fmt != "png" and mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"--output {output} is not a regular file (a FIFO or device?); give the "
                         "HTML file's path")
    folder = output if fmt == "png" else output.parent
    existing = folder.absolute()
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--output {output}: {existing} is a file, not a folder; give a path in "
                         "a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: the folder {existing} is not writable; give a path "
                         "in a folder you can write to")


def _write(path: Path, data: bytes, output: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)  # a temporary file renamed over the path: never opens a FIFO there
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write {path}: {exc.strerror or exc}") from None


def make_report(paths, output: Path, fmt: str = "html", published=(), sweeps=()) -> list[Path]:
    """Write the report; returns the files written. Runs that did not finish are left out of the
    figures, with a warning each (:func:`~tinyharness.results.read.load_runs`). With
    ``published`` (paths of MLPerf Tiny results trees), each benchmark also gets the runs
    ranked among the published results: a chart (``<benchmark>_published.png``) and a table.
    ``sweeps``: (title, headers, rows) of sweep tables, shown after the runs' table (html only)."""
    from .report_charts import figures, png

    output = Path(output)
    require_matplotlib()
    check_output(output, fmt)
    skipped: list[SkippedRun] = []
    runs = load_runs(paths, skipped)
    if len(runs) + len(skipped) > MAX_RUNS:
        raise UsageError(f"{len(runs) + len(skipped):,} runs; a report shows at most {MAX_RUNS:,}, "
                         "give fewer paths")
    entries = ordered(runs, skipped)
    numbered = [(n, e) for n, e in enumerate(entries, start=1) if isinstance(e, RunRecord)]
    images = [(name, number, benchmark, png(fig)) for name, number, benchmark, fig in figures(numbered)]
    sections = published_sections(runs, published) if published else []
    if fmt == "png":
        images += [(name, None, benchmark, data) for benchmark, name, data, _ in sections if data]
        written: list[Path] = []
        for name, *_, data in images:
            path = output / f"{name}.png"
            if path in written:  # two names that slug alike
                path = output / f"{name}_{len(written) + 1}.png"
            _write(path, data, output)
            written.append(path)
        return written
    html_page = render_html(entries, images, {benchmark: part for benchmark, _, _, part in sections},
                            sweeps)
    _write(output, html_page.encode("utf-8"), output)
    return [output]
