"""The MLCommons result lines: the ``results.txt`` of an accuracy or performance test folder, as
the packager writes them and the checkers (the MLCommons one and ``tinyharness check``) read them
(docs/mlperf-tiny-rules.md §9.2).

The patterns are the MLCommons checker's: matched from the start of a line, and the last matching
line wins. The writer follows the MLCommons runner (a ``MMDD.HHMMSS ulp-mlperf: `` prefix, top-1
with one decimal, AUC with three).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results.summary import RunSummary

TOP1 = re.compile(r".* Top[- ]1%?\s?[:=] ([\d.]+)")  # "Top 1% = 85.4" (new), "Top-1: 91.1%" (old)
AUC = re.compile(r".* AUC\s?[:=] ([\d.]+)")  # "AUC = 0.862" (new), "AUC: 0.93" (old)
MEDIAN = re.compile(r".* Median throughput is\s+([\d.]+) inf\./sec\.")
# Per-window blocks (the MLCommons checker ignores them; tinyharness checks them): both runners.
WINDOW = re.compile(r"^(?:.*: )?Performance results for window (\d+):?\s*$")
INFERENCES = re.compile(r"^(?:.*: )?\s*# Inferences\s*:\s*(\d+)\s*$")
RUNTIME = re.compile(r"^(?:.*: )?\s*Runtime\s*:\s*([\d.]+) sec\.\s*$")
THROUGHPUT = re.compile(r"^(?:.*: )?\s*Throughput\s*:\s*([\d.eE+-]+) inf\./sec\.\s*$")
DASHES = "-" * 57
# Searched anywhere in a line (the checker uses re.search for these), the last match wins.
ENERGY = re.compile(r"Median energy cost is ([\d.]+) uJ/inf")  # energy/results.txt, both runners
SWW_THROUGHPUT = re.compile(r"Estimated throughput: ([\d.]+) inf\./sec\.")
SWW_COUNTS = re.compile(r"Accuracy: (\d+) True positives, (\d+) False negatives, (\d+) False positives")
SWW_DUTY = re.compile(r"Average duty cycle: ([\d.]+)")
# The runner's own verdict on a window, the line after its Throughput line.
WINDOW_MET = re.compile(r"^(?:.*: )?\s*Runtime requirements have been met\.\s*$")
WINDOW_SHORT = re.compile(r"^(?:.*: )?\s*e-\[The run must take at least")


# -- reading ---------------------------------------------------------------------------------------
def number(text: str) -> float | None:
    """A matched value as a float; None when it is not one (the patterns accept '1.2.3')."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def whole(text: str) -> int | None:
    """A matched count as an int; None past 18 digits (int() refuses thousands of them)."""
    return int(text) if len(text) <= 18 else None


def last_value(pattern: re.Pattern, text: str) -> str | None:
    """The number captured by the last line that ``pattern`` matches, as the checker reads it."""
    found = None
    for line in text.splitlines():
        if m := pattern.match(line):
            found = m.group(1)
    return found


