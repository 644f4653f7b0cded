"""Calibration inputs for post-training quantization (``models export --precision int8``).

MLPerf Tiny allows quantization only with the benchmark's calibration set. A calibration list here
is a text file naming sample files of the benchmark's dataset, one per line (``#`` comments and
blank lines ignored); each named file is read as the run reads it and turned into the float model's
input with the rule set's float32 transform. A ``.npy`` file of float32 inputs (N x the model's
input shape, or N x the sample shape) is taken as it is, for a model that is not a benchmark's.

The official lists are not all in this form: kws01's ``quant_cal_idxs.txt`` holds indices into the
Speech Commands validation split, whose features are not a tinyharness dataset; such a list is
refused with a one-line error saying what to give instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .benchmark import Benchmark
from .dataset import Dataset
from .errors import UsageError
from .qsl import transform
from .sut import TensorSpec

MAX_SAMPLES = 10_000  # PT2E observers need a few hundred; this bounds memory and time
LIST_LIMIT = 4 << 20  # bytes of a calibration list
NPY_LIMIT = 1 << 30


@dataclass(frozen=True)
class Calibration:
    inputs: np.ndarray  # float32, N x input shape
    source: str  # the list or .npy file's name
    sha256: str  # of the list's or the .npy's bytes
    files: tuple[str, ...] = ()  # the sample files used, in the list's order

    def to_dict(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "samples": int(len(self.inputs)),
                "files": list(self.files)}


def load(path: Path, benchmark: Benchmark | None, dataset: Path | None) -> Calibration:
    """The calibration inputs named by ``path`` (a list of dataset files, or a .npy array)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"calibration list {path}: no such file")
    if path.suffix.lower() == ".npy":
        return _from_npy(path, benchmark)
    if benchmark is None:
        raise UsageError(f"{path.name}: a calibration list names a benchmark's dataset files; "
                         "for an .onnx file give a .npy array of float32 inputs")
    data = path.read_bytes()[:LIST_LIMIT + 1]
    if len(data) > LIST_LIMIT:
        raise UsageError(f"calibration list {path} is over {LIST_LIMIT >> 20} MiB")
    names = _names(path, data.decode("utf-8", "replace"))
    ds = Dataset.for_benchmark(benchmark, dataset)
    by_file: dict[str, list[int]] = {}
    for index, entry in enumerate(ds.entries):
        by_file.setdefault(entry.file, []).append(index)
    missing = [n for n in names if n not in by_file]
    if missing:
        raise UsageError(f"calibration list {path.name}: {len(missing)} of {len(names)} files are "
                         f"not in {ds.label_file} (first: {missing[0]}); list files of the "
                         f"{benchmark.id} dataset")
    spec = TensorSpec("input", (1, *benchmark.sample_shape), "float32")
    kind = benchmark.transform.get("float32")
    if kind is None:
        raise UsageError(f"benchmark {benchmark.id} states no float32 input transform")
    rows = [transform(ds.read(i), kind, spec)[0] for n in names for i in by_file[n]]
    if len(rows) > MAX_SAMPLES:
        raise UsageError(f"calibration list {path.name} makes {len(rows)} inputs; at most "
                         f"{MAX_SAMPLES}")
    return Calibration(np.stack(rows), path.name, hashlib.sha256(data).hexdigest(), tuple(names))


def _names(path: Path, text: str) -> list[str]:
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = [n.split(",", 1)[0].strip() for n in names if n]  # a y_labels.csv works too
    if not names:
        raise UsageError(f"calibration list {path} names no files")
    if all(n.isdigit() for n in names):
        raise UsageError(f"calibration list {path.name} holds indices (into the data the model "
                         "was trained on), not dataset files: write the calibration samples as "
                         "files in the benchmark's layout and list their names")
    if len(names) > MAX_SAMPLES:
        raise UsageError(f"calibration list {path.name} names {len(names)} files; at most "
                         f"{MAX_SAMPLES}")
    return list(dict.fromkeys(names))


def _from_npy(path: Path, benchmark: Benchmark | None) -> Calibration:
    if path.stat().st_size > NPY_LIMIT:
        raise UsageError(f"calibration array {path} is over {NPY_LIMIT >> 30} GiB")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read calibration array {path}: {exc}") from None
    if array.dtype != np.float32 or array.ndim < 2 or not len(array):
        raise UsageError(f"calibration array {path.name} is {array.dtype} {list(array.shape)}; "
                         "it must be float32, N x the model's input shape")
    if benchmark is not None and int(np.prod(array.shape[1:])) != int(np.prod(benchmark.sample_shape)):
        raise UsageError(f"calibration array {path.name} has inputs of shape "
                         f"{list(array.shape[1:])}; {benchmark.id} takes {list(benchmark.sample_shape)}")
    if len(array) > MAX_SAMPLES:
        raise UsageError(f"calibration array {path.name} has {len(array)} inputs; at most "
                         f"{MAX_SAMPLES}")
    if not np.isfinite(array).all():
        raise UsageError(f"calibration array {path.name} holds NaN or infinite values")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Calibration(np.ascontiguousarray(array), path.name, digest)
