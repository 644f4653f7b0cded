"""The figures of ``tinyharness report``: per run (latency histogram and CDF, offline completions,
MLPerf Tiny windows, the accuracy pass's confusion matrix) and per benchmark (accuracy against
the target, headline figures across the runs). matplotlib (the Agg canvas, never pyplot) is
imported only when a figure is made, so this module imports without it.

Bars stand on linear axes with their values written on them; a log axis only where the values
span :data:`LOG_SPAN` or more, and then the axis label says so. INVALID runs are drawn hatched and
grey (with a legend); runs that did not finish are never plotted.
"""

from __future__ import annotations

from typing import Any, Callable

from .fileio import slug
from .results.read import RunRecord
from .results.summary import RunSummary

Figure = Any  # matplotlib.figure.Figure, typed loosely so the module imports without matplotlib
LOG_SPAN = 100.0  # bars on a log axis only when the largest is this many times the smallest or more
COLOR, INVALID_COLOR, HATCH = "#4c72b0", "#bdbdbd", "///"
PASS_COLOR, FAIL_COLOR = "#55a868", "#c44e52"


def _plain(text: Any) -> str:
    """Text safe for a matplotlib label: '$' would start mathtext (and can raise on bad input)."""
    return str(text).replace("$", r"\$")


def _figure(width: float = 7.5, height: float = 3.0, cols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    # The Agg canvas on each figure, not pyplot: no global backend switch, no GUI, no figure leak.
    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, cols)


def axis_scale(values) -> str:
    """"log" when the positive values span LOG_SPAN or more (a linear axis would flatten the
    small ones to nothing), else "linear": 43.6 against 65.4 is a 1.5x difference and must look
    like one."""
    values = [float(v) for v in values]
    if not values or min(values) <= 0:
        return "linear"
    return "log" if max(values) / min(values) >= LOG_SPAN else "linear"


def _title(run: RunRecord, what: str) -> str:
    flag = "" if run.summary.valid else " (INVALID)"
    return _plain(f"{run.summary.benchmark} · {run.label}{flag}: {what}")


def p50(s: RunSummary) -> float | None:
    return s.latency_us.p50 if s.latency_us is not None else None


def median_window(s: RunSummary) -> float | None:
    return s.windows.median_throughput_ips if s.windows is not None else None


# -- per run ---------------------------------------------------------------------------------

def latency_figure(run: RunRecord) -> Figure | None:
    """Histogram (log-spaced bins over the full range, nothing clipped) and CDF of the latencies;
    both on log axes (tails reach thousands of times the median), labelled so."""
    import numpy as np

    from .stats import percentile

    if run.latencies is None or not len(run.latencies) or run.key[1] != "single-stream":
        return None
    ns = np.sort(run.latencies)
    us = ns / 1e3
    fig, (hist, cdf) = _figure(cols=2)
    lo, hi = max(us[0], 1e-3), max(us[-1], 1e-3)
    bins = np.logspace(np.log10(lo), np.log10(hi * 1.0001 if hi > lo else lo * 2), 60)
    hist.hist(np.clip(us, lo, None), bins=bins, color=COLOR if run.summary.valid else INVALID_COLOR)
    hist.set(xscale="log", yscale="log", xlabel="latency (µs, log scale)", ylabel="queries (log scale)",
             title=_title(run, f"{len(us):,} queries"))
    idx = np.unique(np.linspace(0, len(us) - 1, 2000).astype(int))  # enough points for a smooth CDF
    cdf.plot(np.maximum(us[idx], lo), (idx + 1) / len(us), color=COLOR)
    for p, style in ((0.5, "--"), (0.9, ":")):
        value = percentile(ns, p) / 1e3  # LoadGen's rule, as the summary's p50/p90
        cdf.axvline(max(value, lo), color="#dd8452", linestyle=style,
                    label=f"p{int(p * 100)} {value:.3g} µs")
    cdf.set(xscale="log", xlabel="latency (µs, log scale)", ylabel="fraction of queries", ylim=(0, 1.01),
            title="CDF")
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
    ax.plot(done[idx], idx + 1, color=COLOR)
    ax.set(xlabel="time since issue (s)", ylabel="samples completed",
           title=_title(run, f"offline, {len(done):,} samples"))
    return fig


