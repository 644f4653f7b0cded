"""Stability diagnostics for a performance result: was the measurement steady, and was the host quiet?

A run can meet every rule and still be worthless: a kws01 run was VALID with p50 57 us, p99 20.9 ms and
max 404 ms because the machine was busy, and nothing said so. :class:`Stability` says so, as a
warning (never an invalid reason): figures on the shape of the latencies, on the spread of the
MLPerf Tiny windows, and on the host (load, CPU frequency, other processes' CPU use), each judged
against a threshold below.

What applies where:

==================================  =================  ========  ===============================
figure                              single-stream      offline   device-timed (windows only)
==================================  =================  ========  ===============================
latency CV, IQR, p99/p50, max/p50   per-query latency  None (1)  None (no per-query latencies)
window spread (max / min)           the windows        None      the windows
host figures                        yes                yes       yes (the host's side)
==================================  =================  ========  ===============================

(1) offline's ``latencies.npy`` holds completion times since the issue, not latencies: their spread
says how long the run lasted, nothing about steadiness. Pass ``None``.

Thresholds (a figure *above* its threshold is a warning; ``unstable`` is true when any warning is):

=============================  =========  ===========================================================
figure                         threshold  why
=============================  =========  ===========================================================
latency CV (stdev / mean)      0.10       pyperf's ``check``: a standard deviation of 10 % of the mean
                                          or more is "unstable" (here: above 10 %). Per-query
                                          latencies are noisier than pyperf's values (each a mean
                                          of many loops), and a few long stalls dominate the CV
                                          (one stall S times the mean in n queries adds about
                                          S / sqrt(n)), so this is the most sensitive figure: it
                                          fires on a run disturbed more than rarely, and the ratios
                                          below say how.
p99 / p50                      10         An order of magnitude between the typical query and the
                                          1-in-100 is not jitter of one computation (clock, cache and
                                          interrupt jitter are tens of percent); it takes a second
                                          mode: preemption by other work, paging, or a SUT that stalls.
max / p50                      100        One query 100x the median: a stall of at least 1 ms (see the
                                          p50 floor), the length of a scheduler time slice, so another
                                          task held the CPU or the SUT stalled. (pyperf flags a
                                          maximum 50 % above the mean, for values that are averages;
                                          a single query needs a far wider margin.)
p50 floor for the three above  10 us      Below 10 us a single interrupt (1-20 us) is already several
                                          times p50, so the latency shape says nothing about the host:
                                          shown, not judged (a note). The null SUT is the usual case.
window spread (max / min)      1.10       pyperf's 10 % again, and here it fits exactly: each window is
                                          a mean over >= 10 s of one sample inferred back to back, so
                                          a quiet host repeats it within a few percent. 10 % apart
                                          means the machine's speed changed between windows (another
                                          load, thermal throttling, frequency scaling).
other processes' CPU           0.10       CPU seconds used by everything but this process, as a
(fraction of wall x cores)                fraction of the machine. An idle host (kernel threads, a
                                          desktop at rest) uses a few percent; 10 % is 0.2-0.8 of a
                                          core on 2-8 cores: enough to take this process's core part
                                          of the time and to share its caches, memory bandwidth and
                                          turbo budget. hyperfine and pyperf both ask for a quiet
                                          system; this measures how quiet it was.
sampled interval floor         1 s        The CPU counters tick at 100 Hz: under 1 s the fraction is
                                          too coarse (one tick on 2 cores over 0.05 s is 10 %) to
                                          judge; shown, not judged (a note).
load average (1 min)           cores      More runnable tasks than cores on average: some task waited
(the larger of before/after)              for a CPU. The figure counts this process's runnable threads
                                          too (about 1 in single-stream); strictly above the core count
                                          means someone waited, whoever it was.
frequency governor             a note     A governor other than ``performance`` (``powersave``,
                                          ``schedutil``, ...) lets the clock move with load: results
                                          vary more between runs, but a run is not wrong for it, so
                                          it is a note, never a warning (many VMs expose none: None).
=============================  =========  ===========================================================

The host figures come from :class:`tinyharness.host.HostSampler`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..host import HostSample

# -- thresholds (see the module docstring for why) -------------------------------------------------
CV_MAX = 0.10
P99_OVER_P50_MAX = 10.0
MAX_OVER_P50_MAX = 100.0
MIN_JUDGED_P50_US = 10.0
WINDOW_SPREAD_MAX = 1.10
OTHER_CPU_MAX = 0.10
MIN_JUDGED_SAMPLE_S = 1.0
QUIET_GOVERNOR = "performance"

WARNING_PREFIX = "WARNING: unstable: "
NOTE_PREFIX = "note: stability: "


# -- the diagnostics --------------------------------------------------------------------------------
def _ratio(value: float) -> str:
    """A ratio for people: 367, 10.4, 1.25."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


