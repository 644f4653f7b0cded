"""A tinyharness result among the published ones: filters, the user's entries (from runs or
packages), the ranking by median throughput, and the rows tables and reports show.

The ranking is by median throughput (inf./s), highest first, as MLPerf Tiny's results table
orders it; results with equal throughput share a rank, results without one (accuracy or energy
only) come last, unranked. The user's entries are never filtered out, and are marked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from ..errors import UsageError, did_you_mean
from ..fileio import read_bounded
from ..results.read import RunRecord
from ..submission.layout import BENCHMARK_OF, EMBEDDED, SHORT
from .systems import parse as parse_system
from .tree import DIVISIONS, PublishedResult, version_of

MINE = "YOURS"  # the submitter cell of the user's rows
COLUMNS = ("rank", "submitter", "system", "processor", "framework", "inf/s", "latency ms",
           "accuracy", "energy µJ/inf", "version", "division")


def short_name(benchmark: str) -> str:
    """The MLPerf short name (kws) of a tinyharness benchmark id (kws01) or of itself; a one-line
    UsageError for anything else."""
    if benchmark in SHORT:
        return SHORT[benchmark]
    if benchmark in BENCHMARK_OF or benchmark == "sww":
        return benchmark
    raise UsageError(f"--benchmark {benchmark!r} has no published MLPerf Tiny results"
                     f"{did_you_mean(benchmark, [*SHORT, *BENCHMARK_OF])}; one of "
                     f"{', '.join(SHORT)} (or {', '.join(BENCHMARK_OF)})")


def version_name(text: str) -> str:
    """"v1.0" from "v1.0", "1.0" or "tiny_results_v1.0"; a UsageError otherwise."""
    found = version_of([text if text.lower().startswith(("v", "tiny")) else f"v{text}"])
    if found == "?":
        raise UsageError(f"--version {text!r} is not a version such as v1.0 or 1.2")
    return found


def select(results: Iterable[PublishedResult], benchmark: str | None = None, divisions: Sequence[str] = (),
           versions: Sequence[str] = (), processor: str | None = None,
           framework: str | None = None) -> list[PublishedResult]:
    """The results of ``benchmark`` (short name) in ``divisions`` and ``versions`` (all where
    empty) whose processor and framework contain the given text (ignoring case)."""
    def has(value: str, part: str | None) -> bool:
        return part is None or part.casefold() in value.casefold()

    return [r for r in results if (benchmark is None or r.benchmark == benchmark)
            and (not divisions or r.division in divisions) and (not versions or r.version in versions)
            and has(r.processor, processor) and has(r.framework, framework)]


# -- the user's results ------------------------------------------------------------------------

@dataclass(frozen=True)
class Mine:
    """A tinyharness run as a row among published results."""

    path: str
    label: str  # the SUT, numbered as load_runs labels it
    benchmark: str  # tinyharness id (kws01)
    valid: bool
    throughput_ips: float | None  # median window throughput (single-stream), inf./s
    accuracy: float | None
    accuracy_metric: str | None
    board: str = ""
    processor: str = ""
    framework: str = ""
    submitter: str = ""  # from a package's path
    system: str = ""
    division: str = ""
    notes: tuple[str, ...] = ()

    @property
    def latency_ms(self) -> float | None:
        return 1000.0 / self.throughput_ips if self.throughput_ips else None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self) | {"latency_ms": self.latency_ms, "notes": list(self.notes)}


def _package_place(path: str) -> tuple[str, str, str, str] | None:
    """(package root, division, submitter, system) of a run inside a tinyharness package
    (``<root>/<division>/<submitter>/tinyharness/<system>/<model>/<run>``), else None."""
    root, sep, member = path.rpartition(":") if ".tar" in path or ".tgz" in path else ("", "", path)
    parts = PurePosixPath(member.replace(os.sep, "/")).parts
    for i in range(len(parts) - 4, 1, -1):
        if parts[i] == EMBEDDED and parts[i - 2] in DIVISIONS:
            base = root + sep + "/".join(parts[: i - 2]) if sep else str(PurePosixPath(*parts[: i - 2]))
            return base, parts[i - 2], parts[i - 1], parts[i + 1]
    return None


def mine_of(run: RunRecord) -> Mine:
    """The run's figures and system: from summary.json, and from the package's system
    description where the run sits in a package folder."""
    s = run.summary
    sy = s.system
    notes = []
    throughput = s.windows.median_throughput_ips if s.windows is not None else None
    if throughput is None:
        notes.append("no MLPerf Tiny windows (an offline or accuracy-only run): not ranked")
    acc = s.accuracy
    on_device = s.model.on_device
    fields = {"board": sy.device if on_device else f"host {sy.machine or ''}".strip(),
              "processor": "" if on_device else sy.cpu_model,
              "framework": f"{sy.runtime} {sy.runtime_version}".strip()}
    place = _package_place(run.path)
    where = {}
    if place is not None:
        root, division, submitter, system = place
        where = {"division": division, "submitter": submitter, "system": system}
        description = Path(root) / division / submitter / "systems" / f"{system}.json"
        if Path(root).is_dir() and description.is_file():
            try:
                info = parse_system(read_bounded(description, 1 << 20, "system description"),
                                     system, str(description))
                fields.update({k: v for k in fields if (v := info.get(k))})
            except UsageError as exc:
                notes.append(str(exc))
    return Mine(run.path, run.label or run.sut, s.benchmark, s.valid, throughput,
                None if acc is None else acc.value, None if acc is None else acc.metric,
                **fields, **where, notes=tuple(notes))


# -- the ranking ---------------------------------------------------------------------------------

@dataclass
class Entry:
    """One row: a published result or one of the user's, with its rank (None: no throughput)."""

    item: PublishedResult | Mine
    rank: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mine(self) -> bool:
        return isinstance(self.item, Mine)

    @property
    def throughput_ips(self) -> float | None:
        return self.item.throughput_ips

    @property
    def name(self) -> str:
        return f"yours: {self.item.label}" if self.mine else self.item.name


