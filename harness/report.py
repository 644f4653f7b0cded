"""``tinyharness report``: one self-contained HTML page (or PNG files) about runs and packages.

The page has no external assets: plots are PNGs embedded as base64 data URIs, styles are inline,
and every string that comes from a run is HTML-escaped (a SUT name is user input). Figures use
matplotlib's Agg backend, imported only when a report is made.
"""

from __future__ import annotations

import base64
import html
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UsageError
from .fileio import atomic_write, slug
from .results.read import RunRecord, load_runs
from .results.summary import RunSummary

MAX_RUNS = 500  # runs in one report: each adds figures (and seconds) to a page held in memory

_CSS = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}"
        "th{background:#f2f2f2}.ok{color:#176d2c}.bad{color:#b00020}img{max-width:100%;margin:.5em 0}"
        "code{font-size:.85em}")
Figure = Any  # matplotlib.figure.Figure, typed loosely so the module imports without matplotlib


def _plain(text: Any) -> str:
    """Text safe for a matplotlib label: '$' would start mathtext (and can raise on bad input)."""
    return str(text).replace("$", r"\$")


def _num(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _accuracy_cell(s: RunSummary) -> str:
    acc = s.accuracy
    if acc is None:
        return "-"
    value = "undefined" if acc.value is None else f"{acc.value:g}"
    return f"{acc.metric} {value} vs target {acc.target:g} ({'pass' if acc.passed else 'fail'})"


def row_of(run: RunRecord) -> dict[str, str]:
    """The summary-table cells of one run (plain text; escaped when rendered)."""
    s, lat, sy = run.summary, run.summary.latency_us, run.summary.system
    return {
        "benchmark": s.benchmark, "SUT": run.label, "scenario": s.scenario,
        "valid": "VALID" if s.valid else "INVALID",
        "p50 (µs)": _num(_p50(s)), "p90 (µs)": _num(None if lat is None else lat.p90),
        "early-stopping p90 (µs)": _num(None if lat is None else lat.p90_early_stopping),
        "median window throughput (inf/s)": _num(_median_window(s), 1),
        "offline throughput (samples/s)": _num(s.offline_throughput_ips, 1),
        "accuracy": _accuracy_cell(s),
        "runtime": f"{sy.runtime} {sy.runtime_version}".strip(),
        "precision": sy.precision,
        "threads": "-" if sy.threads is None else str(sy.threads),
    }


def _p50(s: RunSummary) -> float | None:
    return s.latency_us.p50 if s.latency_us is not None else None


def _median_window(s: RunSummary) -> float | None:
    return s.windows.median_throughput_ips if s.windows is not None else None


# -- figures ---------------------------------------------------------------------------------

def _figure(width: float = 7.5, height: float = 3.0, cols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    # The Agg canvas on each figure, not pyplot: no global backend switch, no GUI, no figure leak.
    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, cols)


def latency_figure(run: RunRecord) -> Figure | None:
    """Histogram (log-spaced bins over the full range, nothing clipped) and CDF of the latencies."""
    import numpy as np

    from .stats import percentile

    if run.latencies is None or not len(run.latencies) or run.key[1] != "single-stream":
        return None
    ns = np.sort(run.latencies)
    us = ns / 1e3
    fig, (hist, cdf) = _figure(cols=2)
    lo, hi = max(us[0], 1e-3), max(us[-1], 1e-3)
    bins = np.logspace(np.log10(lo), np.log10(hi * 1.0001 if hi > lo else lo * 2), 60)
    hist.hist(np.clip(us, lo, None), bins=bins, color="#4c72b0")
    hist.set(xscale="log", yscale="log", xlabel="latency (µs)", ylabel="queries",
             title=_plain(f"{run.label}: {len(us):,} queries"))
    idx = np.unique(np.linspace(0, len(us) - 1, 2000).astype(int))  # enough points for a smooth CDF
    cdf.plot(np.maximum(us[idx], lo), (idx + 1) / len(us), color="#4c72b0")
    for p, style in ((0.5, "--"), (0.9, ":")):
        value = percentile(ns, p) / 1e3  # LoadGen's rule, as the summary's p50/p90
        cdf.axvline(max(value, lo), color="#dd8452", linestyle=style, label=f"p{int(p * 100)} {value:.3g} µs")
    cdf.set(xscale="log", xlabel="latency (µs)", ylabel="fraction of queries", ylim=(0, 1.01), title="CDF")
    cdf.legend(loc="lower right", fontsize="small")
    return fig


def offline_figure(run: RunRecord) -> Figure | None:
    """Offline: samples completed against time since the query was issued."""
    import numpy as np

    if run.latencies is None or not len(run.latencies) or run.key[1] != "offline":
        return None
    done = np.sort(run.latencies) / 1e9
    idx = np.unique(np.linspace(0, len(done) - 1, 2000).astype(int))
    fig, ax = _figure()
    ax.plot(done[idx], idx + 1, color="#4c72b0")
    ax.set(xlabel="time since issue (s)", ylabel="samples completed",
           title=_plain(f"{run.label}: offline, {len(done):,} samples"))
    return fig


def windows_figure(run: RunRecord) -> Figure | None:
    win = run.summary.windows
    if win is None or not win.throughput_ips:
        return None
    values = win.throughput_ips
    fig, ax = _figure(height=2.6)
    ax.bar([str(i) for i in range(1, len(values) + 1)], values, color="#55a868")
    ax.axhline(win.median_throughput_ips, color="#c44e52", linestyle="--", label="median")
    ax.set(xlabel="window", ylabel="inferences/s", title=_plain(f"{run.label}: MLPerf Tiny windows"))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def accuracy_figure(benchmark: str, runs: list[RunRecord]) -> Figure | None:
    scored = [r for r in runs if (a := r.summary.accuracy) is not None and a.value is not None]
    if not scored:
        return None
    fig, ax = _figure(height=2.6)
    accs = [r.summary.accuracy for r in scored]
    ax.bar([_plain(r.label) for r in scored], [a.value for a in accs],
           color=["#55a868" if a.passed else "#c44e52" for a in accs])
    for target in sorted({a.target for a in accs}):
        ax.axhline(target, color="#333", linestyle="--", label=f"target {target:g}")
    ax.set(ylabel=_plain(accs[0].metric), title=_plain(f"{benchmark}: accuracy against target"))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def comparison_figure(benchmark: str, runs: list[RunRecord]) -> Figure | None:
    """Across SUTs: p50 latency, median window throughput and offline throughput, where present."""
    panels = [(title, [(r.label, v) for r in runs if (v := get(r.summary)) is not None])
              for title, get in (
                  ("p50 latency (µs)", _p50),
                  ("median window throughput (inf/s)", _median_window),
                  ("offline throughput (samples/s)", lambda s: s.offline_throughput_ips))]
    panels = [p for p in panels if len(p[1]) >= 2]  # one bar compares nothing
    if not panels:
        return None
    fig, axes = _figure(width=3.6 * len(panels), height=3.0, cols=len(panels))
    for ax, (title, bars) in zip(axes if len(panels) > 1 else [axes], panels):
        ax.bar([_plain(label) for label, _ in bars], [v for _, v in bars], color="#8172b3")
        ax.set(title=title, yscale="log")
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    fig.suptitle(_plain(f"{benchmark}: across SUTs"))
    return fig


def figures(runs: list[RunRecord]) -> list[tuple[str, int | None, Figure]]:
    """(name, run index or None for a per-benchmark figure, figure), in page order."""
    out = []
    makers: list[tuple[str, Callable]] = [("latency", latency_figure), ("offline", offline_figure),
                                          ("windows", windows_figure)]
    for i, run in enumerate(runs):
        for name, make in makers:
            if (fig := make(run)) is not None:
                out.append((f"{i + 1:02d}_{slug(run.label)}_{slug(run.key[1])}_{name}", i, fig))
    for benchmark in dict.fromkeys(r.key[0] for r in runs):
        group = [r for r in runs if r.key[0] == benchmark]
        for name, make in (("accuracy", accuracy_figure), ("comparison", comparison_figure)):
            if (fig := make(benchmark, group)) is not None:
                out.append((f"{slug(benchmark)}_{name}", None, fig))
    return out


def _png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# -- HTML ------------------------------------------------------------------------------------

def _table(runs: list[RunRecord]) -> str:
    e = html.escape
    rows = [row_of(r) for r in runs]
    head = "".join(f"<th>{e(c)}</th>" for c in rows[0])
    cls = {"VALID": ' class="ok"', "INVALID": ' class="bad"'}
    body = "".join("<tr>" + "".join(f"<td{cls.get(v, '') if k == 'valid' else ''}>{e(v)}</td>"
                                    for k, v in row.items()) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(name: str, data: bytes) -> str:
    return (f'<img alt="{html.escape(name)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode("ascii")}">')


def _run_section(number: int, run: RunRecord) -> list[str]:
    """The heading, path and (escaped) invalid reasons and errors of one run."""
    e, s = html.escape, run.summary
    parts = [f"<h2>{number}. {e(run.label)} &middot; {e(s.benchmark)} "
             f"&middot; {e(s.scenario)}</h2><p><code>{e(run.path)}</code></p>"]
    reasons = [*map(str, s.invalid_reasons), *s.errors]
    if reasons:
        parts.append("<ul>" + "".join(f'<li class="bad">{e(r)}</li>' for r in reasons) + "</ul>")
    return parts


def render_html(runs: list[RunRecord], images: list[tuple[str, int | None, bytes]]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>tinyharness report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>tinyharness report</h1>", _table(runs)]
    for i, run in enumerate(runs):
        parts += _run_section(i + 1, run)
        parts += [_img(name, data) for name, index, data in images if index == i]
    benchmarks = [(name, data) for name, index, data in images if index is None]
    if benchmarks:
        parts.append("<h2>Per benchmark</h2>")
        parts += [_img(name, data) for name, data in benchmarks]
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


def make_report(paths, output: Path, fmt: str = "html") -> list[Path]:
    """Write the report; returns the files written."""
    output = Path(output)
    check_output(output, fmt)
    runs = load_runs(paths)
    if len(runs) > MAX_RUNS:
        raise UsageError(f"{len(runs):,} runs; a report shows at most {MAX_RUNS:,}, give fewer paths")
    images = [(name, index, _png(fig)) for name, index, fig in figures(runs)]
    if fmt == "png":
        written: list[Path] = []
        for name, _, data in images:
            path = output / f"{name}.png"
            if path in written:  # two names that slug alike
                path = output / f"{name}_{len(written) + 1}.png"
            _write(path, data, output)
            written.append(path)
        return written
    _write(output, render_html(runs, images).encode("utf-8"), output)
    return [output]
