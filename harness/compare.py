"""``tinyharness compare A B``: is B faster or slower than A, beyond run-to-run noise?

A and B are run directories, folders of them, or submission packages (a folder or a .tar.gz),
read through :mod:`tinyharness.results.read` as typed run records (every directory holding a
summary.json is a run, schema 1 or 2).
Runs pair by (benchmark, scenario). Per metric the verdict is "B faster", "B slower" or "no
significant difference" (the bootstrap confidence interval of (B - A) / A includes 0).

Latency percentiles use an exact bootstrap of the order statistic: LoadGen's percentile of a
resample of n latencies with replacement is ``sorted[floor(n * U)]`` with U the k-th smallest of
n uniforms, i.e. ``U ~ Beta(k, n + 1 - k)``, k = floor(n * p) + 1. That has the same distribution
as resampling all n values and costs O(resamples), so no run is ever subsampled.
numpy and rich load inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import math
from typing import Any

from .results.read import RunRecord, load_runs

OFFLINE_NOTE = ("offline is one query: there is nothing to resample, so no CI (plain ratio of "
                "samples/s from the completion times); its size came from {source}. For a CI, "
                "compare single-stream runs (per-query latencies and the MLPerf Tiny windows, "
                "neither sized by a probe).")


def pair_runs(a: list[RunRecord], b: list[RunRecord]):
    """(pairs, unpaired): same (benchmark, scenario) on both sides, several of one key matched in
    order of start time; the rest unpaired as ("A" | "B", run)."""
    def groups(runs):
        out: dict[tuple[str, str], list[RunRecord]] = {}
        for run in sorted(runs, key=lambda r: (r.summary.started, r.path)):
            out.setdefault(run.key, []).append(run)
        return out

    ga, gb = groups(a), groups(b)
    pairs, unpaired = [], []
    for key in dict.fromkeys([*ga, *gb]):
        la, lb = ga.get(key, []), gb.get(key, [])
        pairs += list(zip(la, lb))
        unpaired += [("A", r) for r in la[len(lb):]] + [("B", r) for r in lb[len(la):]]
    return pairs, unpaired


def _verdict(lo: float, hi: float, lower_is_better: bool) -> str:
    if lo > 0:
        return "B slower" if lower_is_better else "B faster"
    if hi < 0:
        return "B faster" if lower_is_better else "B slower"
    return "no significant difference"


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _metric(name, unit, a, b, draws_a=None, draws_b=None, confidence=0.95, lower_is_better=True,
            note=None) -> dict[str, Any]:
    """One row: point values, (B - A) / A, its percentile CI from paired bootstrap draws."""
    import numpy as np

    rel = _finite((b - a) / a) if a else None
    row = {"metric": name, "unit": unit, "a": _finite(a), "b": _finite(b),
           "relative_difference": rel, "ci": None, "verdict": None, "note": note}
    if rel is None:
        row["verdict"] = "undefined (A is 0)"
    elif draws_a is None:
        faster = (rel < 0) == lower_is_better
        row["verdict"] = "no difference (no CI)" if rel == 0 else (
            f"{'B faster' if faster else 'B slower'} (no CI)")
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.asarray(draws_b, float) / np.asarray(draws_a, float) - 1.0
        ratios = ratios[np.isfinite(ratios)]
        tail = (1.0 - confidence) / 2.0
        lo, hi = (float(v) for v in np.quantile(ratios, [tail, 1.0 - tail]))
        row["ci"] = [lo, hi]
        row["verdict"] = _verdict(lo, hi, lower_is_better)
    return row


def percentile_draws(sorted_ns, p: float, resamples: int, rng):
    """Bootstrap draws of LoadGen's percentile ``sorted[floor(n * p)]`` (see the module docstring)."""
    import numpy as np

    n = len(sorted_ns)
    k = min(int(n * p), n - 1) + 1
    u = rng.beta(k, n + 1 - k, size=resamples)
    return sorted_ns[np.minimum((u * n).astype(np.int64), n - 1)]


def compare_pair(a: RunRecord, b: RunRecord, confidence: float, resamples: int, seed: int,
                 index: int = 0) -> list[dict[str, Any]]:
    """The metric rows of one pair; each random stream is seeded by (seed, pair index, metric)."""
    import numpy as np

    rng = lambda m: np.random.default_rng([seed, index, m])  # noqa: E731
    if a.key[1] == "offline":
        return _offline_rows(a, b)
    return _latency_rows(a, b, confidence, resamples, rng) + _window_rows(a, b, confidence, resamples, rng)


def _offline_rows(a: RunRecord, b: RunRecord) -> list[dict[str, Any]]:
    oa, ob = a.summary.offline, b.summary.offline
    if oa is None or ob is None:
        return []
    source = " and ".join(dict.fromkeys(
        "--expected-qps" if o.expected_qps_source != "probe" else "the expected-QPS probe"
        for o in (oa, ob)))
    return [_metric("offline throughput", "samples/s", _offline_ips(a), _offline_ips(b),
                    lower_is_better=False, note=OFFLINE_NOTE.format(source=source))]


