"""Reading a dataset in the EEMBC / MLPerf Tiny layout: ``<dir>/y_labels.csv`` beside the sample files.

``y_labels.csv`` has no header; each row is ``file,classes,class``. Windowed datasets (AD) add
``bytes_to_send,stride``: the file is cut into windows of that many bytes every ``stride`` bytes,
and each window is one sample (``Entry.group`` is its row).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .benchmark import sample_bytes
from .errors import UsageError


@dataclass(frozen=True)
class Entry:
    file: str
    label: int
    offset: int = 0  # byte offset of the sample in its file (a window of a windowed dataset)
    group: int = field(default=0, compare=False)  # the label row it comes from


class Dataset:
    """The samples listed by a label file, the folder they live in, and the raw sample layout."""

    def __init__(self, dataset_id: str, folder: Path, label_file: Path, entries: tuple[Entry, ...],
                 sample_shape: tuple[int, ...], sample_dtype: str, windowed: bool = False) -> None:
        self.id, self.folder, self.label_file = dataset_id, folder, label_file
        self.entries, self.sample_shape, self.sample_dtype = entries, sample_shape, sample_dtype
        self.windowed = windowed
        self._cached: tuple[str, bytes] | None = None  # windows of one file are read in a row

    @classmethod
    def open(cls, path: Path, dataset_id: str, label_file: str, sample_shape: tuple[int, ...],
             sample_dtype: str, windowed: bool = False) -> "Dataset":
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
        rows = _read_labels(labels, windowed)
        if windowed:
            entries = _windows(folder, rows, sample_bytes(sample_shape, sample_dtype))
        else:
            entries = tuple(Entry(row.file, row.label, 0, group) for group, row in enumerate(rows))
        return cls(dataset_id, folder, labels, entries, tuple(sample_shape), sample_dtype, windowed)

    @property
    def sample_bytes(self) -> int:
        return sample_bytes(self.sample_shape, self.sample_dtype)

    def first_of_groups(self, count: int) -> list[int]:
        """The first sample of each of the first ``count`` files (MLPerf Tiny's performance windows)."""
        firsts: dict[int, int] = {}
        for index, entry in enumerate(self.entries):
            if entry.group >= count:
                break
            firsts.setdefault(entry.group, index)
        return list(firsts.values())

    def __len__(self) -> int:
        return len(self.entries)

    def read(self, index: int) -> np.ndarray:
        """The raw sample ``index`` as an array of the dataset's shape and dtype."""
        entry = self.entries[index]
        path = self.folder / entry.file
        if self._cached is not None and self._cached[0] == entry.file:
            data = self._cached[1]
        else:
            try:
                data = path.read_bytes()
            except OSError:
                raise UsageError(f"dataset file {path} is missing ({self.label_file.name} lists it)") from None
            self._cached = (entry.file, data)
        if self.windowed:
            data = data[entry.offset: entry.offset + self.sample_bytes]
        if len(data) != self.sample_bytes:
            raise UsageError(f"dataset file {path} has {len(data)} bytes, expected {self.sample_bytes} "
                             f"({'x'.join(map(str, self.sample_shape))} {self.sample_dtype})")
        return np.frombuffer(data, dtype=self.sample_dtype).reshape(self.sample_shape)

    def sha256(self) -> str:
        """Checksum of the label file followed by every sample file in label order."""
        digest = hashlib.sha256(self.label_file.read_bytes())
        for entry in self.entries:
            if entry.offset:  # a later window of a file already hashed
                continue
            try:
                digest.update((self.folder / entry.file).read_bytes())
            except OSError:
                raise UsageError(f"dataset file {self.folder / entry.file} is missing") from None
        return digest.hexdigest()


@dataclass(frozen=True)
class _Row:
    file: str
    label: int
    width: int = 0  # windowed: bytes to send per window
    stride: int = 0  # windowed: bytes between window starts


def _read_labels(path: Path, windowed: bool = False) -> tuple[_Row, ...]:
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
        if windowed:
            try:
                width, stride = int(fields[3]), int(fields[4])
            except (IndexError, ValueError):
                width = stride = 0
            if width <= 0 or stride <= 0:
                raise UsageError(f"{path}:{number}: malformed row {','.join(row)!r}; expected "
                                 "'file,classes,class,bytes_to_send,stride'")
            entries.append(_Row(name, label, width, stride))
        else:
            entries.append(_Row(name, label))
    if not entries:
        raise UsageError(f"{path} lists no samples")
    return tuple(entries)


def _windows(folder: Path, rows: tuple[_Row, ...], sample_bytes: int) -> tuple[Entry, ...]:
    """Cut each file into windows of ``bytes_to_send`` every ``stride`` bytes (AD: 196 per file)."""
    out = []
    for group, row in enumerate(rows):
        width, stride = row.width, row.stride
        if width != sample_bytes:
            raise UsageError(f"{row.file}: the label file sends windows of {width} bytes, the "
                             f"benchmark's model input is {sample_bytes} bytes")
        try:
            size = (folder / row.file).stat().st_size
        except OSError:
            raise UsageError(f"dataset file {folder / row.file} is missing") from None
        if size < width or (size - width) % stride:
            raise UsageError(f"dataset file {folder / row.file} has {size} bytes, which is not a "
                             f"whole number of {stride}-byte steps after a {width}-byte window")
        out += [Entry(row.file, row.label, offset, group) for offset in range(0, size - width + 1, stride)]
    return tuple(out)