@dataclass(frozen=True)
class Stability:
    """Stability figures of one performance result, and the warnings they raise (summary.json's
    ``stability``). Every field is JSON as it is; None where a figure does not apply or could not
    be read (see the module docstring for what applies where)."""

    # latency shape (single-stream, host clock)
    latency_cv: float | None  # sample standard deviation / mean of the per-query latencies
    latency_iqr_us: float | None  # p75 - p25 (LoadGen's percentile rule), us
    p99_over_p50: float | None
    max_over_p50: float | None
    # MLPerf Tiny windows
    window_spread: float | None  # max / min window throughput; None under two windows
    # the host, over the sampled interval
    sampled_s: float | None
    cpu_count: int | None
    load1_before: float | None
    load1_after: float | None
    governor: str | None
    cpu_mhz_before: float | None
    cpu_mhz_after: float | None
    other_cpu_fraction: float | None  # other processes' CPU s / (sampled_s x cpu_count)
    # the verdict
    unstable: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_run(cls, latencies_ns: Any | None, window_throughputs: Sequence[float] | None,
                 host: HostSample | None) -> "Stability":
        """The figures of a pass: ``latencies_ns`` the per-query latencies (single-stream; None
        offline, where they are completion times), ``window_throughputs`` the MLPerf Tiny windows'
        inferences/s (None without windows), ``host`` the sampler's figures around the pass."""
        figures: dict[str, Any] = {}
        p50_us = None
        if latencies_ns is not None and len(latencies_ns) > 0:
            import math

            import numpy as np

            from ..latencies import Latencies

            record = latencies_ns if isinstance(latencies_ns, Latencies) else Latencies.from_array(
                np.asarray(latencies_ns, dtype=np.int64))
            n = len(record)
            p25, p50, p75, p99 = record.kth([min(int(n * p), n - 1) for p in (0.25, 0.50, 0.75, 0.99)])
            _, top, total, squares = record.moments()
            p50_us = p50 / 1000.0
            mean = total / n
            if n >= 2 and mean > 0:  # sample standard deviation from the sums, as numpy's ddof=1
                variance = max(squares - n * mean * mean, 0.0) / (n - 1)
                figures["latency_cv"] = _r(math.sqrt(variance) / mean, 4)
            figures["latency_iqr_us"] = _r((p75 - p25) / 1000.0, 3)
            if p50 > 0:
                figures["p99_over_p50"] = _r(p99 / p50, 3)
                figures["max_over_p50"] = _r(top / p50, 3)
        if window_throughputs is not None and len(window_throughputs) >= 2:
            low, high = min(window_throughputs), max(window_throughputs)
            if low > 0:
                figures["window_spread"] = _r(high / low, 4)
        notes: list[str] = []
        if host is not None:
            figures.update(
                sampled_s=_r(host.sampled_s, 3), cpu_count=host.cpu_count,
                load1_before=host.load1_before, load1_after=host.load1_after,
                governor=host.governor, cpu_mhz_before=host.cpu_mhz_before,
                cpu_mhz_after=host.cpu_mhz_after,
                other_cpu_fraction=_r(host.other_cpu_fraction, 4))
            notes += host.notes
        return cls.assess(p50_us=p50_us, notes=notes, **figures)

    @classmethod
    def assess(cls, *, p50_us: float | None = None, notes: Sequence[str] = (),
               **figures: Any) -> "Stability":
        """Judge figures (the fields above, each None when absent) against the thresholds.
        ``p50_us`` is the median latency, for the floor under which the latency shape is shown but
        not judged."""
        f = {name: None for name in _FIGURES} | figures
        unknown = set(f) - set(_FIGURES)
        if unknown:
            raise TypeError(f"not stability figures: {', '.join(sorted(unknown))}")
        warnings, notes = [], list(notes)
        shape = [f["latency_cv"], f["p99_over_p50"], f["max_over_p50"]]
        judged = p50_us is None or p50_us >= MIN_JUDGED_P50_US
        if not judged and any(v is not None for v in shape):
            notes.append(f"latency shape not judged: p50 {p50_us:.3g} us is under "
                         f"{MIN_JUDGED_P50_US:g} us, where one interrupt is already several times p50")
        if judged:
            cv, p99, top = shape
            if cv is not None and cv > CV_MAX:
                warnings.append(f"latency CV is {_pct(cv)} (threshold {CV_MAX * 100:g} %): query "
                                "latencies vary widely; the machine was busy or the SUT is unsteady")
            if p99 is not None and p99 > P99_OVER_P50_MAX:
                warnings.append(f"p99 is {_ratio(p99)}x p50 (threshold {P99_OVER_P50_MAX:g}x): "
                                "the machine was busy or the SUT stalls")
            if top is not None and top > MAX_OVER_P50_MAX:
                took = "" if p50_us is None else f" (about {top * p50_us / 1000:.3g} ms)"
                warnings.append(f"max{took} is {_ratio(top)}x p50 (threshold {MAX_OVER_P50_MAX:g}x): "
                                "at least one query stalled; the machine was busy or the SUT stalls")
        spread = f["window_spread"]
        if spread is not None and spread > WINDOW_SPREAD_MAX:
            warnings.append(f"window throughputs differ by {_ratio(spread)}x max/min (threshold "
                            f"{WINDOW_SPREAD_MAX:g}x): the machine's speed changed between windows")
        other, sampled = f["other_cpu_fraction"], f["sampled_s"]
        if other is not None:
            if sampled is not None and sampled < MIN_JUDGED_SAMPLE_S:
                notes.append(f"other processes' CPU not judged: {sampled:g} s sampled is under "
                             f"{MIN_JUDGED_SAMPLE_S:g} s, too short for the 100 Hz CPU counters")
            elif other > OTHER_CPU_MAX:
                warnings.append(f"other processes used {_pct(other)} of the CPU during the run "
                                f"(threshold {OTHER_CPU_MAX * 100:g} %): the machine was busy")
        cores = f["cpu_count"]
        loads = [v for v in (f["load1_before"], f["load1_after"]) if v is not None]
        if cores and loads and max(loads) > cores:
            when = ", ".join(f"{k} {f['load1_' + k]:g}" for k in ("before", "after")
                             if f["load1_" + k] is not None)
            warnings.append(f"load average {max(loads):g} is above the {cores} cores ({when}): "
                            "more tasks were runnable than there are cores")
        governor = f["governor"]
        if governor is not None and governor != QUIET_GOVERNOR:
            notes.append(f"CPU frequency governor is '{governor}', not '{QUIET_GOVERNOR}': the "
                         "clock may change with load (a note, not a warning)")
        return cls(**f, unstable=bool(warnings), warnings=warnings, notes=notes)

    # -- reading and writing ----------------------------------------------------------------------
    def lines(self) -> list[str]:
        """Text for summary.txt and the console: a one-line digest of the figures, then each
        warning (prefixed ``WARNING: unstable:``) and each note."""
        parts = []
        if self.latency_cv is not None or self.latency_iqr_us is not None:
            shape = []
            if self.latency_cv is not None:
                shape.append(f"CV {_pct(self.latency_cv)}")
            if self.latency_iqr_us is not None:
                shape.append(f"IQR {self.latency_iqr_us:g} us")
            if self.p99_over_p50 is not None:
                shape.append(f"p99/p50 {_ratio(self.p99_over_p50)}")
            if self.max_over_p50 is not None:
                shape.append(f"max/p50 {_ratio(self.max_over_p50)}")
            parts.append("latency " + ", ".join(shape))
        if self.window_spread is not None:
            parts.append(f"windows max/min {_ratio(self.window_spread)}")
        host = []
        if self.other_cpu_fraction is not None:
            host.append(f"other processes {_pct(self.other_cpu_fraction)} of {self.cpu_count} cores")
        if self.load1_before is not None or self.load1_after is not None:
            host.append("load " + " -> ".join("n/a" if v is None else f"{v:g}"
                                              for v in (self.load1_before, self.load1_after)))
        mhz = [v for v in (self.cpu_mhz_before, self.cpu_mhz_after) if v is not None]
        host.append(f"governor {self.governor or 'n/a'}"
                    + (f", {' -> '.join(f'{v:g}' for v in mhz)} MHz" if mhz else ""))
        parts.append("host " + ", ".join(host))
        verdict = "UNSTABLE" if self.unstable else "steady"
        out = [f"Stability : {verdict}; " + "; ".join(parts)]
        out += [WARNING_PREFIX + w for w in self.warnings]
        out += [NOTE_PREFIX + n for n in self.notes]
        return out


_FIGURES = tuple(f.name for f in dataclasses.fields(Stability)
                 if f.name not in ("unstable", "warnings", "notes"))
