"""The run directory and its log files, each written atomically and validated against its schema.

A run directory always says what happened to its run: ``status.json`` is written first
(``running``) and rewritten at the end (``done``, ``failed`` or ``interrupted`` with the error), and
whatever was measured before a failure is still written out.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .fileio import atomic_write, atomic_write_chunks, loads_json, read_bounded, regular_file, slug
from .schemas import validate

MLLOG = ":::MLLOG "
READ_LIMIT = 512 << 20  # a run file read back by check_run_directory


def json_safe(value: Any, where: str, depth: int = 0) -> tuple[Any, list[str]]:
    """``value`` as JSON can hold it, and what had to change: what a plugin returns (``describe()``,
    ``run_stats()``) may hold numpy scalars, NaN, bytes or objects. Numbers become numbers, NaN and
    infinities ``None``, other objects their ``str`` (cut at 200 characters); keys become strings."""
    import math

    problems: list[str] = []
    if depth > 32:
        return "<nested too deeply>", [f"{where}: nested more than 32 levels; cut"]
    if value is None or isinstance(value, (bool, str)):
        return value, problems
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        number = value.item() if isinstance(value, np.generic) else value
        if isinstance(number, float) and not math.isfinite(number):
            return None, [f"{where}: {number} is not a JSON number; recorded as null"]
        return number, problems
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[str(key)], more = json_safe(item, f"{where}.{key}", depth + 1)
            problems += more
        return out, problems
    if isinstance(value, (list, tuple)):
        out_list = []
        for index, item in enumerate(value):
            converted, more = json_safe(item, f"{where}[{index}]", depth + 1)
            out_list.append(converted)
            problems += more
        return out_list, problems
    text = str(value)[:200]
    return text, [f"{where}: a {type(value).__name__} is not JSON; recorded as its text"]


@dataclass(frozen=True)
class SpilledValues:
    """One repetition's per-query values, kept in a hidden file of the run directory until
    latencies.npy is written, so that ``--repeat K`` holds one repetition in memory, not K."""

    path: Path
    count: int
    dtype: str
    exact = True

    def __len__(self) -> int:
        return self.count


def _dtype_of(values) -> np.dtype:
    from .latencies import Latencies

    if isinstance(values, SpilledValues):
        return np.dtype(values.dtype)
    if isinstance(values, Latencies):
        return np.dtype(np.int64 if values.big else np.uint32)
    return np.dtype(np.asarray(values).dtype)


def _raw_chunks(values, dtype: np.dtype):
    """The little-endian bytes of ``values`` (a Latencies record, an array or a spilled part)
    as ``dtype``, a block at a time."""
    from .latencies import Latencies

    out = dtype.newbyteorder("<")
    if isinstance(values, SpilledValues):
        part = np.dtype(values.dtype).newbyteorder("<")
        with open(values.path, "rb") as handle:
            for data in iter(lambda: handle.read(part.itemsize << 20), b""):
                yield np.frombuffer(data, part).astype(out, copy=False).tobytes()
        return
    if not isinstance(values, Latencies):
        yield np.ascontiguousarray(values).astype(out, copy=False).tobytes()
        return
    offset = 0
    for chunk in values.chunks():
        if values.big:
            chunk = chunk.astype(np.int64)
            for index, value in values.big.items():
                if offset <= index < offset + len(chunk):
                    chunk[index - offset] = value
        yield chunk.astype(out, copy=False).tobytes()
        offset += len(chunk)


def _npy_chunks(parts):
    """The .npy bytes of parts put back to back: a header, then each part's values."""
    dtype = np.dtype(np.int64) if any(_dtype_of(p) != np.uint32 for p in parts) else np.dtype(np.uint32)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype.newbyteorder("<")),
                 "fortran_order": False, "shape": (sum(len(p) for p in parts),)})
    yield header.getvalue()
    for part in parts:
        yield from _raw_chunks(part, dtype)


class DetailLog:
    """Events as ``:::MLLOG {json}`` lines (LoadGen's detail-log form), kept in memory during the
    run so that logging never touches the disk while queries are timed."""

    def __init__(self) -> None:
        self.start = time.perf_counter_ns()
        self.events: list[dict[str, Any]] = []

    def event(self, key: str, value: Any, error: bool = False, warning: bool = False) -> None:
        self.events.append({
            "key": key, "value": value,
            "time_ms": round((time.perf_counter_ns() - self.start) / 1e6, 6),
            "namespace": "tinyharness", "event_type": "POINT_IN_TIME",
            "metadata": {"is_error": error, "is_warning": warning, "pid": os.getpid()},
        })

    def render(self) -> str:
        return "".join(MLLOG + json.dumps(e, sort_keys=False) + "\n" for e in self.events)


class RunDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[str] = []

    @classmethod
    def create(cls, root: Path, benchmark: str, sut: str, scenario: str) -> "RunDirectory":
        # to the second for people, plus a random tag: two runs started in one second into two
        # --output folders must still be packaged together
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        base = f"{stamp}_{slug(benchmark)}_{slug(sut)}_{slug(scenario)}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            for attempt in range(1000):
                path = root / (base if attempt == 0 else f"{base}-{attempt}")
                try:
                    path.mkdir()
                    return cls(path)
                except FileExistsError:
                    continue
        except OSError as exc:
            raise UsageError(f"cannot create a run directory under {root}: {exc.strerror}; "
                             "choose another --output") from None
        raise UsageError(f"too many run directories named {base}* under {root}")

    def write_json(self, name: str, document: Any, schema: str | None) -> None:
        if schema is not None:
            validate(document, schema, where=f"{self.path.name}/{name}", user_input=False)
        self.write_bytes(name, (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_npy(self, name: str, array) -> None:
        """An array; a :class:`~tinyharness.latencies.Latencies` record streamed block by block
        (uint32 ns; int64 if one latency is past 4.29 s), never copied whole; or a list of
        those and :class:`SpilledValues` put back to back (their part files then removed)."""
        from .latencies import Latencies

        if isinstance(array, (Latencies, list)):
            parts = array if isinstance(array, list) else [array]
            self._write_chunks(name, _npy_chunks(parts))
            for part in parts:
                if isinstance(part, SpilledValues):
                    part.path.unlink(missing_ok=True)
            return
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self.write_bytes(name, buffer.getvalue())

    def spill(self, values, index: int) -> SpilledValues:
        """Keep a repetition's values in ``.repetition-<index>.raw`` instead of memory."""
        dtype = _dtype_of(values)
        path = self.path / f".repetition-{index}.raw"
        atomic_write_chunks(path, _raw_chunks(values, dtype))
        return SpilledValues(path, len(values), dtype.str)

    def _write_chunks(self, name: str, chunks) -> None:
        atomic_write_chunks(self.path / name, chunks)
        if name not in self.files:
            self.files.append(name)

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write(self.path / name, data)
        if name not in self.files:
            self.files.append(name)

    def write_detail(self, detail: DetailLog) -> None:
        for event in detail.events:
            validate(event, "detail_line", where=f"{self.path.name}/detail.txt", user_input=False)
        self.write_text("detail.txt", detail.render())

    def set_status(self, state: str, error: str | None = None, signal: str | None = None) -> None:
        """``signal``: the signal's name (SIGSEGV) when the run's process died by one."""
        document = {"state": state, "error": error,
                    "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "files": sorted(f for f in self.files if f != "status.json")}
        if signal is not None:
            document["signal"] = signal
        try:
            self.write_json("status.json", document, "status")
        except OSError:
            # A full disk has no room for the temporary copy; the old status.json's own blocks
            # still hold a short new one. Not atomic, but a torn status beats a stale "running".
            data = (json.dumps(document, indent=1) + "\n").encode()
            with open(self.path / "status.json", "r+b") as handle:
                handle.write(data)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())


def check_run_directory(path: Path) -> list[str]:
    """Every problem with a finished run directory: each file against its schema, and the files
    against each other (counts, per-query latencies). Empty when it is sound."""
    from .schemas import errors as schema_errors

    problems: list[str] = []

    def load(name: str) -> Any:
        try:
            return loads_json(read_bounded(path / name, READ_LIMIT, name), name)
        except UsageError as exc:
            problems.append(f"{name}: unreadable: {exc}")
            return None

    status, summary = load("status.json"), load("summary.json")
    for name, document in (("status.json", status), ("summary.json", summary)):
        if document is not None and not isinstance(document, dict):
            problems.append(f"{name}: not a JSON object")
    status = status if isinstance(status, dict) else None
    summary = summary if isinstance(summary, dict) else None
    if status is not None:
        problems += [f"status.json: {e}" for e in schema_errors(status, "status")]
        if status.get("state") != "done":
            problems.append(f"status.json: the run is {status.get('state')!r}, not 'done'")
    if summary is None:
        return problems
    problems += [f"summary.json: {e}" for e in schema_errors(summary, "summary")]
    try:
        lines = read_bounded(path / "detail.txt", READ_LIMIT, "detail.txt").decode("utf-8").splitlines()
    except (UsageError, UnicodeDecodeError) as exc:
        lines = []
        problems.append(f"detail.txt: unreadable: {exc}")
    for number, line in enumerate(lines, start=1):
        try:
            event = loads_json(line[len(MLLOG):], f"detail.txt:{number}") if line.startswith(MLLOG) else None
        except UsageError:
            event = None
        if event is None:
            problems.append(f"detail.txt:{number}: not a ':::MLLOG {{json}}' line")
        else:
            problems += [f"detail.txt:{number}: {e}" for e in schema_errors(event, "detail_line")]
    if summary.get("accuracy"):
        log = load("accuracy.json")
        if log is not None:
            problems += [f"accuracy.json: {e}" for e in schema_errors(log, "accuracy")]
            if isinstance(log, list) and len(log) != summary["accuracy"].get("count"):
                problems.append(f"accuracy.json: {len(log)} entries, summary.json says "
                                f"{summary['accuracy'].get('count')}")
    histogram = (summary.get("latency_us") or {}).get("exact") is False  # no latencies.npy
    if (summary.get("latency_us") and not histogram) or summary.get("offline"):
        try:
            regular_file(path / "latencies.npy", "latencies.npy")
            latencies = np.load(path / "latencies.npy", allow_pickle=False, mmap_mode="r")
        except (UsageError, OSError, ValueError) as exc:
            problems.append(f"latencies.npy: unreadable: {exc}")
        else:
            expected = (summary["latency_us"] or {}).get("count") or (summary["offline"] or {}).get("samples")
            repetitions = summary.get("repetitions")
            if isinstance(repetitions, dict):  # --repeat: every repetition's values back to back
                expected = sum(r.get("queries", 0) for r in repetitions.get("runs", []))
            if latencies.dtype not in (np.int64, np.uint32) or len(latencies) != expected:
                problems.append(f"latencies.npy: {len(latencies)} {latencies.dtype} values, "
                                f"summary.json says {expected}")
    return problems
