"""``compare`` with a published MLPerf Tiny result on one side: a run (or a package's runs) held
against the figures a submitter published, both systems shown.

A published result is single figures: the median throughput of one performance run (its five
window throughputs are in its log), an accuracy, maybe an energy. Nothing measures how far a
second run of that system would land, so there is no bootstrap and no confidence interval: the
throughput ratio is held against the noise floor of :func:`.metrics.noise_floor` (the given floor,
raised to z x sqrt(dA^2 + dB^2) where both sides' windows say their machine drifted more), and the
verdict is "B faster" / "B slower" only beyond it, else "within run-to-run noise". Latency is
1000 / throughput on both sides (MLCommons' final report derives it so), so it gets the same
verdict. Accuracy is measured on the same test set and published with one decimal (AUC with two
or three): its difference is shown, and called equal at the published precision, never noise.

Pairing is by benchmark (kws01 is MLPerf's kws) and mode: a run of mode performance gets the
throughput rows, accuracy the accuracy row, all both. ``--published PATH:SUBMITTER/SYSTEM`` (or
``PATH:VERSION/SUBMITTER/SYSTEM``) picks the published result; without a selection every
published result of the run's benchmark in PATH is compared, at most :data:`MAX_PAIRS`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from ..errors import UsageError, did_you_mean
from ..published import ranking
from ..published.tree import PublishedResult, read_published, version_of
from ..results.read import RunRecord, load_runs
from ..submission.layout import SHORT
from .bootstrap import Median, Value
from .metrics import Settings, _floor_verdict, check_settings, compare_runs, noise_floor, pair_verdict, regressions
from .verdicts import DEFAULT_NOISE_FLOOR, FASTER, SLOWER

MAX_PAIRS = 20
METHOD = ("published figures are single values from one run: no bootstrap, no CI; the throughput "
          "ratio is held against the noise floor (the given one, or z x sqrt(dA^2 + dB^2) from both "
          "sides' window drift, whichever is larger); latency = 1000 / throughput; accuracy is "
          "compared at the published precision")
EQUAL, HIGHER, LOWER = "equal at the published precision", "B higher", "B lower"


class _Figure(Value):
    """A published median throughput, with the drift of its log's windows where it has two or more."""

    def __init__(self, value: float, windows: Sequence[float]) -> None:
        super().__init__(value)
        self.drift = Median(windows).drift if len(windows) >= 2 else None


def parse_spec(spec: str) -> tuple[Path, str | None]:
    """``PATH[:SELECTION]`` as (path, selection or None); a UsageError when PATH does not exist."""
    if os.path.exists(spec):
        return Path(spec), None
    path, sep, selection = spec.rpartition(":")
    if sep and path and os.path.exists(path):
        return Path(path), selection.strip("/") or None
    raise UsageError(f"--published {spec}: no such file or folder (PATH or PATH:SUBMITTER/SYSTEM)")


def pick(results: list[PublishedResult], selection: str | None, spec: str) -> list[PublishedResult]:
    """The results named by ``[VERSION/]SUBMITTER[/SYSTEM]`` (any case), all when None."""
    if selection is None:
        return results
    parts = selection.split("/")
    version = version_of([parts[0]]) if len(parts) > 1 else "?"
    if version != "?":
        parts = parts[1:]
        results = [r for r in results if r.version == version]
    submitter, system = parts[0].casefold(), "/".join(parts[1:]).casefold()
    chosen = [r for r in results if r.submitter.casefold() == submitter]
    if not chosen:
        raise UsageError(f"--published {spec}: no submitter {parts[0]!r}"
                         f"{did_you_mean(parts[0], sorted({r.submitter for r in results}))}")
    if system:
        names = {r.system.casefold(): r.system for r in chosen}
        chosen = [r for r in chosen if system in (r.system.casefold(), f"{r.system}/{r.variant}".casefold())]
        if not chosen:
            raise UsageError(f"--published {spec}: {parts[0]} published no system {'/'.join(parts[1:])!r}"
                             f"{did_you_mean('/'.join(parts[1:]), sorted(names.values()))}")
    return chosen


