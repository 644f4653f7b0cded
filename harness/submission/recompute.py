"""``tinyharness check`` recomputes every figure an embedded run reports from the records the run
keeps beside it, and never trusts a reported one. Each disagreement is a violation at the file
that holds the figure, naming the reported and the recomputed value.

What is recomputed, from what:

- accuracy (top-1 %): the argmax of each response's raw outputs in ``accuracy.json`` (``data``,
  dtype from summary.json) against the label the same entry carries; AUC (AD): ROC AUC of the
  files' mean window ``score`` against their labels. The labels come from the package itself
  (the dataset is not in it): a forger who rewrites the labels too is caught only by comparing
  ``dataset.sha256`` with the official label file.
- windows: each window's throughput from its inferences and runtime, their median and
  ``latency_us``; the ``window_result`` events of ``detail.txt`` must record the same windows.
- latency (host-timed single-stream): count, min, mean, LoadGen percentiles
  (``sorted[floor(n * p)]``), the early-stopping p90 and each ``--repeat`` repetition's p50/p90
  from ``latencies.npy``. A device-timed run has no latencies.npy, and a run past the exact
  limit (``exact: false``) summarised a histogram: their latency figures are not recomputed.
- plausibility: a window cannot run more than ``PLAUSIBLE`` times faster than the fastest query
  the same run timed (see below).
- summary.txt: the accuracy, median, latency and window figures it shows, where it shows them.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .runfiles import RunFiles

# A window infers one sample N times with the clock read only at its ends; a timed query runs the
# same infer() with one clock read inside its interval (about 50 ns, up to ~1 us on a VM with a
# slow clock source). So a window's mean inference is no faster than the fastest of a run's
# thousands of queries, give or take that read, a warm cache on the repeated sample and a
# frequency change between the phases: measured here 0.25-1.0x on the MLPerf Tiny models and
# 1.17x on the 1.7 us digits01 model, where the clock read is a tenth of the latency. 1.5x
# leaves room for that and still catches a window throughput inflated 3x on an idle machine.
PLAUSIBLE = 1.5
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p97", 0.97), ("p99", 0.99),
               ("p999", 0.999))
Found = list[tuple[str, str, str]]  # (file in the run folder, rule, message)


@dataclass
class Figures:
    """What the records give, for the checker to hold results.txt against (None: not given)."""

    accuracy: float | None = None
    throughputs: list[float] = field(default_factory=list)
    median: float | None = None
    tolerance: float = 1e-3  # how far a correctly rounded throughput can be from the recomputed one


def _far(reported: Any, actual: float, tolerance: float) -> bool:
    """True unless ``reported`` is a number within ``tolerance`` (NaN and non-numbers are far)."""
    if isinstance(reported, bool) or not isinstance(reported, (int, float)):
        return True
    return not abs(reported - actual) <= tolerance


def recompute(summary, files: RunFiles, metric: str | None) -> tuple[Figures, Found]:
    """The figures of one sound run (``summary`` a RunSummary, ``metric`` the rule set's)."""
    figures, found = Figures(), []
    sections = ((summary.accuracy is not None and metric, lambda: _accuracy(summary, files, metric, figures)),
                (summary.windows is not None, lambda: _windows(summary, files, figures)),
                (summary.latency_us is not None and summary.offline is None, lambda: _latency(summary, files)),
                (True, lambda: _summary_txt(summary, files, figures)))  # last: it shows the others
    for wanted, section in sections:
        if not wanted:
            continue
        try:
            found += section()
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, ZeroDivisionError) as exc:
            found.append(("summary.json", "recompute", f"a reported figure cannot be recomputed from "
                                                       f"the run's records ({type(exc).__name__}: {exc})"))
    return figures, found