def _latency_rows(a: RunRecord, b: RunRecord, confidence, resamples, rng) -> list[dict[str, Any]]:
    """p50 and p90 (random streams 0-3): bootstrapped from latencies.npy, else the summary's."""
    import numpy as np

    from .stats import percentile

    la, lb = a.summary.latency_us, b.summary.latency_us
    if la is None or lb is None:
        return []
    if not all(r.latencies is not None and len(r.latencies) for r in (a, b)):
        return [_metric(f"{name} latency", "us", getattr(la, name), getattr(lb, name),
                        note="latencies.npy missing: summary values, no CI") for name in ("p50", "p90")]
    xa, xb = np.sort(a.latencies), np.sort(b.latencies)
    return [_metric(f"{name} latency", "us", percentile(xa, p) / 1e3, percentile(xb, p) / 1e3,
                    percentile_draws(xa, p, resamples, rng(2 * m)),
                    percentile_draws(xb, p, resamples, rng(2 * m + 1)), confidence)
            for m, (p, name) in enumerate(((0.50, "p50"), (0.90, "p90")))]


def _window_rows(a: RunRecord, b: RunRecord, confidence, resamples, rng) -> list[dict[str, Any]]:
    """Median window throughput (random streams 4-5): windows resampled, median per resample."""
    import numpy as np

    wa, wb = a.summary.windows, b.summary.windows
    if wa is None or wb is None or not wa.throughput_ips or not wb.throughput_ips:
        return []
    va, vb = (np.asarray(w.throughput_ips, float) for w in (wa, wb))
    args, note = (), f"{len(va)} vs {len(vb)} windows: a coarse CI"
    if len(va) > 1 and len(vb) > 1:
        args = tuple(np.median(v[rng(4 + i).integers(0, len(v), (resamples, len(v)))], axis=1)
                     for i, v in enumerate((va, vb)))
    else:
        note = "a single window: no CI"
    return [_metric("median window throughput", "inf/s", float(np.median(va)), float(np.median(vb)),
                    *args, confidence=confidence, lower_is_better=False, note=note)]


def _offline_ips(run: RunRecord) -> float:
    """Samples per second of the offline query: from the completion times where present."""
    if run.latencies is not None and len(run.latencies) and run.latencies.max() > 0:
        return len(run.latencies) / (float(run.latencies.max()) / 1e9)
    return float(run.summary.throughput_ips or 0.0)


def compare(a_paths, b_paths, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """The whole comparison as a JSON-ready dict (what ``--json`` prints)."""
    a, b = load_runs(a_paths), load_runs(b_paths)
    pairs, unpaired = pair_runs(a, b)
    ident = lambda r: {"path": r.path, "sut": r.sut, "valid": r.summary.valid}  # noqa: E731
    return {
        "a": [str(p) for p in a_paths], "b": [str(p) for p in b_paths],
        "confidence": confidence, "resamples": resamples, "seed": seed,
        "method": "relative difference (B - A) / A; percentile bootstrap CI; latency percentiles by "
                  "LoadGen's rule sorted[floor(n*p)], resampled exactly via Beta order statistics "
                  "(no subsampling); windows resampled, median per resample",
        "pairs": [{"benchmark": x.key[0], "scenario": x.key[1], "a": ident(x), "b": ident(y),
                   "metrics": compare_pair(x, y, confidence, resamples, seed, i)}
                  for i, (x, y) in enumerate(pairs)],
        "unpaired": [{"side": side, "benchmark": r.key[0], "scenario": r.key[1], **ident(r)}
                     for side, r in unpaired],
    }


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(v) >= scale:
            return f"{v / (scale if prefix != 'k' else 1e3):.2f} {prefix}"
    return f"{v:.4g}"


def print_table(result: dict) -> None:
    """One table per pair (fits an 80-column terminal), then unpaired runs and notes."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    notes: dict[str, None] = {}
    for pair in result["pairs"]:
        title = (f"{pair['benchmark']} {pair['scenario']}: A = {pair['a']['sut']}, "
                 f"B = {pair['b']['sut']}")
        table = Table("metric", "A", "B", "B vs A", f"{result['confidence']:.0%} CI", "verdict",
                      title=Text(title), title_justify="left", box=box.SIMPLE_HEAD)
        for m in pair["metrics"] or [{"metric": "no performance data on both sides"}]:
            rel, ci = m.get("relative_difference"), m.get("ci")
            style = {"B faster": "green", "B slower": "red"}.get(m.get("verdict"), "")
            table.add_row(*(Text(c) for c in (
                f"{m['metric']} ({m['unit']})" if m.get("unit") else m["metric"],
                _fmt(m.get("a")), _fmt(m.get("b")),
                "-" if rel is None else f"{rel:+.1%}",
                "-" if ci is None else f"[{ci[0]:+.1%}, {ci[1]:+.1%}]")),
                Text(m.get("verdict") or "-", style))
            if m.get("note"):
                notes[f"{m['metric']}: {m['note']}"] = None
        console.print(table)
    if not result["pairs"]:
        console.print("no pairs: no (benchmark, scenario) is in both A and B")
    for r in result["unpaired"]:
        console.print(Text(f"unpaired, only in {r['side']}: {r['benchmark']} {r['scenario']} "
                           f"{r['sut']} ({r['path']})"))
    for note in notes:
        console.print(Text(f"note: {note}"))
