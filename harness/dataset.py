"""Reading a dataset in the EEMBC / MLPerf Tiny layout: ``<dir>/y_labels.csv`` beside the sample files.

``y_labels.csv`` has no header; each row is ``file,classes,class``. Windowed datasets (AD) add
``bytes_to_send,stride``: the file is cut into windows of that many bytes every ``stride`` bytes,
and each window is one sample (``Entry.group`` is its row).

Nothing here trusts the files: the label file is read up to :data:`LABELS_LIMIT` bytes, a row may
not be longer than :data:`LINE_LIMIT` characters, a label must be one of the benchmark's classes,
and every sample file is ``stat``-ed first (links followed; a FIFO, device or folder is refused
before it is opened, so nothing blocks or reads forever) and read no further than the size the
benchmark's input layout gives it, plus one byte to tell a larger file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .benchmark import Benchmark, sample_bytes
from .errors import UsageError
from .fileio import read_bounded, regular_file

MiB = 1 << 20
LABELS_LIMIT = 16 * MiB  # y_labels.csv: some 250 000 rows; the MLPerf Tiny sets have 1 000
LINE_LIMIT = 4096  # characters in one row: a file name (255 bytes on common file systems) and numbers
WINDOWED_FILE_LIMIT = 64 * MiB  # a windowed file, where the rule set states no file size
MAX_SAMPLES = 2_000_000  # samples of one dataset (AD windows included): bounds the entries' memory


@dataclass(frozen=True)
class Entry:
    file: str
    label: int
    offset: int = 0  # byte offset of the sample in its file (a window of a windowed dataset)
    group: int = field(default=0, compare=False)  # the label row it comes from


class Dataset:
    """The samples listed by a label file, the folder they live in, and the raw sample layout."""

    def __init__(self, dataset_id: str, folder: Path, label_file: Path, entries: tuple[Entry, ...],
                 sample_shape: tuple[int, ...], sample_dtype: str, windowed: bool = False,
                 file_sizes: dict[str, int] | None = None) -> None:
        self.id, self.folder, self.label_file = dataset_id, folder, label_file
        self.entries, self.sample_shape, self.sample_dtype = entries, sample_shape, sample_dtype
        self.windowed = windowed
        self._file_sizes = dict(file_sizes or {})  # windowed: each file's size when it was opened
        self._cached: tuple[str, bytes] | None = None  # windows of one file are read in a row

    @classmethod
    def open(cls, path: Path, dataset_id: str, label_file: str, sample_shape: tuple[int, ...],
             sample_dtype: str, windowed: bool = False, *, classes: int | None = None,
             file_bytes: int | None = None) -> "Dataset":
        """Open ``path``: the dataset folder itself, or a root that holds ``<dataset_id>/``.

        A windowed dataset's files are sized here; the others' when read, or all at once with
        :meth:`check_files` (which :meth:`for_benchmark` does).

        ``classes``: the benchmark's class count; a label outside ``0 .. classes - 1`` is refused
        here (it would otherwise be scored as a miss). ``file_bytes``: a windowed file's size as
        the rule set states it, the most that is read of one (else :data:`WINDOWED_FILE_LIMIT`)."""
        path = Path(path)
        if not path.is_dir():
            if os.path.isfile(path):  # often the label file itself, or a sample
                raise UsageError(f"{path} is a file; --dataset takes the folder holding "
                                 f"{label_file}, e.g. {path.parent} or its parent")
            if os.path.lexists(path):  # a FIFO, a device, a broken link
                raise UsageError(f"{path} is {_kind(path)}, not a folder; --dataset takes the "
                                 f"folder holding {label_file} (or its parent)")
            raise UsageError(f"dataset folder {path} does not exist; give the folder that holds "
                             f"{label_file} (or its parent) with --dataset")
        folder = path if os.path.lexists(path / label_file) else path / dataset_id
        labels = folder / label_file
        if not os.path.lexists(labels):
            raise UsageError(f"no {label_file} in {path} or {path / dataset_id}: "
                             "not a dataset in the EEMBC layout")
        rows = _read_labels(labels, windowed, classes)
        sizes: dict[str, int] = {}
        if windowed:
            entries = _windows(folder, rows, sample_bytes(sample_shape, sample_dtype),
                               file_bytes or WINDOWED_FILE_LIMIT, sizes)
        else:
            entries = tuple(Entry(row.file, row.label, 0, group) for group, row in enumerate(rows))
        return cls(dataset_id, folder, labels, entries, tuple(sample_shape), sample_dtype, windowed,
                   sizes)

    @classmethod
    def for_benchmark(cls, benchmark: "Benchmark", path: Path | None = None) -> "Dataset":
        """``benchmark``'s dataset at ``path`` (default: ``benchmark.default_dataset()``), its
        labels checked against the benchmark's classes and its files against the input layout."""
        dataset = cls.open(path or benchmark.default_dataset(), benchmark.dataset_id,
                           benchmark.label_file, benchmark.sample_shape, benchmark.sample_dtype,
                           benchmark.windowed, classes=benchmark.classes,
                           file_bytes=benchmark.file_bytes)
        dataset.check_files()
        return dataset

    def check_files(self) -> None:
        """Every file the labels list exists, is a regular file and has its size (one sample; a
        windowed file, the size it had when opened), checked with ``stat`` alone: a run finds a
        missing or short file before its run directory exists. One UsageError names the first bad
        file, why, and how many of the listed files are bad."""
        first: str | None = None
        names = list(dict.fromkeys(entry.file for entry in self.entries))
        bad = 0
        for name in names:
            path = self.folder / name
            try:
                size = _stat_regular(path, f" ({self.label_file.name} lists it)")
            except UsageError as exc:
                bad, first = bad + 1, first or str(exc)
                continue
            expected = self._file_sizes.get(name, size) if self.windowed else self.sample_bytes
            if size != expected:
                bad += 1
                first = first or (f"dataset file {path} has {size:,} bytes, expected {expected:,} "
                                  f"({'x'.join(map(str, self.sample_shape))} {self.sample_dtype}"
                                  f"{', as when the dataset was opened' if self.windowed else ''})")
        if first is not None:
            also = (f"; {bad:,} of the {len(names):,} files {self.label_file.name} lists are "
                    "missing or of the wrong size") if bad > 1 else ""
            raise UsageError(first + also)

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

    def _file(self, name: str) -> bytes:
        """A sample file's bytes: exactly one sample, or (windowed) the size it had when opened."""
        path = self.folder / name
        size = _stat_regular(path, f" ({self.label_file.name} lists it)")
        expected = self.sample_bytes
        if self.windowed:  # the size it had at open (a Dataset built by hand: at most the limit)
            expected = self._file_sizes.get(name, min(size, WINDOWED_FILE_LIMIT))
        if size != expected and self.windowed:
            raise UsageError(f"dataset file {path} has {size:,} bytes, not the {expected:,} it had "
                             "when the dataset was opened (or more than a file of it may have)")
        if size != expected:
            raise UsageError(f"dataset file {path} has {size} bytes, expected {self.sample_bytes} "
                             f"({'x'.join(map(str, self.sample_shape))} {self.sample_dtype})")
        data = _read_regular(path, expected)
        if len(data) != expected:
            raise UsageError(f"dataset file {path} changed while it was read ({expected} bytes "
                             "expected)")
        return data

    def read(self, index: int) -> np.ndarray:
        """The raw sample ``index`` as an array of the dataset's shape and dtype."""
        entry = self.entries[index]
        if self._cached is not None and self._cached[0] == entry.file:
            data = self._cached[1]
        else:
            data = self._file(entry.file)
            self._cached = (entry.file, data)
        if self.windowed:
            data = data[entry.offset: entry.offset + self.sample_bytes]
        if len(data) != self.sample_bytes:
            raise UsageError(f"dataset file {self.folder / entry.file} has {len(data)} bytes at "
                             f"offset {entry.offset}, expected {self.sample_bytes}")
        sample = np.frombuffer(data, dtype=self.sample_dtype).reshape(self.sample_shape)
        if sample.dtype.kind == "f" and not np.isfinite(sample).all():
            raise UsageError(f"dataset file {self.folder / entry.file} holds NaN or infinite values "
                             f"(sample at byte {entry.offset}); a sample must be finite numbers")
        return sample

    def sha256(self) -> str:
        """Checksum of the label file followed by every sample file in label order."""
        digest = hashlib.sha256(read_bounded(self.label_file, LABELS_LIMIT, "label file"))
        for entry in self.entries:
            if entry.offset:  # a later window of a file already hashed
                continue
            digest.update(self._file(entry.file))
        return digest.hexdigest()


