"""Reading a dataset in the EEMBC / MLPerf Tiny layout: ``<dir>/y_labels.csv`` beside the sample files.

``y_labels.csv`` has no header; each row is ``file,classes,class`` (AD adds bytes-to-send and stride).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UsageError


@dataclass(frozen=True)
class Entry:
    file: str
    label: int


@dataclass(frozen=True)
class Dataset:
    """The rows of a label file, the folder they live in, and the raw sample layout."""

    id: str
    folder: Path
    label_file: Path
    entries: tuple[Entry, ...]
    sample_shape: tuple[int, ...]
    sample_dtype: str

    @classmethod
    def open(cls, path: Path, dataset_id: str, label_file: str, sample_shape: tuple[int, ...],
             sample_dtype: str) -> "Dataset":
        """Open ``path``: the dataset folder itself, or a root that holds ``<dataset_id>/``."""
        path = Path(path)
        if not path.is_dir():
            raise UsageError(f"dataset folder {path} does not exist; give the folder that holds "
                             f"{label_file} (or its parent) with --dataset")
        folder = path if (path / label_file).is_file() else path / dataset_id
        labels = folder / label_file
        if not labels.is_file():
            raise UsageError(f"no {label_file} in {path} or {path / dataset_id}: "
                             "not a dataset in the EEMBC layout")
        return cls(dataset_id, folder, labels, _read_labels(labels), tuple(sample_shape), sample_dtype)

    @property
    def sample_bytes(self) -> int:
        return int(np.prod(self.sample_shape)) * np.dtype(self.sample_dtype).itemsize

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, index: int) -> np.ndarray:
        """The raw sample ``index`` as an array of the dataset's shape and dtype."""
        entry = self.entries[index]
        path = self.folder / entry.file
        try:
            data = path.read_bytes()
        except OSError:
            raise UsageError(f"dataset file {path} is missing ({self.label_file.name} lists it)") from None
        if len(data) != self.sample_bytes:
            raise UsageError(f"dataset file {path} has {len(data)} bytes, expected {self.sample_bytes} "
                             f"({'x'.join(map(str, self.sample_shape))} {self.sample_dtype})")
        return np.frombuffer(data, dtype=self.sample_dtype).reshape(self.sample_shape)

    def sha256(self) -> str:
        """Checksum of the label file followed by every sample file in label order."""
        digest = hashlib.sha256(self.label_file.read_bytes())
        for entry in self.entries:
            try:
                digest.update((self.folder / entry.file).read_bytes())
            except OSError:
                raise UsageError(f"dataset file {self.folder / entry.file} is missing") from None
        return digest.hexdigest()


def _read_labels(path: Path) -> tuple[Entry, ...]:
    try:  # utf-8-sig: spreadsheet tools put a byte-order mark before the first file name
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
                         "expected rows 'file,classes,class'") from None
    entries = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        fields = [f.strip() for f in row]
        if not fields or fields == [""]:
            continue
        try:
            name, classes, label = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise UsageError(f"{path}:{number}: malformed row {','.join(row)!r}; "
                             "expected 'file,classes,class'") from None
        if not 0 <= label < classes or "/" in name or name in ("", ".", ".."):
            raise UsageError(f"{path}:{number}: malformed row {','.join(row)!r}")
        entries.append(Entry(name, label))
    if not entries:
        raise UsageError(f"{path} lists no samples")
    return tuple(entries)