# -- accuracy --------------------------------------------------------------------------------------
def _accuracy(summary, files: RunFiles, metric: str, figures: Figures) -> Found:
    entries = files.docs.get("accuracy.json")
    if not isinstance(entries, list) or not entries:
        return []  # the run checker reports a missing or empty log
    acc, found = summary.accuracy, []
    if acc.metric != metric:
        found.append(("summary.json", "accuracy-mismatch", f"the accuracy metric is {acc.metric!r}; "
                                                           f"the rule set's is {metric!r}"))
    if any(not isinstance(e.get("label"), int) for e in entries):
        return found + [("accuracy.json", "accuracy-mismatch", "an entry without a label: the "
                                                               "accuracy cannot be recomputed")]
    groups = _files(entries)
    if metric == "top1":
        value, source, problems = _top1(entries, acc.output.dtype)
    else:
        value, source, problems = _auc(entries, groups)
    found += problems
    if problems:
        return found
    figures.accuracy = value
    label, shown = _shown(metric)
    if acc.files != len(groups):
        found.append(("summary.json", "accuracy-mismatch", f"summary.json accuracy.files {acc.files} "
                                                           f"but accuracy.json lists {len(groups)} files"))
    if (acc.value is None) != (value is None) or (value is not None and _far(acc.value, value, 1e-6)):
        found.append(("summary.json", "accuracy-mismatch", f"summary.json {label} {shown(acc.value)} "
                                                           f"but {source} give {shown(value)}"))
    for event in files.event_values("accuracy_result")[:1]:
        said = event.get("value") if isinstance(event, dict) else event
        if (said is None) != (value is None) or (value is not None and _far(said, value, 1e-6)):
            found.append(("detail.txt", "accuracy-mismatch", f"detail.txt accuracy_result {label} "
                                                             f"{shown(said)} but {source} give {shown(value)}"))
    return found


def _shown(metric: str):
    """('accuracy', '90.2 %') or ('AUC', '0.862') as a message shows a reported or recomputed value."""
    def value(v: Any) -> str:
        if v is None:
            return "undefined"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return repr(v)
        return f"{v:g} %" if metric == "top1" else f"{v:g}"
    return ("accuracy" if metric == "top1" else "AUC"), value


def _files(entries: list[dict]) -> list[list[dict]]:
    """The entries grouped by file (a file's windows are consecutive, in label-file order)."""
    groups: list[list[dict]] = []
    for entry in entries:
        if groups and groups[-1][0].get("file") == entry.get("file"):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups


def _top1(entries: list[dict], dtype_name: str) -> tuple[float | None, str, Found]:
    source = "accuracy.json's outputs"
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "iuf":
        return None, source, [("summary.json", "accuracy-mismatch", f"output dtype {dtype_name!r} is "
                                                                   "not a numeric type")]
    hexes = [e["data"] for e in entries]
    width = len(hexes[0])
    if not width or any(len(h) != width for h in hexes) or (width // 2) % dtype.itemsize:
        return None, source, [("accuracy.json", "accuracy-mismatch", "the outputs are not all the same "
                                                                     f"whole number of {dtype} values")]
    outputs = np.frombuffer(bytes.fromhex("".join(hexes)), dtype.newbyteorder("<")).reshape(len(hexes), -1)
    predictions = outputs.argmax(axis=1)  # dequantizing (monotonic) does not move the argmax
    labels = np.array([e["label"] for e in entries])
    found = []
    said = np.array([e.get("prediction", -1) for e in entries])
    wrong = np.flatnonzero((said != -1) & (said != predictions))
    if len(wrong):
        k = int(wrong[0])
        found.append(("accuracy.json", "accuracy-mismatch", f"{len(wrong)} entries' prediction is not "
                      f"their outputs' argmax (entry {k}: prediction {said[k]}, argmax {predictions[k]})"))
    return round(float(np.mean(predictions == labels)) * 100.0, 6), source, found


def _auc(entries: list[dict], groups: list[list[dict]]) -> tuple[float | None, str, Found]:
    source = "accuracy.json's window scores"
    if any(not isinstance(e.get("score"), (int, float)) or not math.isfinite(e["score"]) for e in entries):
        return None, source, [("accuracy.json", "accuracy-mismatch", "an entry without a finite score: "
                                                                     "the AUC cannot be recomputed")]
    labels = np.array([g[0]["label"] for g in groups])
    if any(e["label"] != g[0]["label"] for g in groups for e in g) or not set(labels.tolist()) <= {0, 1}:
        return None, source, [("accuracy.json", "accuracy-mismatch", "labels are not 0 or 1, one per "
                                                                     "file: the AUC cannot be recomputed")]
    scores = np.array([statistics.fmean(e["score"] for e in g) for g in groups])
    positive = labels == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if not n1 or not n0:
        return None, source, []  # one class only: AUC is undefined
    # Mann-Whitney: AUC = P(anomaly scores above normal) + P(tie) / 2, ties at their mean rank
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return round(float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)), 6), source, []


# -- windows ---------------------------------------------------------------------------------------
def _tolerance(n: int, runtime: float) -> float:
    """Throughput is rounded to 3 decimals from the unrounded runtime; runtime_s to 6 decimals
    moves n / runtime by up to n / runtime^2 x 5e-7 (doubled here)."""
    return 1e-3 + n * 1e-6 / runtime ** 2


