"""Which runs of A and B are compared: one configuration (benchmark, scenario, SUT, model) a pair,
several runs of it on a side as replicates; ``--pair`` for anything else. Also the replicates'
data: repetitions, and latencies.npy cut into them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import UsageError
from ..results.read import RunRecord

# -- pairing ---------------------------------------------------------------------------------------
@dataclass
class Pair:
    """The runs of side A and of side B compared as one configuration each (replicates)."""

    a: list[RunRecord]
    b: list[RunRecord]
    paired_by: str = "configuration"  # or "--pair"
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.a[0].key


def _file_name(path: str) -> str:
    """The last component of a run's path (a folder, or an archive member after the ':')."""
    return re.split(r"[\\/:]", path.rstrip("/\\"))[-1]


def model_name(model) -> str:
    """The model as tables show it: its file name, or "device"."""
    return "device" if model.on_device else re.split(r"[\\/]", model.path)[-1]


def same_model(x, y) -> bool:
    """Models (``results.sections.Model``) as pairing sees them: on a device both, or the same
    sha256 when both have one, else the same file name."""
    if x.on_device or y.on_device:
        return x.on_device and y.on_device
    if x.sha256 and y.sha256:
        return x.sha256 == y.sha256
    return model_name(x) == model_name(y)


def same_configuration(x: RunRecord, y: RunRecord) -> bool:
    """Benchmark, scenario, SUT and model all the same: replicates of one configuration."""
    s, t = x.summary, y.summary
    return (s.benchmark, s.scenario, s.sut) == (t.benchmark, t.scenario, t.sut) and same_model(s.model,
                                                                                             t.model)


def pair_runs(a: list[RunRecord], b: list[RunRecord], explicit: Sequence[Pair] = ()):
    """(pairs, unpaired): the explicit pairs, then one pair per configuration found on both sides
    (all its runs on each side as replicates, in order of start time); the runs of configurations
    on one side only are unpaired, as ("A" | "B", run)."""
    named = {id(r) for p in explicit for r in (*p.a, *p.b)}
    configs: list[tuple[RunRecord, list[RunRecord], list[RunRecord]]] = []
    for side, runs in ((1, a), (2, b)):
        for run in sorted(runs, key=lambda r: (r.summary.started, r.path)):
            if id(run) in named:
                continue
            for config in configs:
                if same_configuration(config[0], run):
                    config[side].append(run)
                    break
            else:
                configs.append((run, [run] if side == 1 else [], [run] if side == 2 else []))
    pairs = list(explicit) + [Pair(ca, cb) for _, ca, cb in configs if ca and cb]
    unpaired = ([("A", r) for _, ca, cb in configs if not cb for r in ca]
                + [("B", r) for _, ca, cb in configs if not ca for r in cb])
    return pairs, unpaired


def parse_pair(spec: str) -> tuple[list[str], list[str]]:
    """``A_RUN[,A_RUN...]=B_RUN[,B_RUN...]`` as (A names, B names); a UsageError otherwise."""
    left, sep, right = spec.partition("=")
    names = lambda text: [n.strip() for n in text.split(",") if n.strip()]  # noqa: E731
    if not sep or not names(left) or not names(right):
        raise UsageError(f"--pair {spec!r} is not A_RUN=B_RUN (run paths or run directory names, "
                         "several replicates separated by commas)")
    return names(left), names(right)


def _find(name: str, runs: list[RunRecord], side: str) -> RunRecord:
    def named(run: RunRecord) -> bool:
        if name in (run.path, _file_name(run.path)):
            return True
        mine, theirs = Path(name), Path(run.path)
        return mine.is_dir() and theirs.is_dir() and mine.resolve() == theirs.resolve()

    found = [r for r in runs if named(r)]
    if len(found) != 1:
        what = "no run" if not found else f"{len(found)} runs"
        raise UsageError(f"--pair: {what} in {side} named {name!r}"
                         + ("; give its path" if found else "; give a run path or run directory name "
                            "as 'tinyharness compare' prints it"))
    return found[0]


