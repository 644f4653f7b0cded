"""The rows of a comparison: one per metric (p50 and p90 latency, median window throughput, offline
throughput) with its verdict, the pair's verdict, regressions for ``--fail-above``, and
:func:`compare`, the whole comparison as a JSON-ready dict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Sequence

from ..errors import UsageError
from ..results.read import RunRecord, load_runs
from .bootstrap import Median, Percentile, Side, Value, hierarchical_draws, interval, replicates, side_value
from .pairing import MAX_VALUES, Pair, _segments, model_name, int8_host_notes, pair_runs, repetitions, resolve_pairs, unstable_notes
from .verdicts import DEFAULT_NOISE_FLOOR, FASTER, FLOOR_ONLY, HIERARCHICAL, METHOD, NO_DIFFERENCE, OFFLINE_NOTE, SLOWER, WITHIN_NOISE, WITHIN_RUN

MAX_RESAMPLES = 100_000  # the bootstrap's draws per metric and side are kept: 800 kB each at most


# -- metric rows -----------------------------------------------------------------------------------
@dataclass
class Settings:
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    noise_floor: float = DEFAULT_NOISE_FLOOR


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _resampled(side: Side) -> bool:
    return replicates(side) > 1 or any(not isinstance(rep, Value) for rep in side[0])


def _floor_verdict(rel: float, ci, floor: float, lower_is_better: bool) -> str:
    lo, hi = ci if ci is not None else (rel, rel)
    if abs(rel) <= floor or not (lo > floor or hi < -floor):
        return WITHIN_NOISE
    return SLOWER if (lo > floor) == lower_is_better else FASTER


def noise_floor(side_a: Side, side_b: Side, settings: Settings) -> tuple[float, bool]:
    """The floor under which a difference between single runs is run-to-run noise: the given one,
    raised to z x sqrt(dA^2 + dB^2) where a run's own drift dX (the spread of its time blocks'
    percentiles, or of its windows) says its machine moved more than that while it ran. A second
    run is a fresh draw from that moving machine, not an average over it: measured on this 2-core
    VM (bench/compare_noise.py), identical runs differ by about sqrt(dA^2 + dB^2)."""
    drifts = [rep.drift for side in (side_a, side_b) for run in side for rep in run]
    if any(d is None for d in drifts):
        return settings.noise_floor, False
    z = NormalDist().inv_cdf(0.5 + settings.confidence / 2)
    raised = z * math.sqrt(sum(d * d for d in drifts))
    return max(settings.noise_floor, raised), raised > settings.noise_floor


def metric_row(name: str, unit: str, side_a: Side, side_b: Side, lower_is_better: bool,
               settings: Settings, streams: tuple, note: str | None = None) -> dict[str, Any]:
    """One metric: both sides' statistics, (B - A) / A, its CI, the verdict and the slowdown."""
    import numpy as np

    a, b = side_value(side_a), side_value(side_b)
    rel = _finite(b / a - 1.0) if a else None
    ra, rb = replicates(side_a), replicates(side_b)
    method = HIERARCHICAL if min(ra, rb) > 1 else (
        WITHIN_RUN if _resampled(side_a) and _resampled(side_b) else FLOOR_ONLY)
    ci = None
    if rel is not None and method != FLOOR_ONLY:
        draws = [hierarchical_draws(side, settings.resamples, np.random.default_rng([*streams, i]))
                 for i, side in enumerate((side_a, side_b))]
        found = interval(*draws, ra, rb, settings.confidence, method == HIERARCHICAL)
        ci = None if found is None else list(found)
    if rel is None:
        verdict = "undefined (A is 0)"
    elif method == HIERARCHICAL and ci is None:
        verdict = NO_DIFFERENCE
    elif method == HIERARCHICAL:
        verdict = (SLOWER if lower_is_better else FASTER) if ci[0] > 0 else (
            (FASTER if lower_is_better else SLOWER) if ci[1] < 0 else NO_DIFFERENCE)
    else:
        floor, raised = noise_floor(side_a, side_b, settings)
        verdict = _floor_verdict(rel, ci, floor, lower_is_better)
        if raised:
            note = "; ".join(filter(None, [note, f"noise floor {floor:.1%}: the runs' own drift "
                                                 "over time (time blocks or windows)"]))
    slowdown = slowdown_ci = None
    if rel is not None:
        if lower_is_better:
            slowdown, slowdown_ci = rel, ci
        else:
            slow = lambda r: _finite(1.0 / (1.0 + r) - 1.0) if r > -1 else None  # noqa: E731
            slowdown, slowdown_ci = slow(rel), None if ci is None else [slow(ci[1]), slow(ci[0])]
    count = lambda side: {"runs": len(side), "repetitions": sum(map(len, side))}  # noqa: E731
    return {"metric": name, "unit": unit, "a": _finite(a), "b": _finite(b), "relative_difference": rel,
            "ci": ci, "verdict": verdict, "note": note, "method": method,
            "replicates": {"a": count(side_a), "b": count(side_b)},
            "slowdown": slowdown, "slowdown_ci": slowdown_ci}