def _windows(summary, files: RunFiles, figures: Figures) -> Found:
    windows, found = summary.windows, []
    recomputed, tolerance = [], 1e-3
    for k, w in enumerate(windows.details, start=1):
        if not (isinstance(w.runtime_s, (int, float)) and w.runtime_s > 0 and math.isfinite(w.runtime_s)):
            found.append(("summary.json", "throughput-mismatch", f"window {k}: runtime {w.runtime_s!r} s "
                                                                 "gives no throughput"))
            return found
        tp = w.inferences / w.runtime_s
        recomputed.append(tp)
        tolerance = max(tolerance, _tolerance(w.inferences, w.runtime_s))
        if _far(w.throughput_ips, tp, _tolerance(w.inferences, w.runtime_s)):
            found.append(("summary.json", "throughput-mismatch", f"summary.json window {k} throughput "
                          f"{w.throughput_ips} inf./sec. but its {w.inferences} inferences in "
                          f"{w.runtime_s} s give {tp:.3f}"))
    figures.throughputs, figures.tolerance = recomputed, tolerance
    if len(windows.throughput_ips) != len(recomputed) or any(
            _far(r, tp, tolerance) for r, tp in zip(windows.throughput_ips, recomputed)):
        found.append(("summary.json", "throughput-mismatch", f"summary.json windows.throughput_ips "
                      f"{windows.throughput_ips} but the window records give "
                      f"{[round(tp, 3) for tp in recomputed]}"))
    if recomputed:
        median = figures.median = statistics.median(recomputed)
        if _far(windows.median_throughput_ips, median, tolerance):
            found.append(("summary.json", "throughput-mismatch", f"summary.json median throughput "
                          f"{windows.median_throughput_ips} inf./sec. but the window records give "
                          f"{median:.3f}"))
        if median > 0 and _far(windows.latency_us, 1e6 / median, 1e-3 + 1e6 * tolerance / median ** 2):
            found.append(("summary.json", "throughput-mismatch", f"summary.json windows.latency_us "
                          f"{windows.latency_us} but the median throughput gives {1e6 / median:.6f}"))
    found += _window_events(summary, files)
    found += _plausible(recomputed, files.latencies)
    return found


def _window_events(summary, files: RunFiles) -> Found:
    """detail.txt records each window as it ends (a --repeat run: repetition 1's come first)."""
    details, events = summary.windows.details, files.event_values("window_result")
    if len(events) < len(details) or (summary.repetitions is None and len(events) != len(details)):
        return [("detail.txt", "throughput-mismatch", f"detail.txt records {len(events)} windows, "
                                                      f"summary.json {len(details)}")]
    for k, (w, e) in enumerate(zip(details, events), start=1):
        e = e if isinstance(e, dict) else {}
        if e.get("inferences") != w.inferences or e.get("file") != w.file or \
                _far(e.get("runtime_s"), w.runtime_s, 1e-6):
            return [("detail.txt", "throughput-mismatch", f"detail.txt window {k}: "
                     f"{e.get('inferences')} inferences in {e.get('runtime_s')} s on {e.get('file')}, "
                     f"summary.json {w.inferences} in {w.runtime_s} s on {w.file}")]
    return []


def _plausible(throughputs: list[float], latencies: np.ndarray | None) -> Found:
    if latencies is None or not len(latencies) or int(latencies.min()) <= 0:
        return []  # device-timed (no latencies.npy): nothing to hold the windows against
    fastest = int(latencies.min())
    bound = PLAUSIBLE * 1e9 / fastest
    return [("summary.json", "implausible-throughput", f"window {k} runs {tp:.3f} inf./sec. but the "
             f"fastest of the run's {len(latencies):,} timed queries took {fastest / 1000:.3f} us: more "
             f"than {PLAUSIBLE:g}x its {1e9 / fastest:.3f} inf./sec. is not plausible")
            for k, tp in enumerate(throughputs, start=1) if tp > bound]


# -- latency ---------------------------------------------------------------------------------------
def _us(ns: int) -> float:
    return round(ns / 1000.0, 3)  # as the run rounds (sections.Latency)


def _sorted(summary, files: RunFiles) -> np.ndarray | None:
    """Repetition 1's latencies, ascending; None when there is nothing to recompute from (the run
    checker reports a missing file; a device-timed run and a histogram run wrote none)."""
    lat, values = summary.latency_us, files.latencies
    if lat is None or summary.offline is not None or values is None or getattr(lat, "exact", True) is False:
        return None
    reps = summary.repetitions.runs if summary.repetitions is not None else []
    return np.sort(values[:reps[0].queries] if reps else values)