def ranked(published: Iterable[PublishedResult], mine: Iterable[Mine] = ()) -> list[Entry]:
    """Published results and the user's, highest median throughput first, ranked (ties share a
    rank; those without a throughput last, unranked). Among equals the user's come first."""
    entries = [Entry(m) for m in mine] + [Entry(r) for r in published]
    with_tp = sorted((e for e in entries if e.throughput_ips), key=lambda e: -e.throughput_ips)
    previous, rank = None, 0
    for i, entry in enumerate(with_tp, start=1):
        if entry.throughput_ips != previous:
            rank, previous = i, entry.throughput_ips
        entry.rank = rank
    return with_tp + [e for e in entries if not e.throughput_ips]


def accuracy_text(value: float | None, metric: str | None) -> str:
    if value is None:
        return "-"
    return f"AUC {value:.3g}" if metric == "auc" else f"{value:.1f} %"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _latency(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def row(entry: Entry) -> list[str]:
    """The cells of :data:`COLUMNS` for one entry."""
    item = entry.item
    rank = "-" if entry.rank is None else str(entry.rank)
    if isinstance(item, Mine):
        system = item.label + (f" ({item.submitter}/{item.system})" if item.system else "")
        return [rank, MINE, system, item.processor or item.board or "-", item.framework or "-",
                _num(item.throughput_ips), _latency(item.latency_ms),
                accuracy_text(item.accuracy, item.accuracy_metric), "-", "tinyharness",
                item.division or "-"]
    return [rank, item.submitter, item.system + (f" {item.variant}" if item.variant else ""),
            item.processor or "-", item.framework or "-", _num(item.throughput_ips),
            _latency(item.latency_ms), accuracy_text(item.accuracy, item.accuracy_metric),
            _num(item.energy_uj), item.version, item.division]


def standing(entries: list[Entry], mine: Mine) -> str:
    """"tflite-cpu: rank 3 of 41 by median throughput (10,977.587 inf/s; ...)" for one of the
    user's entries in ``entries``."""
    ranked_count = sum(e.rank is not None for e in entries)
    entry = next(e for e in entries if e.item is mine)
    if entry.rank is None:
        return f"{mine.label}: not ranked: {'; '.join(mine.notes) or 'no median throughput'}"
    published = [e for e in entries if not e.mine and e.rank is not None]
    text = (f"{mine.label}: rank {entry.rank} of {ranked_count} by median throughput "
            f"({_num(mine.throughput_ips)} inf/s, {_latency(mine.latency_ms)} ms)")
    if published:
        best = published[0]
        ratio = mine.throughput_ips / best.throughput_ips
        text += (f"; the fastest published: {best.name} ({best.item.version}) at "
                 f"{_num(best.throughput_ips)} inf/s, yours is {ratio:.3g}x that")
    if not mine.valid:
        text += "; the run is INVALID"
    return text


def json_entry(entry: Entry) -> dict:
    return {"rank": entry.rank, "mine": entry.mine, **entry.item.to_dict()}


def slug_name(entry: Entry) -> str:
    """A short label for charts: ``submitter/system (v1.1)`` or ``yours: SUT``."""
    if entry.mine:
        return entry.name
    item = entry.item
    return re.sub(r"\s+", " ", f"{item.name} ({item.version}{', open' if item.division == 'open' else ''})")