def _sides(pair: Pair, of) -> tuple[Side, Side] | None:
    """Each side's runs with data for one metric (``of(run)``: its repetitions, or None)."""
    sides = tuple([reps for reps in map(of, runs) if reps] for runs in (pair.a, pair.b))
    return sides if all(sides) else None


def compare_pair(pair: Pair, settings: Settings, index: int = 0) -> list[dict[str, Any]]:
    """The metric rows of one pair; each random stream is seeded by (seed, pair index, metric, side)."""
    streams = lambda m: (settings.seed, index, m)  # noqa: E731
    notes: dict[str, None] = {}
    if pair.key[1] == "offline":
        return _offline_rows(pair, settings, streams)
    return (_latency_rows(pair, settings, streams, notes) + _window_rows(pair, settings, streams))


def _latency_rows(pair: Pair, settings: Settings, streams, notes) -> list[dict[str, Any]]:
    """p50 and p90 (streams 0-1): from latencies.npy per repetition, else the summary's values."""
    rows = []
    for m, (p, name) in enumerate(((0.50, "p50"), (0.90, "p90"))):
        fallback: list[str] = []

        def of(run: RunRecord):
            reps = repetitions(run)
            segments = _segments(run, reps, notes)
            if segments is not None:
                return [Percentile(s, p) for s in segments]
            if reps and all(r.get(f"{name}_us") is not None for r in reps):
                fallback.append(run.path)
                return [Value(r[f"{name}_us"]) for r in reps]
            if run.summary.latency_us is not None:
                fallback.append(run.path)
                return [Value(getattr(run.summary.latency_us, name))]
            return None

        sides = _sides(pair, of)
        if sides is not None:
            note = "; ".join(dict.fromkeys(
                (["latencies.npy missing: summary values, no CI"] if fallback else []) + list(notes)))
            rows.append(metric_row(f"{name} latency", "us", *sides, True, settings, streams(m),
                                   note or None))
    return rows


def _window_rows(pair: Pair, settings: Settings, streams) -> list[dict[str, Any]]:
    """Median window throughput (stream 2): the repetitions' values, or the run's windows."""
    def of(run: RunRecord):
        reps = repetitions(run)
        if reps and all(r.get("throughput_ips") for r in reps):
            return [Value(r["throughput_ips"]) for r in reps]
        w = run.summary.windows
        if w is None or not w.throughput_ips:
            return None
        if len(w.throughput_ips) > MAX_VALUES:
            raise UsageError(f"{run.path}: {len(w.throughput_ips):,} windows in summary.json; compare "
                             f"reads at most {MAX_VALUES:,} a run")
        return [Median(w.throughput_ips) if len(w.throughput_ips) > 1 else Value(w.throughput_ips[0])]

    sides = _sides(pair, of)
    if sides is None:
        return []
    windows = sorted({len(r.summary.windows.throughput_ips) for r in (*pair.a, *pair.b)
                      if r.summary.windows is not None})
    note = ("a single window a run: no within-run CI" if windows == [1]
            else f"{'/'.join(map(str, windows))} windows a run: a coarse within-run CI")
    row = metric_row("median window throughput", "inf/s", *sides, False, settings, streams(2), note)
    if row["method"] == HIERARCHICAL:
        row["note"] = None
    return [row]


def _offline_rows(pair: Pair, settings: Settings, streams) -> list[dict[str, Any]]:
    """Offline samples/s (stream 3): one value per repetition."""
    def of(run: RunRecord):
        reps = repetitions(run)
        segments = _segments(run, reps, {})
        if segments is not None and all(s.max() > 0 for s in segments):
            return [Value(len(s) / (float(s.max()) / 1e9)) for s in segments]
        if reps and all(r.get("throughput_ips") for r in reps):
            return [Value(r["throughput_ips"]) for r in reps]
        return [Value(run.summary.throughput_ips)] if run.summary.throughput_ips else None

    sides = _sides(pair, of)
    if sides is None:
        return []
    source = " and ".join(dict.fromkeys(
        "--expected-qps" if r.summary.offline.expected_qps_source != "probe" else "the expected-QPS probe"
        for r in (*pair.a, *pair.b) if r.summary.offline is not None)) or "an unknown source"
    row = metric_row("offline throughput", "samples/s", *sides, False, settings, streams(3))
    row["note"] = OFFLINE_NOTE.format(source=source, ci="the CI is from the replicates alone"
                                      if row["method"] == HIERARCHICAL else
                                      "a CI needs several runs or repetitions a side")
    return [row]