def parse_windows(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-window blocks of a performance results.txt, and what is wrong with them."""
    windows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if (m := WINDOW.match(line)) and whole(m.group(1)) is not None:
            windows.append({"number": whole(m.group(1))})
        elif windows and (m := INFERENCES.match(line)):
            windows[-1]["inferences"] = whole(m.group(1))
        elif windows and (m := RUNTIME.match(line)):
            windows[-1]["runtime_s"] = number(m.group(1))
        elif windows and (m := THROUGHPUT.match(line)):
            windows[-1]["throughput_ips"] = number(m.group(1))
    problems = [f"window {w['number']}: no parseable {', '.join(k)} line" for w in windows
                if (k := [k for k in ("inferences", "runtime_s", "throughput_ips") if w.get(k) is None])]
    return windows, problems


def last_search(pattern: re.Pattern, text: str) -> tuple[str, ...] | None:
    """The groups of the last match of ``pattern`` anywhere in a line (the checker's re.search
    patterns: energy, sww), or None."""
    found = None
    for line in text.splitlines():
        if m := pattern.search(line):
            found = m.groups()
    return found


def half_unit(raw: str | None) -> float:
    """Half a unit in the last printed digit of a number as printed ('12.422' -> 0.0005): how far
    the value it was rounded from may lie."""
    if not raw or "e" in raw.lower():
        return 0.0
    _, _, decimals = raw.partition(".")
    return 0.5 * 10.0 ** -len(decimals)


def read_windows(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-window blocks of a performance results.txt as every runner wrote them (the
    MLCommons runner's, the EEMBC runner's with its 'MMDD.mmm ulp-mlperf: ' or 'ulp-ml: ' prefix
    and even-numbered windows, and a log written twice over, each line repeated), and what is
    wrong with them. Each window: ``number``, ``inferences``, ``runtime_s``, ``throughput_ips``,
    the numbers as printed (``runtime_raw``, ``throughput_raw``) and ``met``, the runner's own
    verdict (True: 'Runtime requirements have been met.', False: 'e-[The run must take at least
    ...]', None: neither)."""
    windows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if (m := WINDOW.match(line)) and whole(m.group(1)) is not None:
            number_ = whole(m.group(1))
            if windows and windows[-1]["number"] == number_ and len(windows[-1]) <= 2:
                continue  # the same header again (a log written twice), before the block's values
            windows.append({"number": number_, "met": None})
        elif not windows:
            continue
        elif m := INFERENCES.match(line):
            windows[-1]["inferences"] = whole(m.group(1))
        elif m := RUNTIME.match(line):
            windows[-1]["runtime_s"], windows[-1]["runtime_raw"] = number(m.group(1)), m.group(1)
        elif m := THROUGHPUT.match(line):
            windows[-1]["throughput_ips"], windows[-1]["throughput_raw"] = number(m.group(1)), m.group(1)
        elif WINDOW_MET.match(line):
            windows[-1]["met"] = True if windows[-1]["met"] is None else windows[-1]["met"]
        elif WINDOW_SHORT.match(line):
            windows[-1]["met"] = False
    problems = [f"window {w['number']}: no parseable {', '.join(k)} line" for w in windows
                if (k := [k for k in ("inferences", "runtime_s", "throughput_ips") if w.get(k) is None])]
    return windows, problems


# -- writing ---------------------------------------------------------------------------------------
def stamp(summary: "RunSummary") -> str:
    """The runner's ``MMDD.HHMMSS`` line prefix, from the time the run finished (UTC)."""
    return datetime.fromisoformat(summary.finished or summary.started).strftime("%m%d.%H%M%S")


def render(summary: "RunSummary", test: str, auc: float | None = None) -> str:
    """The results.txt of ``test`` ("accuracy" or "performance") for a run that measured it.
    ``auc``: for a top-1 benchmark, the AUC line the MLCommons runner prints after top-1 (its
    one-vs-rest AUC of the outputs, :func:`tinyharness.scoring.multiclass_roc_auc`); None: none."""
    if test == "accuracy":
        return _accuracy(summary, auc)
    if test == "performance":
        return _performance(summary)
    raise ValueError(f"no result lines for test {test!r}; MLPerf Tiny has accuracy and performance")


def _accuracy(summary: "RunSummary", auc: float | None = None) -> str:
    """The runner's lines: ``Top 1% = 90.1`` then ``AUC = 0.987`` (a classifier), ``AUC = 0.862``
    (AD), each with the stamp; a classifier's AUC only where it is given."""
    acc = summary.accuracy
    if acc is None or acc.value is None:
        raise ValueError("the run measured no accuracy value")
    if acc.metric == "top1":
        lines = [f"Top 1% = {acc.value:2.1f}"] + ([] if auc is None else [f"AUC = {auc:.3f}"])
    else:
        lines = [f"AUC = {acc.value:.3f}"]
    return "".join(f"{stamp(summary)} ulp-mlperf: {line}\n" for line in lines)


def _performance(summary: "RunSummary") -> str:
    windows = summary.windows
    if windows is None:
        raise ValueError("the run measured no performance windows")
    out = []
    for n, w in enumerate(windows.details, start=1):
        out += [f"Performance results for window {n}", f"    # Inferences : {w.inferences}",
                f"    Runtime: {w.runtime_s:.6f} sec.", f"    Throughput: {w.throughput_ips:.3f} inf./sec."]
        if w.runtime_s >= windows.window_min_s:
            out.append("    Runtime requirements have been met.")
    prefix = f"{stamp(summary)} ulp-mlperf: "
    out += [prefix + DASHES, f"{prefix}Median throughput is {windows.median_throughput_ips:10.3f} inf./sec.",
            prefix + DASHES]
    return "\n".join(out) + "\n"