def windows_figure(run: RunRecord) -> Figure | None:
    win = run.summary.windows
    if win is None or not win.throughput_ips:
        return None
    values = win.throughput_ips
    fig, ax = _figure(height=2.6)
    bars = ax.bar([str(i) for i in range(1, len(values) + 1)], values,
                  color="#55a868" if run.summary.valid else INVALID_COLOR)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize="small", label_type="center")
    ax.axhline(win.median_throughput_ips, color="#c44e52", linestyle="--",
               label=f"median {win.median_throughput_ips:,.0f} inf/s")
    ax.set(xlabel="window", ylabel="inferences/s", title=_title(run, "MLPerf Tiny windows"))
    fig.legend(loc="outside upper right", fontsize="small", frameon=False)
    return fig


def confusion_of(s: RunSummary) -> tuple[list[list[int]], list[str]] | None:
    """(matrix, class names) of a run's confusion matrix metric (rows the true label), or None."""
    metric = s.accuracy.metrics.get("confusion") if s.accuracy is not None else None
    matrix = metric.detail.get("matrix") if metric is not None else None
    if not isinstance(matrix, list) or not matrix or any(
            not isinstance(row, list) or len(row) != len(matrix) for row in matrix):
        return None
    labels = metric.detail.get("labels")
    names = [str(n) for n in labels] if isinstance(labels, list) and len(labels) == len(matrix) \
        else [str(k) for k in range(len(matrix))]
    return matrix, names


def confusion_figure(run: RunRecord) -> Figure | None:
    """The confusion matrix as a heatmap: rows the true label, columns the predicted one, each
    cell coloured by the share of its row (classes of different sizes compare) and, up to 20
    classes, labelled with its count."""
    import numpy as np

    found = confusion_of(run.summary)
    if found is None:
        return None
    counts, names = np.asarray(found[0], dtype=float), [_plain(n) for n in found[1]]
    classes = len(names)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(max(4.0, 0.45 * classes + 2.0), 14.0)
    fig, ax = _figure(width=side + 1.2, height=side)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true label's files", shrink=0.8)
    ticks = range(classes)
    small = "x-small" if classes > 10 else "small"
    ax.set_xticks(ticks, names, rotation=45 if classes > 6 else 0, ha="right" if classes > 6 else "center",
                  fontsize=small)
    ax.set_yticks(ticks, names, fontsize=small)
    if classes <= 20:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=small,
                    color="white" if share[i, j] > 0.5 else "#222")
    ax.set(xlabel="predicted label", ylabel="true label",
           title=_title(run, f"confusion matrix, {int(counts.sum()):,} files"))
    return fig


# -- per benchmark ---------------------------------------------------------------------------

