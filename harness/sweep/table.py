"""A sweep's table: one row a cell, on the console (with a legend for the status symbols), as CSV,
and as cells for ``tinyharness report``; and the metric gates of ``--fail-under``/``--fail-over``.

The figures are those the results database indexes: p50/p90 latency (single-stream),
throughput (offline, or the single-stream windows' median), accuracy (the rule set's metric).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    from .driver import Row

SYMBOLS = {"ok": "✔", "invalid": "!", "failed": "✖", "crashed": "☠", "timeout": "⏱",
           "interrupted": "⏸", "lost": "?", "skipped": "↷", "not run": "·"}
LEGEND = ("✔ ok (VALID)  ! invalid  ✖ failed  ☠ crashed  ⏱ timeout  ⏸ interrupted  ? lost  "
          "· not run  ↷ finished in an earlier run of this sweep (skipped; its status follows)")
CSV_COLUMNS = ("sweep_id", "cell_id", "benchmark", "sut", "scenario", "mode", "model", "board",
               "sut_options", "status", "resumed", "valid", "p50_us", "p90_us", "throughput_ips",
               "latency_us", "accuracy", "accuracy_metric", "node", "run_dir", "started",
               "finished", "wall_s", "reason")
FLOORS = ("accuracy", "throughput_ips")  # --fail-under: higher is better
CEILINGS = ("p50_us", "p90_us", "latency_us")  # --fail-over: lower is better


@dataclass(frozen=True)
class TableRow:
    """A cell's row: its CSV fields (see CSV_COLUMNS); None where it has no such figure."""

    sweep_id: str
    cell_id: str
    benchmark: str
    sut: str
    scenario: str
    mode: str
    model: str | None
    board: str | None
    sut_options: str  # "threads=2 lanes=1"
    status: str  # the cell's status; a skipped cell's status in the run that finished it
    resumed: bool  # skipped: finished in an earlier run of this sweep
    valid: bool | None
    p50_us: float | None
    p90_us: float | None
    throughput_ips: float | None
    latency_us: float | None
    accuracy: float | None
    accuracy_metric: str | None
    node: str | None
    run_dir: str | None
    started: str | None
    finished: str | None
    wall_s: float | None
    reason: str