def resolve_pairs(specs, a: list[RunRecord], b: list[RunRecord]) -> list[Pair]:
    """The ``--pair`` specifications (strings, or (A names, B names)) as pairs of run records."""
    pairs = []
    for spec in specs:
        left, right = (([n] if isinstance(n, str) else n) for n in
                       (parse_pair(spec) if isinstance(spec, str) else spec))
        pair = Pair([_find(n, a, "A") for n in left], [_find(n, b, "B") for n in right], "--pair")
        for side, runs in (("A", pair.a), ("B", pair.b)):
            if len({r.key for r in runs}) > 1:
                names = ", ".join(_file_name(r.path) for r in runs)
                raise UsageError(f"--pair: the {side} runs {names} are not of one benchmark and scenario")
            if not all(same_configuration(runs[0], r) for r in runs[1:]):
                pair.notes.append(f"the {side} runs differ in SUT or model; compared as replicates, "
                                  "as --pair says")
        if pair.a[0].key != pair.b[0].key:
            raise UsageError(f"--pair: {pair.a[0].key[0]} {pair.a[0].key[1]} against "
                             f"{pair.b[0].key[0]} {pair.b[0].key[1]}: a pair needs one benchmark and "
                             "scenario")
        pairs.append(pair)
    return pairs


# -- replicates ------------------------------------------------------------------------------------
MAX_VALUES = 1_000  # repetitions of one run, windows of one run: far beyond any run (5 windows),
# and a bound on the bootstrap's work, which grows with them (seconds at --resamples 100000)


def repetitions(run: RunRecord) -> list[dict[str, Any]] | None:
    """``summary.repetitions.runs`` as plain dicts, or None (a run of one repetition)."""
    reps = getattr(run.summary, "repetitions", None)
    if reps is None or len(reps.runs) < 2:
        return None
    if len(reps.runs) > MAX_VALUES:
        raise UsageError(f"{run.path}: {len(reps.runs):,} repetitions in summary.json; compare reads "
                         f"at most {MAX_VALUES:,} a run")
    return [dataclasses.asdict(r) for r in reps.runs]


def unstable_notes(pair: Pair) -> list[str]:
    """One note per run whose own stability diagnostics (summary.json's ``stability``) warn."""
    notes = []
    for side, runs in (("A", pair.a), ("B", pair.b)):
        for run in runs:
            stability = getattr(run.summary, "stability", None)
            if stability is not None and stability.unstable:
                notes.append(f"{side} run {_file_name(run.path)} was unstable: "
                             + "; ".join(stability.warnings))
    return notes


def int8_host_notes(pair: Pair) -> list[str]:
    """A note when int8 runs of the pair ran on CPUs with and without an int8 dot product (x86
    VNNI / AMX, ARM dotprod / i8mm; summary.json's ``system.cpu_features``): the runtimes take
    other int8 kernels on each (OpenVINO's saturate without VNNI), so outputs, accuracy and
    latency differ for that reason too. Runs that do not record their CPU's features say nothing."""
    from ..system import has_int8_dot_product

    hosts: dict[bool, list[str]] = {}
    for side, runs in (("A", pair.a), ("B", pair.b)):
        for run in runs:
            system = run.summary.system
            dot = has_int8_dot_product(system.cpu_features)
            if system.precision == "int8" and dot is not None:
                hosts.setdefault(dot, []).append(f"{side} {_file_name(run.path)}")
    if len(hosts) < 2:
        return []
    return [f"int8 on CPUs with an int8 dot product ({', '.join(hosts[True])}) and without one "
            f"({', '.join(hosts[False])}): the runtimes' int8 kernels differ between them, so "
            "outputs and accuracy may differ for that reason alone"]


def _segments(run: RunRecord, reps: list[dict] | None, notes: dict[str, None]):
    """latencies.npy cut into its repetitions (one segment without them), or None if absent."""
    import numpy as np

    lat = run.latencies
    if lat is None or not len(lat):
        return None
    if reps:
        counts = [int(r.get("queries") or 0) for r in reps]
        if min(counts) > 0 and sum(counts) == len(lat):
            return np.split(lat, np.cumsum(counts)[:-1])
        notes[f"{_file_name(run.path)}: the repetitions' query counts do not add up to "
              "latencies.npy; read as one repetition"] = None
    return [lat]
