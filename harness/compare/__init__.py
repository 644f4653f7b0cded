"""``tinyharness compare A B``: is B faster or slower than A, beyond run-to-run noise?

A and B are run directories, folders of them, or submission packages (a folder or a .tar.gz),
read through :mod:`tinyharness.results.read` as typed run records (every directory holding a
summary.json is a run, schema 1 or 2).

**Pairing.** Runs pair when they measure one configuration: the same benchmark, scenario, SUT and
model (the model's sha256 when both runs have one, else the model's file name; a model on a device
pairs by benchmark, scenario and SUT). Several runs of one configuration on a side are *replicates*
of it, compared as one sample, not matched one to one. ``--pair A_RUN=B_RUN`` (``pairs`` here),
repeatable, compares what the user names instead (another SUT, another model): each side one run or
a comma-separated list of replicates, by path or run-directory name as printed; runs so named are
not paired otherwise. Everything left is listed as unpaired.

**Replicates and the statistic.** A side's replicates are its runs and, inside a run, its
repetitions (``run --repeat K``: ``summary.repetitions.runs[i].queries`` splits latencies.npy, which
holds the repetitions back to back). Each repetition gives the value a run reports: LoadGen's
percentile ``sorted[floor(n*p)]``, the median window throughput, the offline samples/s. A side's
statistic is the mean over its runs of the mean over each run's repetitions. Not the percentile of
all queries pooled: a pooled p90 is a quantile of a mixture of runs, which is no run's p90, and a long
run would outweigh short ones though it says no more about where the next run lands. The mean of
per-run values estimates what one run of the configuration reports (the number people compare),
gives each run equal weight, and is exact and cheap to resample.

**Hierarchical bootstrap** (at least 2 replicates on both sides). One resample of a side draws its
runs with replacement, in each drawn run its repetitions with replacement, in each drawn repetition
the statistic of a resample of its queries (or windows), and averages as above; A and B are
resampled independently and the CI of ``(B - A) / A`` is the percentile interval of ``B*/A* - 1``.
Resampling runs carries the run-to-run variation into the interval; resampling queries inside them
counts within-run noise a second time (it is already in the spread of the runs), which errs on the
safe side. Few replicates need a correction: the bootstrap of R units underestimates the variance
of their mean by (R-1)/R and has normal tails where R values support only a t distribution with
R-1 degrees of freedom. So ``log A*`` and ``log B*`` are widened about their medians by
``sqrt(R/(R-1))`` each (R: the side's runs, or its repetitions when it is one run), and their
difference by ``t(nu)/z`` (nu: Welch-Satterthwaite from the two sides' bootstrap variances).
Simulated (per-run scale ~ N(1, 0.05), 95 % CIs, 200 trials), identical configurations were called
different 30 / 21 / 15 / 7 % of the time with 2 / 3 / 5 / 10 runs a side uncorrected, 2 / 4 / 7 / 4 %
corrected; a x1.2 slowdown was found 31 / 87 / 100 / 100 % of the time corrected (2 runs a side
are honestly too few). Verdict: "B slower" / "B faster" when the CI excludes 0, else "no
significant difference".

**One replicate on a side** (either side). Nothing then measures how far a second run would
land: the within-run bootstrap only says how precisely this run pins its own percentile (two runs
of one configuration once differed "significantly" by 1.3 %). So a difference within the **noise
floor** (default 5 %, ``--noise-floor``) is "within run-to-run noise"; beyond it the verdict is
"B slower" / "B faster" only when the within-run CI also lies wholly beyond the floor, and "within
run-to-run noise" otherwise. A metric with one value per run and no within-run resampling
(offline samples/s, summary-only percentiles) gets no CI: its difference alone is held against the
floor. The floor is an assumption about the host, not a measurement: 5 % suits a quiet machine; on
a shared one identical digits01 runs differed by a median 12 % and up to 65 % (bench/
compare_noise.py), and only replicates (several runs, or ``run --repeat``) can show that.

**Within-run resampling.** Queries of one run are not independent: a host that changes speed for
seconds at a time (another process on the sibling core, the clock frequency) makes neighbouring
queries alike, and resampling single queries then claims +-0.1 % for a run whose halves differ by
40 % (seen in bench/compare_noise.py). So a repetition of at least ``BLOCKS`` x ``MIN_BLOCK``
(20 x 50) queries is resampled in 20 contiguous time blocks (the non-overlapping block bootstrap):
20 blocks with replacement, and LoadGen's percentile ``sorted[floor(N*p)]`` of their union found
exactly by bisection over the run's sorted values, counting each drawn block's values at or below
(no query is sampled or dropped). On independent queries this matches the query bootstrap; on a
drifting run it widens as it should. A shorter repetition is resampled query by query, exactly:
LoadGen's percentile of n latencies drawn with replacement is ``sorted[floor(n * U)]`` with U the
k-th smallest of n uniforms, i.e. ``U ~ Beta(k, n + 1 - k)``, k = floor(n * p) + 1, at O(1) a
draw. Windows (5 a run, each at its own time) are resampled literally, median per resample.

Runs whose own stability diagnostics (summary.json's ``stability``) warn are named in the notes,
and so are int8 runs made on CPUs with and without an int8 dot product (``system.cpu_features``:
x86 VNNI, ARM dotprod), whose runtimes take other int8 kernels.

**Regressions** (``fail_above``, ``--fail-above PCT``): a metric's slowdown is B's time over A's
minus 1, ``(B - A) / A`` for latency and ``A / B - 1`` for throughput (x1.2 slower is +20 % on every
metric). A metric is a regression when its verdict is "B slower" and its slowdown's lower confidence
bound (its value, where it has no CI) exceeds PCT.

numpy and rich load inside the functions that need them, so importing this module is cheap. The
quantiles of the correction need no scipy: the normal one is the standard library's
(``statistics.NormalDist``), Student's t is :func:`bootstrap.t_quantile` (the exact CDF inverted by
Newton's method; within about 1e-12 of ``scipy.stats.t.ppf``, which the tests use as the oracle).

**Published results** (:mod:`.published`): a side may be an MLPerf Tiny results tree (a checkout or
archive of mlcommons/tiny_results_v1.x) or ``--published PATH[:SUBMITTER/SYSTEM]``. Its figures are
single values (no per-query data, no run-to-run spread), so the throughput ratio gets no bootstrap:
it is held against the noise floor above, and both systems are printed beside the figures.
"""

from .metrics import compare, compare_runs, regressions  # noqa: F401
from .pairing import pair_runs, parse_pair, same_configuration  # noqa: F401
from .table import print_table  # noqa: F401
from .verdicts import (DEFAULT_NOISE_FLOOR, FASTER, FLOOR_ONLY, HIERARCHICAL, NO_DIFFERENCE,  # noqa: F401
                       SLOWER, WITHIN_NOISE, WITHIN_RUN)