def metrics_of(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The indexed figures of a summary.json (as the results database defines them)."""
    s = summary or {}
    latency, windows = _map(s.get("latency_us")), _map(s.get("windows"))
    accuracy = _map(s.get("accuracy"))
    throughput = s.get("throughput_ips")
    if throughput is None:
        throughput = windows.get("median_throughput_ips")
    return {"valid": s.get("valid") if isinstance(s.get("valid"), bool) else None,
            "p50_us": _number(latency.get("p50")), "p90_us": _number(latency.get("p90")),
            "throughput_ips": _number(throughput), "latency_us": _number(windows.get("latency_us")),
            "accuracy": _number(accuracy.get("value")), "accuracy_metric": accuracy.get("metric")}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def from_row(sweep_id: str, row: "Row") -> TableRow:
    """A driver's row (a cell and what became of it)."""
    cell, result = row.cell, row.result
    status = row.status.value if row.status is not None else "not run"
    return TableRow(sweep_id, cell.id, cell.benchmark, cell.sut, cell.scenario, cell.mode, cell.model,
                    cell.board, cell.options_text(), status, row.earlier is not None,
                    **metrics_of(result.summary if result else None),
                    node=result.node if result else None, run_dir=result.run_dir if result else None,
                    started=result.started if result else None,
                    finished=result.finished if result else None,
                    wall_s=result.wall_s if result else None, reason=result.reason if result else "")


def from_record(record: Mapping[str, Any]) -> TableRow:
    """A row of ``ResultsDB.cells()`` (cell fields, its result, its run's indexed fields)."""
    options = record.get("sut_options") or {}
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            options = {}
    figures = metrics_of(record.get("summary") if isinstance(record.get("summary"), Mapping) else None)
    figures.update({k: record[k] for k in figures if record.get(k) is not None})
    if figures["valid"] is not None:
        figures["valid"] = bool(figures["valid"])
    return TableRow(str(record.get("sweep_id") or ""), str(record.get("cell_id") or record.get("id") or ""),
                    str(record.get("benchmark") or ""), str(record.get("sut") or ""),
                    str(record.get("scenario") or ""), str(record.get("mode") or ""),
                    record.get("model"), record.get("board"),
                    " ".join(f"{k}={v}" for k, v in sorted(dict(options).items())),
                    str(record.get("status") or "not run"), False, **figures,
                    node=record.get("node"), run_dir=record.get("run_dir") or record.get("path"),
                    started=record.get("started"), finished=record.get("finished"),
                    wall_s=record.get("wall_s"), reason=str(record.get("reason") or ""))


# -- rendering ------------------------------------------------------------------------------------
HEADERS = ("SUT", "benchmark", "scenario", "options", "status", "p50 µs", "p90 µs", "throughput /s",
           "accuracy", "node", "reason")


def status_text(row: TableRow) -> str:
    symbol = SYMBOLS.get(row.status, "?")
    return f"{SYMBOLS['skipped']} {symbol} {row.status}" if row.resumed else f"{symbol} {row.status}"


def _figure(value: float | None, digits: int = 3) -> str | None:
    if value is None:
        return None
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def display_cells(row: TableRow) -> list[str | None]:
    """The row as the console and the report show it (None: no such figure)."""
    scenario = row.scenario if row.mode == "all" else f"{row.scenario} ({row.mode})"
    accuracy = None if row.accuracy is None else f"{row.accuracy:.4g} {row.accuracy_metric or ''}".strip()
    return [row.sut, row.benchmark, scenario, row.sut_options or None, status_text(row),
            _figure(row.p50_us), _figure(row.p90_us), _figure(row.throughput_ips), accuracy,
            row.node, row.reason or None]


def print_sweep_table(rows: Sequence[TableRow], *, title: str | None = None, out=None) -> None:
    """The table on the console (a rich table on a terminal, tab-separated elsewhere), then the
    legend of the status symbols."""
    from ..tables import Col, console, print_table

    out = out or console()
    columns = [Col("SUT", key=True), Col("benchmark", key=True), Col("scenario", nowrap=True),
               Col("options"), Col("status", nowrap=True), *(Col(h, nowrap=True, justify="right")
               for h in HEADERS[5:8]), Col("accuracy", nowrap=True), Col("node", nowrap=True),
               Col("reason")]
    print_table(columns, [display_cells(r) for r in rows], title=title, out=out)
    out.file.write(f"{LEGEND}\n")
    out.file.flush()


def csv_text(rows: Iterable[TableRow]) -> str:
    """The rows as CSV with the columns of CSV_COLUMNS (empty: no such figure)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        fields = asdict(row)
        writer.writerow(["" if fields[c] is None else _csv_value(fields[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def rows_for_report(records: Sequence[Mapping[str, Any] | TableRow]) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells ("-" for no figure) of a sweep's table for ``tinyharness report``,
    from ``ResultsDB.cells(sweep_id)`` rows (or TableRows); show LEGEND beside it."""
    rows = [r if isinstance(r, TableRow) else from_record(r) for r in records]
    return list(HEADERS), [["-" if c is None else c for c in display_cells(r)] for r in rows]


# -- gates ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gate:
    """A floor (``--fail-under accuracy=90``) or a ceiling (``--fail-over p90_us=500``)."""

    metric: str
    limit: float
    floor: bool

    @classmethod
    def parse(cls, text: str, floor: bool) -> "Gate":
        from ..errors import did_you_mean

        option, allowed = ("--fail-under", FLOORS) if floor else ("--fail-over", CEILINGS)
        metric, sep, value = text.partition("=")
        metric = metric.strip()
        if not sep or metric not in allowed:
            hint = did_you_mean(metric, allowed) if sep else ""
            raise UsageError(f"{option} {text!r}: give METRIC=VALUE with METRIC one of "
                             f"{', '.join(allowed)}{hint} (e.g. {option} {allowed[0]}=90)")
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit):
            raise UsageError(f"{option} {text!r}: {value.strip()!r} is not a finite number")
        return cls(metric, limit, floor)

    def missed_by(self, row: TableRow) -> bool:
        value = getattr(row, self.metric)
        return value is not None and (value < self.limit if self.floor else value > self.limit)

    def __str__(self) -> str:
        return f"{self.metric} {'>=' if self.floor else '<='} {self.limit:g}"


GATED = ("ok", "invalid")  # cells that finished a run; a failed cell has no figures to gate


def gate_misses(rows: Sequence[TableRow], gates: Sequence[Gate]) -> list[str]:
    """One line per missed gate: a finished cell outside it, or a gate no finished cell reports."""
    misses = []
    finished = [r for r in rows if r.status in GATED]
    for gate in gates:
        measured = [r for r in finished if getattr(r, gate.metric) is not None]
        if finished and not measured:
            misses.append(f"{gate}: no finished cell reports {gate.metric}")
        for row in measured:
            if gate.missed_by(row):
                misses.append(f"{gate}: {row.sut} {row.benchmark} {row.scenario} {row.sut_options} "
                              f"has {getattr(row, gate.metric):g}".replace("  ", " "))
    return misses