def compare_paths(a_paths, b_paths, published_specs: Sequence[str] = (), confidence: float = 0.95,
                  resamples: int = 2000, seed: int = 0, noise_floor: float = DEFAULT_NOISE_FLOOR,
                  pairs: Sequence = (), fail_above: float | None = None) -> dict:
    """:func:`.metrics.compare`, where A or B may be published results: a results tree among the
    paths, or ``published_specs`` (``PATH[:SELECTION]``, side A)."""
    check_settings(confidence, resamples)
    found: dict[str, list[PublishedResult]] = {"A": [], "B": []}
    a = load_runs(a_paths, published=found["A"]) if a_paths else []
    b = load_runs(b_paths, published=found["B"]) if b_paths else []
    for spec in published_specs:
        path, selection = parse_spec(spec)
        found["A"] += pick(read_published([path]).results, selection, spec)
    if not published_specs and not found["A"] and not found["B"]:
        return compare_runs(a, b, a_paths, b_paths, confidence, resamples, seed, noise_floor, pairs,
                            fail_above)
    if found["A"] and found["B"] or (found["A"] and a) or (found["B"] and b):
        raise UsageError("compare holds runs against published results: give the published "
                         "results on one side only, and runs on the other")
    if pairs:
        raise UsageError("--pair names runs; pick a published result with --published "
                         "PATH:SUBMITTER/SYSTEM")
    side = "A" if found["A"] or published_specs else "B"
    runs = b if side == "A" else a
    if not runs:
        raise UsageError("no runs to compare with the published results: give a run directory, a "
                         "folder of runs or a package on the other side")
    settings = Settings(confidence, resamples, seed, noise_floor)
    out_pairs, unpaired = [], []
    for run in runs:
        matching = [r for r in found[side] if r.benchmark == SHORT.get(run.summary.benchmark)]
        if not matching:
            unpaired.append({"side": "B" if side == "A" else "A", "benchmark": run.key[0],
                             "scenario": run.key[1], "model": run.summary.model.path, "path": run.path,
                             "sut": run.sut, "valid": run.summary.valid})
        for published in matching:
            out_pairs.append(_pair(run, published, side, settings))
    if len(out_pairs) > MAX_PAIRS:
        names = sorted({p["published"]["name"] for p in out_pairs})
        raise UsageError(f"{len(out_pairs)} pairs of runs and published results; pick one with "
                         f"--published PATH:SUBMITTER/SYSTEM (e.g. {names[0]}; "
                         "'tinyharness published --benchmark ...' lists them)")
    result = {"kind": "published", "a": [str(p) for p in a_paths or published_specs],
              "b": [str(p) for p in b_paths], "confidence": confidence, "noise_floor": noise_floor,
              "method": METHOD, "pairs": out_pairs, "unpaired": unpaired, "fail_above": fail_above,
              "regressions": []}
    if fail_above is not None:
        result["regressions"] = regressions(result, fail_above)
    return result


def _ident_run(run: RunRecord) -> dict:
    mine = ranking.mine_of(run)
    return {"path": run.path, "sut": run.label or run.sut, "valid": run.summary.valid,
            "run": re.split(r"[\\/:]", run.path.rstrip("/\\"))[-1],
            "model": Path(run.summary.model.path).name, "runs": [run.path], "published": False,
            "system": {"name": run.label or run.sut, "board": mine.board, "processor": mine.processor,
                       "framework": mine.framework}}


def _ident_published(r: PublishedResult) -> dict:
    processor = r.processor + (f" at {r.frequency}" if r.frequency and r.processor else "")
    return {"path": r.source("throughput") or r.source("accuracy") or "", "valid": True,
            "sut": f"published {r.name} ({r.version}, {r.division})", "model": r.benchmark,
            "runs": [], "published": True,
            "system": {"name": r.name, "board": r.board, "processor": processor,
                       "framework": r.framework, "accelerator": r.accelerator}}


def _pair(run: RunRecord, published: PublishedResult, side: str, settings: Settings) -> dict:
    s = run.summary
    sides = {side: _ident_published(published), ("B" if side == "A" else "A"): _ident_run(run)}
    notes = [f"{'A' if side == 'A' else 'B'} is published: single figures from one run, no "
             "run-to-run spread and no per-query data (no bootstrap, no CI)"]
    notes += [f"published: {n}" for n in published.notes]
    rows = []
    if s.mode in ("performance", "all"):
        rows += _throughput_rows(run, published, side, settings, notes)
    if s.mode in ("accuracy", "all"):
        rows += _accuracy_rows(run, published, side, notes)
    if published.energy_uj is not None:
        energy = {side.lower(): published.energy_uj, ("b" if side == "A" else "a"): None}
        rows.append({"metric": "median energy", "unit": "uJ/inf", **energy, "ratio": None,
                     "relative_difference": None, "ci": None, "verdict": "-", "method": None,
                     "note": "tinyharness measures no energy", "slowdown": None, "slowdown_ci": None})
    return {"benchmark": s.benchmark, "scenario": s.scenario, "paired_by": "benchmark and mode",
            "a": sides["A"], "b": sides["B"], "published": published.to_dict(),
            "verdict": pair_verdict([r for r in rows if r["verdict"] in (SLOWER, FASTER) or r.get("method")]),
            "notes": notes, "metrics": rows}