def pair_verdict(rows: list[dict[str, Any]]) -> str | None:
    """The pair in one phrase: "B slower" / "B faster" if any metric is and none says the opposite,
    "mixed" if both, else "within run-to-run noise" or "no significant difference"."""
    verdicts = {r["verdict"] for r in rows}
    if not rows:
        return None
    if SLOWER in verdicts and FASTER in verdicts:
        return "mixed"
    for v in (SLOWER, FASTER, WITHIN_NOISE):
        if v in verdicts:
            return v
    return NO_DIFFERENCE if NO_DIFFERENCE in verdicts else sorted(verdicts)[0]


def regressions(result: dict, fail_above: float) -> list[dict[str, Any]]:
    """The metrics whose verdict is "B slower" and whose slowdown's lower bound exceeds
    ``fail_above`` (a fraction: 0.1 is 10 %)."""
    found = []
    for pair in result["pairs"]:
        for m in pair["metrics"]:
            low = m["slowdown_ci"][0] if m.get("slowdown_ci") else m.get("slowdown")
            if m["verdict"] == SLOWER and low is not None and low > fail_above:
                found.append({"benchmark": pair["benchmark"], "scenario": pair["scenario"],
                              "a": pair["a"]["sut"], "b": pair["b"]["sut"], "metric": m["metric"],
                              "slowdown": m["slowdown"], "slowdown_low": low})
    return found


def _ident(runs: list[RunRecord]) -> dict[str, Any]:
    first = runs[0]
    return {"path": first.path, "sut": first.sut, "valid": all(r.summary.valid for r in runs),
            "model": model_name(first.summary.model), "runs": [r.path for r in runs]}


def compare(a_paths, b_paths, confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
            noise_floor: float = DEFAULT_NOISE_FLOOR, pairs: Sequence = (),
            fail_above: float | None = None) -> dict:
    """The whole comparison as a JSON-ready dict (what ``--json`` prints).

    ``noise_floor`` and ``fail_above`` are fractions (0.05 is 5 %); ``pairs`` holds ``--pair``
    specifications ("A_RUN=B_RUN" or (A names, B names))."""
    check_settings(confidence, resamples)
    return compare_runs(load_runs(a_paths), load_runs(b_paths), a_paths, b_paths, confidence,
                        resamples, seed, noise_floor, pairs, fail_above)


def check_settings(confidence: float, resamples: int) -> None:
    if not (isinstance(confidence, float) and math.isfinite(confidence) and 0 < confidence < 1):
        raise UsageError(f"confidence {confidence!r} is not a number strictly between 0 and 1")
    if not (isinstance(resamples, int) and 1 <= resamples <= MAX_RESAMPLES):
        raise UsageError(f"resamples {resamples!r} is not a whole number from 1 to {MAX_RESAMPLES:,}")


def compare_runs(a: list[RunRecord], b: list[RunRecord], a_paths, b_paths, confidence: float = 0.95,
                 resamples: int = 2000, seed: int = 0, noise_floor: float = DEFAULT_NOISE_FLOOR,
                 pairs: Sequence = (), fail_above: float | None = None) -> dict:
    """:func:`compare` of runs already read (``a_paths`` and ``b_paths`` as the result names them)."""
    check_settings(confidence, resamples)
    explicit = resolve_pairs(pairs, a, b)
    paired, unpaired = pair_runs(a, b, explicit)
    settings = Settings(confidence, resamples, seed, noise_floor)
    out_pairs = []
    for i, pair in enumerate(paired):
        rows = compare_pair(pair, settings, i)
        pair.notes += unstable_notes(pair) + int8_host_notes(pair)
        out_pairs.append({"benchmark": pair.key[0], "scenario": pair.key[1], "paired_by": pair.paired_by,
                          "a": _ident(pair.a), "b": _ident(pair.b), "verdict": pair_verdict(rows),
                          "notes": pair.notes, "metrics": rows})
    result = {
        "a": [str(p) for p in a_paths], "b": [str(p) for p in b_paths],
        "confidence": confidence, "resamples": resamples, "seed": seed, "noise_floor": noise_floor,
        "method": METHOD, "pairs": out_pairs,
        "unpaired": [{"side": side, "benchmark": r.key[0], "scenario": r.key[1],
                      "model": model_name(r.summary.model), "path": r.path, "sut": r.sut,
                      "valid": r.summary.valid} for side, r in unpaired],
        "fail_above": fail_above, "regressions": [],
    }
    if fail_above is not None:
        result["regressions"] = regressions(result, fail_above)
    return result
