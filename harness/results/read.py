"""Reading finished runs back: run directories, folders of them, and packages (folder or .tar.gz).

Every directory holding a summary.json is a run, so packages need no code of their own here; an
archive is read member by member without extracting anything.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import UsageError
from .summary import RunSummary


@dataclass
class RunRecord:
    """One run as readers see it: its typed summary and its per-query latencies (ns)."""

    path: str
    summary: RunSummary
    latencies: Any = None  # numpy int64 array, or None when latencies.npy is absent
    label: str = ""  # the SUT, numbered where two runs share one

    @property
    def key(self) -> tuple[str, str]:
        return self.summary.key

    @property
    def sut(self) -> str:
        return self.summary.sut


def parse_summary(data: bytes, where: str) -> RunSummary:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{where}: not readable JSON: {exc}") from None
    return RunSummary.from_dict(document, where)


def read_summary(path: Path) -> RunSummary:
    """``summary.json`` of a run directory (or the file itself), typed."""
    path = Path(path)
    file = path / "summary.json" if path.is_dir() else path
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    return parse_summary(data, str(file))


def _npy(data: bytes, where: str):
    import numpy as np

    try:
        return np.load(io.BytesIO(data), allow_pickle=False).astype(np.int64, copy=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: unreadable: {exc}") from None


def _from_tar(path: Path) -> list[RunRecord]:
    runs = []
    with tarfile.open(path) as tar:
        files = {PurePosixPath(m.name): m for m in tar.getmembers() if m.isfile()}
        for name in sorted(n for n in files if n.name == "summary.json"):
            summary = parse_summary(tar.extractfile(files[name]).read(), f"{path}:{name}")
            npy = files.get(name.parent / "latencies.npy")
            latencies = _npy(tar.extractfile(npy).read(), f"{path}:{npy.name}") if npy else None
            runs.append(RunRecord(f"{path}:{name.parent}", summary, latencies))
    return runs


def read_run(run_dir: Path) -> RunRecord:
    run_dir = Path(run_dir)
    npy = run_dir / "latencies.npy"
    latencies = _npy(npy.read_bytes(), str(npy)) if npy.is_file() else None
    return RunRecord(str(run_dir), read_summary(run_dir), latencies)


def load_runs(paths) -> list[RunRecord]:
    """Every run under the paths, in path order, each labelled by its SUT (numbered where two
    runs share one)."""
    runs: list[RunRecord] = []
    for path in map(Path, paths):
        if path.is_file() and tarfile.is_tarfile(path):
            found = _from_tar(path)
        elif path.is_dir():
            found = [read_run(s.parent) for s in sorted(path.rglob("summary.json")) if s.is_file()]
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
