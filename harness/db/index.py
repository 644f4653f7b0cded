"""A run directory as one row of the run index.

The run directory stays the record; a row holds what people filter and sort by. It is read with
the project's readers (:mod:`tinyharness.results.read`), so a schema-1 or -2 summary is upgraded
and every read is bounded, and a run that did not finish (status.json says failed, interrupted or
running) is still a row: its state and error, and what it was from its partial summary or its
directory's name.

Row columns (also the CSV export's, in this order; stable: a column is only ever appended):

=================  ==================================================================================
run_id             the run directory's name (unique: time and a random tag)
path               the run directory, absolute, on the machine that indexed it
benchmark, sut,    what was run; ``mode`` is performance, accuracy or all
scenario, mode
started, finished  ISO 8601 UTC (finished: empty for a run that did not finish)
state              done, failed, interrupted or running (status.json)
valid              1 VALID, 0 INVALID, empty when the run did not finish
error              the run's errors, or why it did not finish
reasons            why an INVALID run is INVALID, "; "-separated
accuracy           the rule set's quality metric (top-1 in %, or AUC)
accuracy_metric    top1 or auc
p50_us, p90_us     single-stream per-query latency percentiles (us)
throughput_ips     offline samples/s, or the single-stream windows' median throughput
latency_us         the windows' latency: 1 / median throughput (us)
sut_options        the --sut-option values, a JSON object
model,             the model file as run and its sha256 (empty: the model is on a device)
model_sha256
runtime, runtime_version, device     as the SUT reported them
host               the host's CPU model (summary.json records no host name; see node)
harness_version    the tinyharness that made the run
sweep_id, cell_id  the sweep and cell that made the run, when one did
node               the machine (host name or worker address) that ran the sweep's cell
indexed_at         when the row was written, ISO 8601 UTC
=================  ==================================================================================
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results.unfinished import RUN_FILES, SkippedRun

RUN_COLUMNS = ("run_id", "path", "benchmark", "sut", "scenario", "mode", "started", "finished",
               "state", "valid", "error", "reasons", "accuracy", "accuracy_metric", "p50_us",
               "p90_us", "throughput_ips", "latency_us", "sut_options", "model", "model_sha256",
               "runtime", "runtime_version", "device", "host", "harness_version", "sweep_id",
               "cell_id", "node", "indexed_at")
STATES = ("done", "failed", "interrupted", "running")
UNFINISHED = STATES[1:]


def utc(text: str | None) -> str | None:
    """An ISO 8601 time as UTC to the second ('2026-12-01T10:00:00+00:00'), so that times
    compare as strings; a time without an offset is UTC; text that is no time is kept as is."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_run_dir(path: Path) -> bool:
    return any(os.path.lexists(path / name) for name in RUN_FILES)


def read_row(run_dir: Path) -> dict[str, Any]:
    """The row of a run directory, every column (sweep_id, cell_id, node and indexed_at are None:
    the caller's to give). A one-line UsageError naming the file when it is no run directory, when
    its status.json is unreadable, or when it says the run finished but its summary.json does not
    read."""
    run_dir = Path(os.path.abspath(run_dir))
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a folder; give a run directory")
    if not is_run_dir(run_dir):
        raise UsageError(f"{run_dir}: not a run directory (no summary.json or status.json)")
    found = _read(run_dir)
    if isinstance(found, SkippedRun):
        row = row_from_skipped(found, run_dir)
    else:
        row = {**row_from_summary(found), "run_id": run_dir.name, "path": str(run_dir), "state": "done"}
    return {column: row.get(column) for column in RUN_COLUMNS}


def _read(run_dir: Path):
    """The run's typed summary, or a SkippedRun when status.json says it did not finish: the
    readers' own rules (:func:`tinyharness.results.unfinished.entry`), with the summary alone
    read (an index needs no latencies.npy, which can be tens of MB), each file bounded."""
    from ..fileio import read_bounded
    from ..results.read import LIMITS, parse_summary
    from ..results.unfinished import entry

    files: dict[str, bytes] = {}
    unreadable: dict[str, UsageError] = {}
    for name in RUN_FILES:
        if os.path.lexists(run_dir / name):
            try:
                files[name] = read_bounded(run_dir / name, LIMITS.member_bytes, name)
            except UsageError as exc:  # a FIFO or a huge file: refused, never opened or read whole
                if name == "status.json":
                    raise
                unreadable[name], files[name] = exc, b""

    def summary():
        if "summary.json" in unreadable:
            raise unreadable["summary.json"]
        return parse_summary(files["summary.json"], str(run_dir / "summary.json"))

    return entry(str(run_dir), run_dir.name, files, summary)


def row_from_summary(summary) -> dict[str, Any]:
    """The indexed fields of a typed :class:`~tinyharness.results.summary.RunSummary`."""
    latency, accuracy, windows, system = summary.latency_us, summary.accuracy, summary.windows, summary.system
    if summary.offline is not None:
        throughput = summary.throughput_ips
    else:
        throughput = windows.median_throughput_ips if windows is not None else None
    return {
        "benchmark": summary.benchmark, "sut": summary.sut, "scenario": summary.scenario,
        "mode": summary.mode, "started": utc(summary.started), "finished": utc(summary.finished),
        "valid": int(summary.valid), "error": "; ".join(summary.errors) or None,
        "reasons": "; ".join(r.message for r in summary.invalid_reasons) or None,
        "accuracy": accuracy.value if accuracy is not None else None,
        "accuracy_metric": accuracy.metric if accuracy is not None else None,
        "p50_us": latency.p50 if latency is not None else None,
        "p90_us": latency.p90 if latency is not None else None,
        "throughput_ips": throughput,
        "latency_us": windows.latency_us if windows is not None else None,
        "sut_options": json.dumps(dict(sorted(summary.settings.sut_options.items()))),
        "model": summary.model.path, "model_sha256": summary.model.sha256,
        "runtime": system.runtime, "runtime_version": system.runtime_version, "device": system.device,
        "host": system.cpu_model, "harness_version": system.harness_version,
    }


def row_from_skipped(run, run_dir: Path) -> dict[str, Any]:
    """The row of a run that did not finish (a :class:`~tinyharness.results.unfinished.SkippedRun`):
    its state and error; what it was as far as its partial summary or its name tell ("?": unknown).
    Without a partial summary, status.json's time (when the run stopped) stands for its start, so
    it still sorts and filters among the others."""
    if run.state not in UNFINISHED:  # "unreadable", or "done" without a summary.json
        raise UsageError(f"{run_dir}: not indexed: {run.reason} (status: {run.state})")
    known = lambda value: None if value in ("?", "") else value  # noqa: E731
    return {"run_id": run_dir.name, "path": str(run_dir), "benchmark": known(run.benchmark),
            "sut": known(run.sut), "scenario": known(run.scenario), "mode": known(run.mode),
            "started": utc(run.started or _status_time(run_dir)), "state": run.state, "valid": None,
            "error": run.reason}


def _status_time(run_dir: Path) -> str | None:
    from ..fileio import loads_json, read_bounded

    try:
        status = loads_json(read_bounded(run_dir / "status.json", 1 << 20, "status"), "status.json")
    except UsageError:
        return None
    time = status.get("time") if isinstance(status, dict) else None
    return time if isinstance(time, str) else None