@dataclass(frozen=True)
class _Row:
    file: str
    label: int
    width: int = 0  # windowed: bytes to send per window
    stride: int = 0  # windowed: bytes between window starts


def _shown(row: list[str]) -> str:
    """A row as an error message quotes it: one line, at most about 80 characters."""
    text = ",".join(row)
    return repr(text if len(text) <= 80 else text[:80] + "...")


def _lines(path: Path, text: str):
    """The label file's physical lines, each refused when too long or holding a NUL byte."""
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if len(line) > LINE_LIMIT:
            raise UsageError(f"{path}:{number}: a row of {len(line):,} characters (at most "
                             f"{LINE_LIMIT:,}); expected rows 'file,classes,class'")
        if "\x00" in line:
            raise UsageError(f"{path}:{number}: a NUL byte in the row; expected rows "
                             "'file,classes,class' of text")
        yield line


def _read_labels(path: Path, windowed: bool = False, classes: int | None = None) -> tuple[_Row, ...]:
    data = read_bounded(path, LABELS_LIMIT, "label file")
    try:  # utf-8-sig: spreadsheet tools put a byte-order mark before the first file name
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
                         "expected rows 'file,classes,class'") from None
    entries = []
    reader = csv.reader(_lines(path, text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a quoted field running on past the field size limit, ...
            raise UsageError(f"{path}:{reader.line_num}: unreadable row ({exc}); expected "
                             "'file,classes,class'") from None
        number = reader.line_num
        fields = [f.strip() for f in row]
        if not fields or fields == [""]:
            continue
        try:
            name, row_classes, label = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise UsageError(f"{path}:{number}: malformed row {_shown(row)}; "
                             "expected 'file,classes,class'") from None
        if (not 0 <= label < row_classes or "/" in name or name in ("", ".", "..")
                or any(ord(c) < 32 for c in name)):
            raise UsageError(f"{path}:{number}: malformed row {_shown(row)}")
        if classes is not None and not 0 <= label < classes:
            raise UsageError(f"{path}:{number}: label {label} is not one of the benchmark's "
                             f"{classes} classes (valid labels: 0 to {classes - 1}); is this "
                             "another benchmark's dataset?")
        if windowed:
            try:
                width, stride = int(fields[3]), int(fields[4])
            except (IndexError, ValueError):
                width = stride = 0
            if width <= 0 or stride <= 0:
                raise UsageError(f"{path}:{number}: malformed row {_shown(row)}; expected "
                                 "'file,classes,class,bytes_to_send,stride'")
            entries.append(_Row(name, label, width, stride))
        else:
            entries.append(_Row(name, label))
        if len(entries) > MAX_SAMPLES:
            raise UsageError(f"{path} lists more than {MAX_SAMPLES:,} samples")
    if not entries:
        raise UsageError(f"{path} lists no samples")
    return tuple(entries)


def _windows(folder: Path, rows: tuple[_Row, ...], sample_bytes: int, limit: int,
             sizes: dict[str, int]) -> tuple[Entry, ...]:
    """Cut each file into windows of ``bytes_to_send`` every ``stride`` bytes (AD: 196 per file);
    ``sizes`` gets each file's size, no more than ``limit``."""
    out: list[Entry] = []
    for group, row in enumerate(rows):
        width, stride = row.width, row.stride
        if width != sample_bytes:
            raise UsageError(f"{row.file}: the label file sends windows of {width} bytes, the "
                             f"benchmark's model input is {sample_bytes} bytes")
        path = folder / row.file
        size = _stat_regular(path)
        if size > limit:
            raise UsageError(f"dataset file {path} has {size:,} bytes, more than the {limit:,} a "
                             "file of this dataset has")
        if size < width or (size - width) % stride:
            raise UsageError(f"dataset file {path} has {size} bytes, which is not a "
                             f"whole number of {stride}-byte steps after a {width}-byte window")
        if len(out) + (size - width) // stride + 1 > MAX_SAMPLES:
            raise UsageError(f"the dataset in {folder} cuts into more than {MAX_SAMPLES:,} windows")
        sizes[row.file] = size
        out += [Entry(row.file, row.label, offset, group) for offset in range(0, size - width + 1, stride)]
    return tuple(out)


def _kind(path: Path) -> str:
    """What a path that is neither a folder nor a regular file is, for an error message."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link" if os.path.islink(path) else "unreadable"
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or
            stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def _stat_regular(path: Path, note: str = "") -> int:
    """The size of a regular file (links followed); missing, or anything else, is a UsageError."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"dataset file {path} is missing{note}") from None
    except OSError as exc:
        raise UsageError(f"dataset file {path}: cannot read: {exc.strerror}") from None
    return regular_file(path, "dataset file")


def _read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a file :func:`_stat_regular` found regular. It is opened
    without blocking and checked again, so a FIFO put in its place meanwhile is refused too."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"dataset file {path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"dataset file {path} is not a regular file; give a regular file")
        try:
            return handle.read(limit + 1)
        except OSError as exc:
            raise UsageError(f"dataset file {path}: cannot read: {exc.strerror}") from None
