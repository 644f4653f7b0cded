"""``tinyharness compare A B``: is B faster or slower than A, beyond run-to-run noise?

A and B are run directories, folders of them, or submission packages (a folder or a .tar.gz):
every directory holding a summary.json is a run, so packages need none of their own code here.
Runs pair by (benchmark, scenario). Per metric the verdict is "B faster", "B slower" or "no
significant difference" (the bootstrap confidence interval of (B - A) / A includes 0).

Latency percentiles use an exact bootstrap of the order statistic: LoadGen's percentile of a
resample of n latencies with replacement is ``sorted[floor(n * U)]`` with U the k-th smallest of
n uniforms, i.e. ``U ~ Beta(k, n + 1 - k)``, k = floor(n * p) + 1. That has the same distribution
as resampling all n values and costs O(resamples), so no run is ever subsampled.
Only click is imported at module level; numpy loads inside the functions that need it.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any



from .errors import UsageError

OFFLINE_NOTE = ("offline is one query: there is nothing to resample, so no CI (plain ratio of "
                "samples/s from the completion times); its size came from {source}. For a CI, "
                "compare single-stream runs (per-query latencies and the MLPerf Tiny windows, "
                "neither sized by a probe).")


@dataclass
class RunData:
    """One run as compare and report read it: summary.json and the per-query latencies (ns)."""

    path: str
    summary: dict[str, Any]
    latencies: Any = None  # numpy int64 array, or None when latencies.npy is absent
    label: str = field(default="")

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.summary.get("benchmark", "?")), str(self.summary.get("scenario", "?")))

    @property
    def sut(self) -> str:
        return str(self.summary.get("sut", "?"))


def _parse_summary(data: bytes, where: str) -> dict[str, Any]:
    try:
        summary = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{where}: not readable JSON: {exc}") from None
    if not isinstance(summary, dict):
        raise UsageError(f"{where}: not a run summary (a JSON object)")
    return summary


def _npy(data: bytes, where: str):
    import numpy as np

    try:
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64, copy=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: unreadable: {exc}") from None


def _from_tar(path: Path) -> list[RunData]:
    """Runs read straight out of a package archive, without extracting it anywhere."""
    runs = []
    with tarfile.open(path) as tar:
        files = {PurePosixPath(m.name): m for m in tar.getmembers() if m.isfile()}
        for name in sorted(n for n in files if n.name == "summary.json"):
            summary = _parse_summary(tar.extractfile(files[name]).read(), f"{path}:{name}")
            npy = files.get(name.parent / "latencies.npy")
            latencies = _npy(tar.extractfile(npy).read(), f"{path}:{npy.name}") if npy else None
            runs.append(RunData(f"{path}:{name.parent}", summary, latencies))
    return runs


def _from_dir(run_dir: Path) -> RunData:
    summary = _parse_summary((run_dir / "summary.json").read_bytes(), str(run_dir / "summary.json"))
    npy = run_dir / "latencies.npy"
    latencies = _npy(npy.read_bytes(), str(npy)) if npy.is_file() else None
    return RunData(str(run_dir), summary, latencies)


def load_runs(paths: list[Path] | tuple[Path, ...]) -> list[RunData]:
    """Every run under the paths (run directories, folders of runs, packages), in path order,
    each labelled by its SUT (with a number where two runs share one)."""
    runs: list[RunData] = []
    for path in paths:
        path = Path(path)
        if path.is_file() and tarfile.is_tarfile(path):
            found = _from_tar(path)
        elif path.is_dir():
            found = [_from_dir(s.parent) for s in sorted(path.rglob("summary.json")) if s.is_file()]
        else:
            raise UsageError(f"{path} is neither a folder nor a .tar.gz package")
        if not found:
            raise UsageError(f"no run directories (a folder holding summary.json) under {path}")
        runs += found
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.sut] = seen.get(run.sut, 0) + 1
        run.label = run.sut if seen[run.sut] == 1 else f"{run.sut} #{seen[run.sut]}"
    return runs


def pair_runs(a: list[RunData], b: list[RunData]):
    """(pairs, unpaired): same (benchmark, scenario) on both sides, several of one key matched in
    order of start time; the rest unpaired as ("A" | "B", run)."""
    def groups(runs):
        out: dict[tuple[str, str], list[RunData]] = {}
        for run in sorted(runs, key=lambda r: (str(r.summary.get("started", "")), r.path)):
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


def compare_pair(a: RunData, b: RunData, confidence: float, resamples: int, seed: int,
                 index: int = 0) -> list[dict[str, Any]]:
    """The metric rows of one pair; each random stream is seeded by (seed, pair index, metric)."""
    import numpy as np

    from .stats import percentile

    rng = lambda m: np.random.default_rng([seed, index, m])
    sa, sb, rows = a.summary, b.summary, []
    if a.key[1] == "offline":
        if sa.get("offline") and sb.get("offline"):
            ta, tb = (_offline_ips(r) for r in (a, b))
            source = " and ".join(dict.fromkeys(
                "--expected-qps" if (r.summary["offline"].get("expected_qps_source") != "probe")
                else "the expected-QPS probe" for r in (a, b)))
            rows.append(_metric("offline throughput", "samples/s", ta, tb, lower_is_better=False,
                                note=OFFLINE_NOTE.format(source=source)))
        return rows
    la, lb = sa.get("latency_us"), sb.get("latency_us")
    if la and lb:
        have = a.latencies is not None and b.latencies is not None and len(a.latencies) and len(b.latencies)
        xa, xb = (np.sort(r.latencies) for r in (a, b)) if have else (None, None)
        for m, (p, name) in enumerate(((0.50, "p50"), (0.90, "p90"))):
            if have:
                rows.append(_metric(f"{name} latency", "us", percentile(xa, p) / 1e3,
                                    percentile(xb, p) / 1e3,
                                    percentile_draws(xa, p, resamples, rng(2 * m)),
                                    percentile_draws(xb, p, resamples, rng(2 * m + 1)), confidence))
            else:
                rows.append(_metric(f"{name} latency", "us", la[name], lb[name],
                                    note="latencies.npy missing: summary values, no CI"))
    wa, wb = sa.get("windows"), sb.get("windows")
    if wa and wb and wa.get("throughput_ips") and wb.get("throughput_ips"):
        va, vb = (np.asarray(w["throughput_ips"], float) for w in (wa, wb))
        args, note = (), f"{len(va)} vs {len(vb)} windows: a coarse CI"
        if len(va) > 1 and len(vb) > 1:  # resample the windows, take the median of each resample
            args = tuple(np.median(v[rng(4 + i).integers(0, len(v), (resamples, len(v)))], axis=1)
                         for i, v in enumerate((va, vb)))
        else:
            note = "a single window: no CI"
        rows.append(_metric("median window throughput", "inf/s", float(np.median(va)),
                            float(np.median(vb)), *args, confidence=confidence,
                            lower_is_better=False, note=note))
    return rows


def _offline_ips(run: RunData) -> float:
    """Samples per second of the offline query: from the completion times where present."""
    if run.latencies is not None and len(run.latencies) and run.latencies.max() > 0:
        return len(run.latencies) / (float(run.latencies.max()) / 1e9)
    return float(run.summary.get("throughput_ips") or 0.0)


def compare(a_paths, b_paths, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict:
    """The whole comparison as a JSON-ready dict (what ``--json`` prints)."""
    a, b = load_runs(a_paths), load_runs(b_paths)
    pairs, unpaired = pair_runs(a, b)
    ident = lambda r: {"path": r.path, "sut": r.sut, "valid": r.summary.get("valid")}
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
