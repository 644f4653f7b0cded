"""Helpers of the results database's tests: run directories copied under new names, and their
files read back as plain JSON (the oracle: never the code under test's reader)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SCHEMA1 = Path(__file__).resolve().parents[2] / "fixtures" / "schema1"


def copy_run(run_dir: Path, dest: Path, name: str, **changes) -> Path:
    """A copy of a run directory's summary.json and status.json under a new name (a new run id),
    with summary fields changed; enough for the index, without the bulky latencies."""
    target = dest / name
    target.mkdir(parents=True)
    for file in ("status.json", "summary.json"):
        if (run_dir / file).exists():
            shutil.copy(run_dir / file, target / file)
    if changes:
        document = json.loads((target / "summary.json").read_text())
        document.update(changes)
        (target / "summary.json").write_text(json.dumps(document))
    return target


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def status_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())
