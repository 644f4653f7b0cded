"""The figures of one published ``results.txt``, in every variant submitters produced.

The patterns are the MLCommons checker's (:mod:`tinyharness.submission.result_lines`: matched from
the start of a line, the last matching line wins); energy is the checker's ``Median energy cost is
N uJ/inf`` searched anywhere in a line. Variants (docs/mlperf-tiny-rules.md §9.2), told apart by the
line prefix the runner writes:

``eembc``
    EEMBC runner (v0.5/1.0) performance and accuracy logs: ``31730.644 ulp-mlperf: Top-1: 78.6%``,
    ``AUC: 0.86``; the stamp is seconds since the runner started.
``eembc-energy``
    EEMBC runner in energy mode: ``ulp-ml:`` lines, per-window energy and ``Median energy cost``.
``mlcommons``
    MLCommons runner: ``MMDD.HHMMSS ulp-mlperf: Top 1% = 85.4``, ``AUC = 0.862``.
``edited``
    Anything else: lines without a runner prefix, runners mixed, or every line written twice (a
    log pasted twice). Read all the same; a line the checker would not read (no text before the
    keyword) is read here and said so in the notes.

A file without the figure its test folder stands for is *unreadable*, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..submission import result_lines
from ..submission.result_lines import AUC, MEDIAN, TOP1, WINDOW_SHORT, last_value, number, read_windows

ENERGY = re.compile(".*" + result_lines.ENERGY.pattern)  # the checker's, searched anywhere in a line
# Hand-edited lines the checker's patterns miss (they need some text and a space before the key).
BARE_TOP1 = re.compile(r"\s*Top[- ]1%?\s?[:=]\s*([\d.]+)")
BARE_AUC = re.compile(r"\s*AUC\s?[:=]\s*([\d.]+)")
BARE_MEDIAN = re.compile(r"\s*Median throughput is +([\d.]+) inf\./sec\.")
EEMBC_STAMP = re.compile(r"^\d+\.\d{3} ulp-mlperf: ")
ENERGY_STAMP = re.compile(r"^\d+\.\d{3} ulp-ml: ")
MLCOMMONS_STAMP = re.compile(r"^\d{4}\.\d{6} ulp-mlperf: ")
VARIANTS = ("eembc", "eembc-energy", "mlcommons", "edited")
TESTS = ("accuracy", "performance", "energy")
# Test folders as submitters named them: the name the figures are filed under, and a note.
TEST_FOLDERS = {"accuracy": ("accuracy", ""), "performance": ("performance", ""),
                "energy": ("energy", ""), "enegy": ("energy", "test folder spelt 'enegy'"),
                "power": ("energy", "test folder named 'power'")}


@dataclass(frozen=True)
class Lines:
    """What one results.txt says: its variant, figures (None where absent), the window
    throughputs of a performance log, notes, and ``problem`` when its test's figure is missing."""

    variant: str
    top1: float | None = None
    auc: float | None = None
    throughput_ips: float | None = None
    energy_uj: float | None = None
    windows: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    problem: str | None = None


def _undoubled(lines: list[str]) -> list[str] | None:
    """The lines once each when every line is written twice in a row (else None)."""
    if len(lines) < 2 or len(lines) % 2 or any(lines[i] != lines[i + 1] for i in range(0, len(lines), 2)):
        return None
    return lines[::2]


def variant_of(lines: list[str]) -> str:
    """The runner that wrote these lines (see the module doc), or "edited"."""
    kinds = set()
    for line in lines:
        if not line.strip():
            continue
        kind = ("mlcommons" if MLCOMMONS_STAMP.match(line) else "eembc" if EEMBC_STAMP.match(line)
                else "eembc-energy" if ENERGY_STAMP.match(line) else "edited")
        kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else "edited"


def _value(pattern: re.Pattern, bare: re.Pattern | None, text: str, what: str,
           notes: list[str]) -> tuple[float | None, str | None]:
    """(the value of the last line matching ``pattern``, or of a hand-edited ``bare`` line;
    a problem when a line matched but holds no number)."""
    raw = last_value(pattern, text)
    if raw is None and bare is not None and (raw := last_value(bare, text)) is not None:
        notes.append(f"{what} read from a line the MLCommons checker does not match (no runner prefix)")
    if raw is None:
        return None, None
    value = number(raw)
    return (value, None) if value is not None else (None, f"{what} {raw!r} is not a number")


def parse(text: str, test: str) -> Lines:
    """The figures of a results.txt of ``test`` ("accuracy", "performance" or "energy")."""
    lines = text.splitlines()
    notes: list[str] = []
    if (once := _undoubled(lines)) is not None:
        lines, text = once, "\n".join(once)
        notes.append("every line is written twice; read once")
    variant = "edited" if notes else variant_of(lines)
    problems: list[str] = []
    figures: dict[str, float | None] = {}
    for name, pattern, bare, what in (("top1", TOP1, BARE_TOP1, "Top-1"), ("auc", AUC, BARE_AUC, "AUC"),
                                      ("throughput_ips", MEDIAN, BARE_MEDIAN, "median throughput"),
                                      ("energy_uj", ENERGY, None, "median energy")):
        figures[name], problem = _value(pattern, bare, text, what, notes)
        if problem:
            problems.append(problem)
    windows, _ = read_windows(text)  # as check reads them: doubled logs once, every prefix
    rates = tuple(w["throughput_ips"] for w in windows if w.get("throughput_ips") is not None)
    if short := sum(bool(WINDOW_SHORT.match(line)) for line in lines):
        notes.append(f"{short} window{'s' * (short != 1)} shorter than 10 s (the runner's "
                     "'e-[The run must take at least 10 seconds' line)")
    need = {"accuracy": ("top1", "auc"), "performance": ("throughput_ips",), "energy": ("energy_uj",)}[test]
    problem = None
    if all(figures[k] is None for k in need):
        expected = {"accuracy": "'Top-1' / 'Top 1%' or 'AUC'",
                    "performance": "'Median throughput is N inf./sec.'",
                    "energy": "'Median energy cost is N uJ/inf.'"}[test]
        problem = "; ".join(problems) or f"no {expected} line"
    return Lines(variant, figures["top1"], figures["auc"], figures["throughput_ips"], figures["energy_uj"],
                 rates if test == "performance" else (), tuple(notes), problem)