def _legend(fig, runs: list[RunRecord], colors: tuple[tuple[str, str], ...] = (), extra=()) -> None:
    """A figure legend above the plot: what the colours mean (``colors``: (colour, meaning)),
    the hatching where an INVALID run is drawn, and any ``extra`` handles."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=color, edgecolor="#555", label=label) for color, label in colors]
    if not all(r.summary.valid for r in runs):
        handles.append(Patch(facecolor=INVALID_COLOR, hatch=HATCH, edgecolor="#555", label="INVALID run"))
    handles += list(extra)
    if handles:
        fig.legend(handles=handles, loc="outside upper right", fontsize="small", ncols=len(handles),
                   frameon=False)


def _bars(ax, runs: list[RunRecord], heights: list[float], colors: list[str], labels: list[str]):
    """One bar per run, INVALID ones hatched, each with its value written on it."""
    bars = ax.bar(range(len(runs)), heights, color=colors, edgecolor="#555", linewidth=0.5)
    for bar, run in zip(bars, runs):
        if not run.summary.valid:
            bar.set_hatch(HATCH)
    ax.bar_label(bars, labels=labels, fontsize="small", padding=2)
    ax.set_xticks(range(len(runs)), [_plain(r.label) for r in runs], rotation=20, ha="right",
                  fontsize="small")
    return bars


COMPARED: list[tuple[str, str, Callable[[RunSummary], float | None], str]] = [
    ("p50 latency", "µs", p50, "lower is better"),
    ("median window throughput", "inferences/s", median_window, "higher is better"),
    ("offline throughput", "samples/s", lambda s: s.offline_throughput_ips, "higher is better"),
]


def comparison_figure(benchmark: str, runs: list[RunRecord]) -> Figure | None:
    """Across the runs of one benchmark: p50 latency, median window throughput and offline
    throughput, one panel each where two runs or more have it."""
    panels = []
    for title, unit, get, better in COMPARED:
        have = [(r, v) for r in runs if (v := get(r.summary)) is not None]
        if len(have) >= 2:  # one bar compares nothing
            panels.append((title, unit, better, [r for r, _ in have], [v for _, v in have]))
    if not panels:
        return None
    widths = [max(3.4, 1.0 + 0.75 * len(p[3])) for p in panels]
    fig, axes = _figure(width=min(sum(widths), 14.0), height=3.4, cols=len(panels))
    for ax, (title, unit, better, shown, values) in zip(axes if len(panels) > 1 else [axes], panels):
        scale = axis_scale(values)
        digits = 2 if max(values) < 10 else 1 if max(values) < 1000 else 0
        _bars(ax, shown, values, [COLOR if r.summary.valid else INVALID_COLOR for r in shown],
              [f"{v:,.{digits}f}" for v in values])
        ax.set_yscale(scale)
        if scale == "log":
            ax.set_ylim(min(values) / 2, max(values) * 4)
        else:
            ax.set_ylim(0, max(values) * 1.18)
        ax.set(title=f"{title} ({better})", ylabel=unit + (" (log scale)" if scale == "log" else ""))
        ax.title.set_fontsize("medium")
    fig.suptitle(_plain(f"{benchmark}: runs compared"))
    _legend(fig, [r for panel in panels for r in panel[3]])
    return fig


def accuracy_figure(benchmark: str, runs: list[RunRecord]) -> Figure | None:
    """Each run's accuracy as its distance to the target: the zero line is the target, a bar
    above it passes by that much (percentage points for top-1, AUC units for AUC)."""
    scored = [r for r in runs if (a := r.summary.accuracy) is not None and a.value is not None]
    if not scored:
        return None
    accs = [r.summary.accuracy for r in scored]
    top1 = accs[0].metric == "top1"
    gaps = [a.value - a.target for a in accs]
    labels = [f"{a.value:.2f} %\n{g:+.2f} pp" if top1 else f"AUC {a.value:.4f}\n{g:+.4f}"
              for a, g in zip(accs, gaps)]
    fig, ax = _figure(width=max(5.0, 2.0 + 1.15 * len(scored)), height=3.2)
    colors = [PASS_COLOR if a.passed else FAIL_COLOR for a in accs]
    _bars(ax, scored, gaps, colors, labels)
    lo, hi = min(0.0, *gaps), max(0.0, *gaps)
    span = max(hi - lo, 1.0 if top1 else 0.01)
    ax.set_ylim(lo - (0.45 if lo < 0 else 0.1) * span, hi + (0.45 if hi > 0 else 0.1) * span)
    targets = sorted({a.target for a in accs})
    target = (f"target {targets[0]:g}{' %' if top1 else ''} (the zero line)" if len(targets) == 1
              else "each run's target (the zero line)")
    line = ax.axhline(0, color="#222", linewidth=1.2, label=target)
    ax.set(ylabel="percentage points\nabove / below target" if top1 else "AUC above / below target",
           title=_plain(f"{benchmark}: accuracy, distance to the target ({accs[0].metric})"))
    meaning = [(PASS_COLOR, "meets the target")]
    if not all(a.passed for a in accs):
        meaning.append((FAIL_COLOR, "below the target"))
    _legend(fig, scored, tuple(meaning), [line])
    return fig


def figures(runs: list[tuple[int, RunRecord]]) -> list[tuple[str, int | None, str, Figure]]:
    """(file name without .png, the run's number or None for a per-benchmark figure, benchmark,
    figure) of numbered runs, in page order. Every name holds the benchmark id."""
    out = []
    makers = [("latency", latency_figure), ("offline", offline_figure), ("windows", windows_figure),
              ("confusion", confusion_figure)]
    for number, run in runs:
        stem = f"{number:02d}_{slug(run.key[0])}_{slug(run.label)}_{slug(run.key[1])}"
        for name, make in makers:
            if (fig := make(run)) is not None:
                out.append((f"{stem}_{name}", number, run.key[0], fig))
    for benchmark in dict.fromkeys(r.key[0] for _, r in runs):
        group = [r for _, r in runs if r.key[0] == benchmark]
        for name, make in (("comparison", comparison_figure), ("accuracy", accuracy_figure)):
            if (fig := make(benchmark, group)) is not None:
                out.append((f"{slug(benchmark)}_{name}", None, benchmark, fig))
    return out


def png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# -- against the published field -----------------------------------------------------------------

MINE_COLOR, OPEN_COLOR = "#dd8452", "#a6bddb"


def published_figure(benchmark: str, entries) -> Figure | None:
    """The user's result among published MLPerf Tiny results of one benchmark: one horizontal
    bar per result with a median throughput (``entries``: :func:`tinyharness.published.ranking.ranked`),
    fastest on top, on a log throughput axis (published results span four orders of magnitude);
    the user's bars highlighted and labelled with their rank, the published ones labelled
    ``submitter/system (version)``. None when no published result has a throughput."""
    from matplotlib.patches import Patch

    from .published.ranking import slug_name

    shown = [e for e in entries if e.throughput_ips]
    if not any(not e.mine for e in shown):
        return None
    values = [e.throughput_ips for e in shown]
    fig, ax = _figure(width=10.0, height=1.4 + 0.24 * len(shown))
    colors = [MINE_COLOR if e.mine else OPEN_COLOR if e.item.division == "open" else COLOR for e in shown]
    bars = ax.barh(range(len(shown)), values, color=colors, edgecolor="#555", linewidth=0.4)
    ranked_count = sum(e.rank is not None for e in entries)
    labels = []
    for bar, entry, value in zip(bars, shown, values):
        text = f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
        if entry.mine:
            bar.set_linewidth(1.5)
            if not entry.item.valid:
                bar.set_hatch(HATCH)
            text += f"  ← yours: rank {entry.rank} of {ranked_count}"
        labels.append(_plain(text))
    ax.bar_label(bars, labels=labels, fontsize="x-small", padding=3)
    ax.set_yticks(range(len(shown)), [_plain(slug_name(e)) for e in shown], fontsize="x-small")
    for tick, entry in zip(ax.get_yticklabels(), shown):
        if entry.mine:
            tick.set(fontweight="bold", color="#a0461b")
    ax.invert_yaxis()  # rank 1 on top
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 1.5, max(values) * 40)  # room for the labels right of the longest bar
    ax.set_ylim(len(shown) - 0.4, -0.6)
    ax.set(xlabel="median throughput, inferences/s; higher is better (log scale)",
           title=_plain(f"{benchmark}: your result among {sum(not e.mine for e in shown)} published "
                        "MLPerf Tiny results"))
    ax.grid(axis="x", which="major", color="#ddd", linewidth=0.6)
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=MINE_COLOR, edgecolor="#555", label="yours (tinyharness)"),
               Patch(facecolor=COLOR, edgecolor="#555", label="published, closed division")]
    if any(not e.mine and e.item.division == "open" for e in shown):
        handles.append(Patch(facecolor=OPEN_COLOR, edgecolor="#555", label="published, open division"))
    if any(e.mine and not e.item.valid for e in shown):
        handles.append(Patch(facecolor=MINE_COLOR, hatch=HATCH, edgecolor="#555", label="yours, INVALID run"))
    fig.legend(handles=handles, loc="outside upper right", fontsize="small", ncols=len(handles),
               frameon=False)
    return fig