def _table(ordered: np.ndarray) -> dict[str, float]:
    """count aside, summary.json's latency_us as the run computes it (LoadGen's percentile rule)."""
    n = len(ordered)
    return {"min": _us(ordered[0]), "max": _us(ordered[-1]), "mean": _us(int(ordered.sum(dtype=np.int64)) // n),
            **{key: _us(ordered[min(int(n * p), n - 1)]) for key, p in PERCENTILES}}


def _latency(summary, files: RunFiles) -> Found:
    lat, ordered = summary.latency_us, _sorted(summary, files)
    if ordered is None:
        return []
    n = len(ordered)
    if n == 0 or lat.count != n:
        return [("summary.json", "latency-mismatch", f"summary.json latency count {lat.count} but "
                                                     f"latencies.npy holds {n} values")]
    from ..stats import early_stopping

    early = early_stopping(ordered, 0.90).estimate_ns
    actual = {**_table(ordered), "p90_early_stopping": None if early is None else _us(early)}
    found = [("summary.json", "latency-mismatch", f"summary.json latency {key} {getattr(lat, key)} us "
              f"but latencies.npy gives {value} us")
             for key, value in actual.items()
             if (getattr(lat, key) is None) != (value is None)
             or (value is not None and _far(getattr(lat, key), value, 5e-4 + 1e-9))]
    for event in files.event_values("result_query_count")[:1]:
        if event != n:
            found.append(("detail.txt", "latency-mismatch", f"detail.txt result_query_count {event} but "
                                                            f"latencies.npy holds {n} values"))
    start = 0
    for rep in summary.repetitions.runs if summary.repetitions is not None else []:
        part = np.sort(files.latencies[start:start + rep.queries])
        start += rep.queries
        table = _table(part) if len(part) else {}
        for key in ("p50", "p90") if table else ():
            said = getattr(rep, f"{key}_us")
            if said is not None and _far(said, table[key], 5e-4 + 1e-9):
                found.append(("summary.json", "latency-mismatch", f"repetition {rep.index} {key} {said} us "
                                                                  f"but latencies.npy gives {table[key]} us"))
    return found


# -- summary.txt -----------------------------------------------------------------------------------
ACCURACY_TXT = re.compile(r"^Accuracy : (?:top-1 ([\d.]+) %|AUC ([\d.]+))")
MEDIAN_TXT = re.compile(r"^MLPerf Tiny median throughput : ([\d.]+) inf\./sec\.")
LATENCY_TXT = re.compile(r"^ *(min|mean|p50|p90|p95|p97|p99|p999|max) : ([\d.]+)$")
WINDOW_TXT = re.compile(r"^window (\d{1,6}): .* (\d{1,18}) inferences in [\d.]+ s = ([\d.]+) inf\./sec\.")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _summary_txt(summary, files: RunFiles, figures: Figures) -> Found:
    """The figures summary.txt shows (it is for people; a line it lacks is not checked)."""
    text, found = files.texts.get("summary.txt"), []
    if text is None:
        return found
    said = lambda what, value, actual: ("summary.txt", "figure-mismatch",  # noqa: E731
                                        f"summary.txt {what} {value} but the run's records give {actual}")
    ordered = _sorted(summary, files)
    latency = _table(ordered) if ordered is not None and len(ordered) else {}
    for line in text.splitlines():
        if (m := ACCURACY_TXT.match(line)) and figures.accuracy is not None:
            value, digits = (_float(m.group(1)), 2) if m.group(1) else (_float(m.group(2)), 4)
            if value is None or abs(value - figures.accuracy) > 0.5 * 10 ** -digits + 1e-9:
                found.append(said("accuracy", m.group(1) or m.group(2), f"{figures.accuracy:g}"))
        elif (m := MEDIAN_TXT.match(line)) and figures.median is not None:
            if _far(_float(m.group(1)), figures.median, figures.tolerance):
                found.append(said("median throughput", m.group(1), f"{figures.median:.3f}"))
        elif (m := LATENCY_TXT.match(line)) and m.group(1) in latency:
            if _far(_float(m.group(2)), latency[m.group(1)], 5e-4 + 1e-9):
                found.append(said(f"latency {m.group(1)}", m.group(2), latency[m.group(1)]))
        elif (m := WINDOW_TXT.match(line)) and 0 < int(m.group(1)) <= len(figures.throughputs):
            k = int(m.group(1))
            w, tp = summary.windows.details[k - 1], figures.throughputs[k - 1]
            if int(m.group(2)) != w.inferences or _far(_float(m.group(3)), tp, figures.tolerance):
                found.append(said(f"window {k}", f"{m.group(2)} inferences, {m.group(3)} inf./sec.",
                                  f"{w.inferences} inferences, {tp:.3f} inf./sec."))
    return found
