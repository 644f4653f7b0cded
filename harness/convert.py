"""``tinyharness models convert``: a benchmark's .tflite models (or any .tflite file) to ONNX.

tf2onnx runs in a child interpreter (``--python``, TINYHARNESS_CONVERT_PYTHON, default this one):
TensorFlow is ~1.3 GB and slow to import, so the harness never imports it and the converter may
live in a virtual environment of its own. ``--tflite`` keeps the NHWC layout; int8 becomes QDQ.

Converted files go to ``converted/`` in the model cache, never where the store looks for the pinned
ONNX files: tf2onnx's output is not byte-reproducible (initializer and node names vary from run to
run), so a local conversion rarely has the pinned checksum and the store would call it damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .benchmark import ModelEntry, load_benchmarks
from .errors import UsageError
from .fileio import atomic_write, sha256_of
from .model_store import ModelStore

_FIX = "pip install 'tinyharness[convert]' (or --python PATH to a Python that has it)"
# Versions from the child's package metadata: a fraction of a second, TensorFlow is not imported.
_PROBE = r"""
import importlib.metadata as md, importlib.util as u, json
dists = getattr(md, "packages_distributions", dict)()
def version(top):
    if u.find_spec(top) is None:
        return None
    for dist in dists.get(top, [top]):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            pass
    return "unknown"
print(json.dumps({"tf2onnx": version("tf2onnx"), "tensorflow": version("tensorflow")}))
"""
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+ - \w+ - ")  # tf2onnx's logging format


@dataclass(frozen=True)
class Job:
    source: Path | ModelEntry  # a .tflite file, or a rule-set .tflite that the store resolves
    output: Path  # the .onnx to write
    pinned: ModelEntry | None  # the rule set's ONNX file converted from the same .tflite, if any


@dataclass(frozen=True)
class Converted:
    job: Job
    source: Path
    sha256: str


def plan(target: str, output: Path | None, store: ModelStore) -> tuple[list[Job], list[str]]:
    """What to convert for a benchmark id or a .tflite path, and notes on what is skipped."""
    benchmarks = load_benchmarks()
    if target in benchmarks:
        b = benchmarks[target]
        tflites = {e.file: e for e in b.models if e.format == "tflite"}
        jobs, notes = [], []
        for e in b.models:
            if e.format != "onnx" or not e.converted_from:
                continue
            source = tflites.get(e.converted_from)
            if source is None:
                notes.append(f"{b.id} {e.file}: skipped (converted from {e.converted_from}, "
                             "not from a .tflite)")
                continue
            folder = output or store.cache / "converted" / b.store_dir
            jobs.append(Job(source, folder / e.file, e))
        if not jobs:
            raise UsageError(f"benchmark {b.id} has no ONNX model converted from a .tflite; "
                             "give a MODEL.tflite path instead")
        return jobs, notes
    path = Path(target)
    if not path.exists():
        if path.suffix or os.sep in target:
            raise UsageError(f"{target}: no such file")
        raise UsageError(f"{target!r} is neither a benchmark ({', '.join(sorted(benchmarks))}) "
                         "nor a .tflite file")
    _check_tflite(path)
    folder = output or store.cache / "converted" / "local"
    return [Job(path, folder / f"{path.stem}.onnx", _pinned_for(path, benchmarks))], []


def _check_tflite(path: Path) -> None:
    """A cheap check before TensorFlow's start-up: a .tflite flatbuffer says "TFL3" at byte 4."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(head) < 8 or not head[4:8].startswith(b"TFL"):
        raise UsageError(f"{path} is not a .tflite model (no TFL3 flatbuffer identifier)")


def _pinned_for(path: Path, benchmarks: dict) -> ModelEntry | None:
    """The pinned ONNX entry converted from a rule-set .tflite with this file's exact bytes."""
    digest = sha256_of(path)
    for b in benchmarks.values():
        names = {e.file for e in b.models if e.format == "tflite" and e.sha256 == digest}
        for e in b.models:
            if e.format == "onnx" and e.converted_from in names:
                return e
    return None


def converter_versions(python: str) -> dict[str, str]:
    """tf2onnx's and TensorFlow's versions in ``python``; a UsageError when either is missing."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                              check=False)
        versions = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        why = getattr(exc, "strerror", None) or "it printed no versions"
        raise UsageError(f"cannot run {python} as the converter's Python ({why}); needs tf2onnx: "
                         f"{_FIX}") from None
    if not versions:
        raise UsageError(f"{python} failed ({_last_line(done.stderr)}); needs tf2onnx: {_FIX}")
    missing = [name for name in ("tf2onnx", "tensorflow") if not versions.get(name)]
    if missing:
        raise UsageError(f"needs {' and '.join(missing)}: {_FIX}")
    return versions


def convert(job: Job, python: str, opset: int, versions: dict[str, str],
            store: ModelStore) -> Converted:
    """Run tf2onnx on one model, stamp the converter into its metadata, write it atomically."""
    source = job.source if isinstance(job.source, Path) else store.resolve(job.source).path
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # TF's start-up chatter, on success unseen
    with tempfile.TemporaryDirectory(prefix="tinyharness-convert-") as tmp:
        raw = Path(tmp) / "model.onnx"
        done = subprocess.run([python, "-m", "tf2onnx.convert", "--tflite", str(source),
                               "--output", str(raw), "--opset", str(opset)],
                              capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0 or not raw.is_file():
            raise UsageError(f"tf2onnx could not convert {source}: {_last_line(done.stderr)}"
                             f"{_keep_log(done.stderr)}")
        data = _stamp(raw, {"tinyharness.converter": f"tf2onnx {versions['tf2onnx']}",
                            "tinyharness.tensorflow": versions["tensorflow"],
                            "tinyharness.opset": str(opset),
                            "tinyharness.source_file": source.name,
                            "tinyharness.source_sha256": sha256_of(source)})
    _write_atomically(job.output, data)
    return Converted(job, source, hashlib.sha256(data).hexdigest())


def _last_line(stderr: str) -> str:
    """The converter's last meaningful stderr line: the exception, not a traceback's ^^^ markers."""
    for line in reversed(stderr.splitlines()):
        line = _LOG_PREFIX.sub("", line.strip())
        if line.strip("^~ "):
            return line
    return "no error message"


def _keep_log(stderr: str) -> str:
    """The full stderr (TF's noise included) in a temp file, named in the one-line error."""
    if not stderr.strip():
        return ""
    try:
        fd, path = tempfile.mkstemp(prefix="tinyharness-tf2onnx-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            log.write(stderr)
    except OSError:
        return ""
    return f" (full log: {path})"


def _stamp(raw: Path, props: dict[str, str]) -> bytes:
    try:
        import onnx
    except ImportError:
        raise UsageError("needs onnx in this Python: pip install 'tinyharness[convert]'") from None
    model = onnx.load(str(raw))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def _write_atomically(target: Path, data: bytes) -> None:
    """:func:`~tinyharness.fileio.atomic_write`, with a failure as a one-line UsageError."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}; give --output DIR") from None