def _throughput_rows(run, published, side, settings, notes) -> list[dict]:
    windows = run.summary.windows
    if windows is None or not windows.throughput_ips:
        notes.append("the run has no MLPerf Tiny windows (offline?): no throughput to compare")
        return []
    if published.throughput_ips is None:
        notes.append("no published throughput")
        return []
    mine = Median(windows.throughput_ips)
    mine.value = windows.median_throughput_ips
    theirs = _Figure(published.throughput_ips, published.windows)
    side_a, side_b = ([[theirs]], [[mine]]) if side == "A" else ([[mine]], [[theirs]])
    floor, raised = noise_floor(side_a, side_b, settings)
    a, b = side_a[0][0].value, side_b[0][0].value
    rel = b / a - 1.0
    slow = 1.0 / (1.0 + rel) - 1.0
    note = f"noise floor {floor:.1%}" + (": raised by the windows' drift on both sides" if raised else "")
    method = "published figure, noise floor, no CI"
    rows = [{"metric": "median throughput", "unit": "inf/s", "a": a, "b": b, "ratio": b / a,
             "relative_difference": rel, "ci": None, "verdict": _floor_verdict(rel, None, floor, False),
             "note": note, "method": method, "slowdown": slow, "slowdown_ci": None}]
    lat_rel = a / b - 1.0
    rows.append({"metric": "latency (1000 / throughput)", "unit": "ms", "a": 1000 / a, "b": 1000 / b,
                 "ratio": a / b, "relative_difference": lat_rel, "ci": None,
                 "verdict": _floor_verdict(lat_rel, None, floor, True), "note": None, "method": method,
                 "slowdown": lat_rel, "slowdown_ci": None})
    return rows


def _accuracy_rows(run, published, side, notes) -> list[dict]:
    acc = run.summary.accuracy
    if acc is None or acc.value is None or published.accuracy is None:
        notes.append("accuracy: not on both sides")
        return []
    if acc.metric != published.accuracy_metric:
        notes.append(f"accuracy: {acc.metric} against a published {published.accuracy_metric}")
        return []
    a, b = (published.accuracy, acc.value) if side == "A" else (acc.value, published.accuracy)
    digits = 1 if acc.metric == "top1" else 2
    verdict = EQUAL if round(a, digits) == round(b, digits) else HIGHER if b > a else LOWER
    return [{"metric": "top-1 accuracy" if acc.metric == "top1" else "AUC",
             "unit": "%" if acc.metric == "top1" else "", "a": a, "b": b, "ratio": None,
             "relative_difference": None, "difference": b - a, "ci": None, "verdict": verdict,
             "method": None, "note": "the same test set on both sides; published with "
             f"{digits} decimal{'s' * (digits > 1)}: a difference, not noise", "slowdown": None,
             "slowdown_ci": None}]


def print_published(result: dict) -> None:
    """Per pair: both systems, then the metrics with the ratio B / A and the verdict."""
    from rich.text import Text

    from ..tables import Col, console, print_table

    out = console()
    notes: dict[str, None] = {}
    for pair in result["pairs"]:
        names = {side: pair[side]["sut"] + (f" (run {pair[side]['run']})" if pair[side].get("run") else "")
                 for side in ("a", "b")}
        title = f"{pair['benchmark']} {pair['scenario']}: A = {names['a']}, B = {names['b']}"
        out.print(Text(title, style="bold"), soft_wrap=True)
        systems = [(side, pair[side.lower()]["system"]) for side in ("A", "B")]
        print_table((Col("side", nowrap=True), Col("system", key=True), "board", "processor", "framework"),
                    [(side, s["name"], s["board"] or "-", s["processor"] or "-", s["framework"] or "-")
                     for side, s in systems], out=out)
        for note in pair["notes"]:
            notes[note] = None
        rows = []
        for m in pair["metrics"]:
            unit = f", {m['unit']}" if m["unit"] else ""
            diff = (f"{m['relative_difference']:+.1%}" if m.get("relative_difference") is not None else
                    f"{m['difference']:+.2f}{' pp' if m['unit'] == '%' else ''}" if m.get("difference") is not None
                    else "-")
            style = {SLOWER: "red", FASTER: "green"}.get(m["verdict"], "")
            fmt = _fmt if m.get("ratio") is not None or m.get("difference") is None else "{:g}".format
            rows.append((m["metric"] + unit, fmt(m["a"]), fmt(m["b"]),
                         "-" if m.get("ratio") is None else f"{m['ratio']:.3g}", diff,
                         Text(m["verdict"], style)))
            if m.get("note"):
                notes[f"{m['metric']}: {m['note']}"] = None
        print_table((Col("metric", key=True), Col("A", nowrap=True, justify="right"),
                     Col("B", nowrap=True, justify="right"), Col("B / A", nowrap=True, justify="right"),
                     Col("B vs A", nowrap=True, justify="right"), Col("verdict")), rows, out=out)
        out.print()
    if not result["pairs"]:
        out.print("no pairs: no run has the benchmark of a published result given")
    for r in result["unpaired"]:
        out.print(Text(f"unpaired, only in {r['side']}: {r['benchmark']} {r['scenario']} {r['sut']} "
                       f"({r['path']}): no published result of its benchmark"), soft_wrap=True)
    for note in notes:
        out.print(Text(f"note: {note}"), soft_wrap=True)


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if abs(v) >= 0.1 else f"{v:.4g}"
