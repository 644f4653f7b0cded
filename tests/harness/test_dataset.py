"""Reading datasets in the EEMBC / MLPerf Tiny layout (y_labels.csv beside the sample files)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from tinyharness import dataset
from tinyharness.benchmark import get_benchmark
from tinyharness.dataset import Dataset, Entry
from tinyharness.errors import UsageError

SHAPE = (2, 3)  # 6 bytes per uint8 sample


def write_dataset(folder: Path, rows: list[str], files: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "y_labels.csv").write_text("".join(r + "\n" for r in rows))
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return folder


def open_ds(path: Path, shape=SHAPE, dtype="uint8", dataset_id="ds01") -> Dataset:
    return Dataset.open(path, dataset_id, "y_labels.csv", shape, dtype)


@pytest.fixture
def good(tmp_path) -> Path:
    return write_dataset(tmp_path / "ds01", ["a_0.bin,3,0", "b_2.bin,3,2", "c_1.bin,3,1"], {
        "a_0.bin": bytes(range(6)), "b_2.bin": bytes(range(10, 16)), "c_1.bin": bytes([255] * 6)})


def test_open_the_dataset_folder_itself(good):
    ds = open_ds(good)
    assert ds.folder == good
    assert ds.label_file == good / "y_labels.csv"
    assert len(ds) == 3
    assert ds.entries == (Entry("a_0.bin", 0), Entry("b_2.bin", 2), Entry("c_1.bin", 1))
    assert ds.sample_bytes == 6
    assert ds.id == "ds01"


def test_open_a_parent_holding_the_dataset_id_folder(good):
    ds = open_ds(good.parent)
    assert ds.folder == good
    assert len(ds) == 3


def test_read_gives_shape_dtype_and_bytes(good):
    ds = open_ds(good)
    x = ds.read(1)
    assert x.shape == SHAPE
    assert x.dtype == np.uint8
    assert x.tolist() == [[10, 11, 12], [13, 14, 15]]


def test_read_int8_and_float32_layouts(tmp_path):
    data_i8 = np.array([-128, -1, 0, 1, 127, 5], dtype=np.int8).tobytes()
    folder = write_dataset(tmp_path / "i8", ["s.bin,2,1"], {"s.bin": data_i8})
    ds = open_ds(folder, dtype="int8")
    assert ds.read(0).tolist() == [[-128, -1, 0], [1, 127, 5]]
    data_f32 = np.array([0.5, -2.0], dtype="<f4").tobytes()
    folder = write_dataset(tmp_path / "f32", ["s.bin,2,0"], {"s.bin": data_f32})
    ds = Dataset.open(folder, "x", "y_labels.csv", (2,), "float32")
    assert ds.sample_bytes == 8
    assert ds.read(0).tolist() == [0.5, -2.0]


def test_sha256_covers_labels_then_samples_in_order(good):
    ds = open_ds(good)
    expected = hashlib.sha256((good / "y_labels.csv").read_bytes() + bytes(range(6))
                              + bytes(range(10, 16)) + bytes([255] * 6)).hexdigest()
    assert ds.sha256() == expected


def test_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        open_ds(tmp_path / "nowhere")


def test_missing_label_file_names_it(tmp_path):
    (tmp_path / "ds01").mkdir()
    with pytest.raises(UsageError, match="y_labels.csv") as info:
        open_ds(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_missing_sample_file_names_it(tmp_path):
    folder = write_dataset(tmp_path / "ds01", ["a.bin,3,0", "gone.bin,3,1"], {"a.bin": bytes(6)})
    ds = open_ds(folder)  # opening reads only the labels
    ds.read(0)
    with pytest.raises(UsageError, match="gone.bin") as info:
        ds.read(1)
    assert "missing" in str(info.value)
    assert "y_labels.csv" in str(info.value)
    with pytest.raises(UsageError, match="gone.bin"):
        ds.sha256()


@pytest.mark.parametrize("size", [0, 5, 7, 12])
def test_wrong_file_size_names_file_and_sizes(tmp_path, size):
    folder = write_dataset(tmp_path / "ds01", ["odd.bin,3,0"], {"odd.bin": bytes(size)})
    with pytest.raises(UsageError, match="odd.bin") as info:
        open_ds(folder).read(0)
    message = str(info.value)
    assert f"{size} bytes" in message
    assert "expected 6" in message


@pytest.mark.parametrize(("row", "why"), [
    ("x.bin,ten,3", "non-integer class count"),
    ("x.bin,10,three", "non-integer class"),
    ("x.bin,10,", "empty class"),
    ("x.bin,10", "missing class"),
    ("x.bin", "only a name"),
    ("x.bin,10,10", "label == classes"),
    ("x.bin,10,11", "label > classes"),
    ("x.bin,10,-1", "negative label"),
    ("sub/x.bin,10,1", "path separator"),
    ("../x.bin,10,1", "parent path"),
    ("/etc/passwd,10,1", "absolute path"),
    ("..,10,1", "dot-dot name"),
    (".,10,1", "dot name"),
    (",10,1", "empty name"),
])
def test_malformed_row_names_file_and_row(tmp_path, row, why):
    folder = write_dataset(tmp_path / "ds01", ["ok.bin,10,1", row, "ok2.bin,10,2"])
    with pytest.raises(UsageError) as info:
        open_ds(folder)
    message = str(info.value)
    assert f"{folder / 'y_labels.csv'}:2:" in message, why
    assert "malformed row" in message


def test_empty_label_file(tmp_path):
    folder = write_dataset(tmp_path / "ds01", [])
    with pytest.raises(UsageError, match="lists no samples"):
        open_ds(folder)


def test_blank_lines_and_spaces_are_tolerated(tmp_path):
    folder = write_dataset(tmp_path / "ds01", ["", " a.bin , 3 , 2 ", "   ", "b.bin,3,0", ""])
    ds = open_ds(folder)
    assert ds.entries == (Entry("a.bin", 2), Entry("b.bin", 0))


def test_anomaly_detection_rows_with_extra_fields(tmp_path):
    folder = write_dataset(tmp_path / "ds01", ["n_0.bin,2,0,102400,512", "a_1.bin,2,1,102400,512"])
    ds = open_ds(folder)
    assert [e.label for e in ds.entries] == [0, 1]


def test_row_number_counts_blank_lines(tmp_path):
    folder = write_dataset(tmp_path / "ds01", ["a.bin,3,0", "", "b.bin,3,9"])
    with pytest.raises(UsageError, match=r"y_labels\.csv:3:"):
        open_ds(folder)


def test_undecodable_label_file_is_a_usage_error(tmp_path):
    folder = tmp_path / "ds01"
    folder.mkdir()
    (folder / "y_labels.csv").write_bytes(b"a.bin,3,0\n\xff\xfe\x00garbage,3,1\n")
    with pytest.raises(UsageError, match="y_labels.csv"):
        open_ds(folder)


# -- the real kws01 set (shared MLPerf Tiny data) --------------------------------------------------

def test_kws01_official_set(shared_data):
    ds = Dataset.open(shared_data / "datasets", "kws01", "y_labels.csv", (49, 10, 1), "int8")
    assert ds.folder == shared_data / "datasets" / "kws01"
    assert len(ds) == 1000
    assert ds.sample_bytes == 490
    assert ds.entries[0] == Entry("tst_000000_Stop_7.bin", 7)
    # the class is the file name's last field, for every row
    assert all(int(e.file.rsplit("_", 1)[1].split(".")[0]) == e.label for e in ds.entries)
    assert all((ds.folder / e.file).stat().st_size == 490 for e in ds.entries)
    x = ds.read(0)
    assert x.shape == (49, 10, 1)
    assert x.dtype == np.int8
    assert x.tobytes() == (ds.folder / "tst_000000_Stop_7.bin").read_bytes()
    # opening the folder itself gives the same rows
    assert Dataset.open(ds.folder, "kws01", "y_labels.csv", (49, 10, 1), "int8").entries == ds.entries


def test_label_file_with_byte_order_mark(tmp_path):
    folder = tmp_path / "ds01"
    folder.mkdir()
    (folder / "y_labels.csv").write_bytes(b"\xef\xbb\xbfa.bin,3,0\nb.bin,3,1\n")
    (folder / "a.bin").write_bytes(bytes(6))
    ds = open_ds(folder)
    assert ds.entries[0] == Entry("a.bin", 0)


# -- untrusted label files and sample files (hardening) --------------------------------------------

@contextlib.contextmanager
def unblocked_if_opened(fifo: Path, data: bytes):
    """While the block runs, a thread that, should a reader open ``fifo``, feeds it ``data`` and
    closes it: code that opens the FIFO (the defect) then gets bytes instead of blocking forever."""
    done = threading.Event()

    def feed() -> None:
        while not done.wait(0.01):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                continue
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize(("row", "label"), [("x.bin,100,50", 50), (f"x.bin,{10**27},{10**26}", 10**26)])
def test_a_label_outside_the_benchmark_classes_is_refused_at_open(tmp_path, row, label):
    """Issue defect 5: labels 50 (of 12 classes) and 10^26 were scored as misses."""
    folder = write_dataset(tmp_path / "ds01", ["ok.bin,12,11", row])
    with pytest.raises(UsageError) as info:
        Dataset.open(folder, "ds01", "y_labels.csv", SHAPE, "uint8", classes=12)
    assert str(info.value) == (f"{folder / 'y_labels.csv'}:2: label {label} is not one of the "
                               "benchmark's 12 classes (valid labels: 0 to 11); is this another "
                               "benchmark's dataset?")


def test_for_benchmark_checks_labels_against_the_benchmark(tmp_path):
    kws = get_benchmark("kws01")
    folder = write_dataset(tmp_path / "kws01", ["a.bin,12,0", "b.bin,20,12"])
    with pytest.raises(UsageError, match=r"y_labels\.csv:2: label 12 is not one of the benchmark's "
                                         r"12 classes \(valid labels: 0 to 11\)"):
        Dataset.for_benchmark(kws, tmp_path)
    sample = bytes(kws.sample_bytes)
    write_dataset(folder, ["a.bin,12,0", "b.bin,12,11"], {"a.bin": sample, "b.bin": sample})
    assert [e.label for e in Dataset.for_benchmark(kws, tmp_path).entries] == [0, 11]


def test_a_field_over_the_csv_limit_names_file_and_row(tmp_path):
    """Issue defect 14: a 128 KiB field raised _csv.Error; a quoted one may span lines."""
    folder = tmp_path / "ds01"
    folder.mkdir()
    labels = folder / "y_labels.csv"
    labels.write_text("a.bin,3,0\n" + "b" * 200_000 + ".bin,3,1\n")
    with pytest.raises(UsageError, match=rf"^{re.escape(str(labels))}:2: a row of 200,009 characters"):
        open_ds(folder)
    labels.write_text('a.bin,3,0\n"' + "b\n" * 70_000 + '",3,1\n')
    with pytest.raises(UsageError, match=rf"^{re.escape(str(labels))}:\d+: unreadable row \(field "
                                         r"larger than field limit") as info:
        open_ds(folder)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_nul_byte_names_file_and_row(tmp_path):
    """Issue defect 14: a NUL byte gave an error naming no row."""
    folder = tmp_path / "ds01"
    folder.mkdir()
    (folder / "y_labels.csv").write_bytes(b"a.bin,3,0\nb.bin,3,1\nc\x00.bin,3,2\n")
    with pytest.raises(UsageError, match=rf"^{re.escape(str(folder / 'y_labels.csv'))}:3: a NUL byte"):
        open_ds(folder)


def test_a_long_row_is_quoted_short(tmp_path):
    folder = write_dataset(tmp_path / "ds01", ["a.bin,3,0", "b.bin,3," + "9" * 3000])
    with pytest.raises(UsageError, match="malformed row") as info:
        open_ds(folder)
    assert len(str(info.value)) < 300


def test_the_label_file_read_is_bounded(tmp_path, monkeypatch):
    """Issue defect 14: y_labels.csv was read whole, whatever its size."""
    folder = write_dataset(tmp_path / "ds01", [f"f{i}.bin,3,0" for i in range(200)])
    monkeypatch.setattr(dataset, "LABELS_LIMIT", 1000)
    with pytest.raises(UsageError, match=r"y_labels\.csv is 2,\d{3} bytes, more than the 1,000 allowed"):
        open_ds(folder)


def test_a_label_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    folder = tmp_path / "ds01"
    folder.mkdir()
    os.mkfifo(folder / "y_labels.csv")
    with unblocked_if_opened(folder / "y_labels.csv", b"a.bin,3,0\n"), \
            pytest.raises(UsageError, match=r"y_labels\.csv is a FIFO; give a regular file"):
        open_ds(folder)


def test_a_fifo_in_place_of_a_sample_file_is_refused_without_blocking(good):
    """Issue defect 16: Dataset.sha256 hung forever on a FIFO."""
    fifo = good / "b_2.bin"
    fifo.unlink()
    os.mkfifo(fifo)
    ds = open_ds(good)
    for attempt in (lambda: ds.read(1), ds.sha256):
        with unblocked_if_opened(fifo, bytes(6)), pytest.raises(
                UsageError, match=rf"dataset file {re.escape(str(fifo))} is a FIFO; give a regular file"):
            attempt()


def test_a_sample_file_linked_to_a_device_is_never_read(good):
    """Issue defect 16: a sample linked to /dev/zero was read whole (3 GiB in 21 s)."""
    link = good / "b_2.bin"
    link.unlink()
    link.symlink_to("/dev/zero")
    ds = open_ds(good)
    for attempt in (lambda: ds.read(1), ds.sha256):
        with pytest.raises(UsageError, match=rf"{re.escape(str(link))} is a device; give a regular file"):
            attempt()


def test_a_link_to_a_regular_file_is_followed(good, tmp_path):
    (tmp_path / "elsewhere.bin").write_bytes(bytes(range(20, 26)))
    (good / "b_2.bin").unlink()
    (good / "b_2.bin").symlink_to(tmp_path / "elsewhere.bin")
    assert open_ds(good).read(1).reshape(-1).tolist() == list(range(20, 26))


def test_a_sample_file_larger_than_a_sample_is_not_hashed(good):
    """sha256 read every file whole, whatever its size; it now stops at the sample size."""
    (good / "c_1.bin").write_bytes(bytes(1 << 20))
    with pytest.raises(UsageError, match=r"c_1\.bin has 1048576 bytes, expected 6"):
        open_ds(good).sha256()


def test_a_windowed_file_larger_than_the_rule_set_states_is_refused(tmp_path):
    window = bytes(8)  # 2 float32 values
    folder = write_dataset(tmp_path / "ad", ["n.bin,2,0,8,4", "a.bin,2,1,8,4"],
                           {"n.bin": window * 2, "a.bin": window * 4})
    with pytest.raises(UsageError, match=r"a\.bin has 32 bytes, more than the 16 a file of this "
                                         "dataset has"):
        Dataset.open(folder, "ad", "y_labels.csv", (2,), "float32", True, classes=2, file_bytes=16)
    (folder / "a.bin").write_bytes(window * 2)
    ds = Dataset.open(folder, "ad", "y_labels.csv", (2,), "float32", True, classes=2, file_bytes=16)
    assert [(e.file, e.offset) for e in ds.entries] == [("n.bin", 0), ("n.bin", 4), ("n.bin", 8),
                                                        ("a.bin", 0), ("a.bin", 4), ("a.bin", 8)]


def test_a_windowed_file_linked_to_a_device_is_refused_at_open(tmp_path):
    folder = write_dataset(tmp_path / "ad", ["n.bin,2,0,8,4"])
    (folder / "n.bin").symlink_to("/dev/zero")
    with pytest.raises(UsageError, match=r"n\.bin is a device; give a regular file"):
        Dataset.open(folder, "ad", "y_labels.csv", (2,), "float32", True)


def test_a_float_sample_that_is_not_finite_is_refused(tmp_path):
    values = np.array([0.5, np.nan], dtype="<f4").tobytes()
    folder = write_dataset(tmp_path / "f", ["s.bin,2,0"], {"s.bin": values})
    with pytest.raises(UsageError, match=r"s\.bin holds NaN or infinite values"):
        Dataset.open(folder, "f", "y_labels.csv", (2,), "float32").read(0)


# -- user-reported: the path given, and every listed file checked before a run -------------------

def test_the_label_file_given_as_dataset_says_to_give_its_folder(good):
    """Issue: --dataset .../kws01/y_labels.csv said the folder does not exist (the file does)."""
    labels = good / "y_labels.csv"
    with pytest.raises(UsageError) as info:
        open_ds(labels)
    assert str(info.value) == (f"{labels} is a file; --dataset takes the folder holding "
                               f"y_labels.csv, e.g. {good} or its parent")
    with pytest.raises(UsageError, match=r"a_0\.bin is a file; --dataset takes the folder"):
        open_ds(good / "a_0.bin")
    with pytest.raises(UsageError, match="^dataset folder .* does not exist"):
        open_ds(good / "nope")
    (good / "gone").symlink_to(good / "nope")
    with pytest.raises(UsageError) as info:
        open_ds(good / "gone")
    assert str(info.value) == (f"{good / 'gone'} is a broken link, not a folder; --dataset takes "
                               "the folder holding y_labels.csv (or its parent)")


def _kws_folder(root: Path, files: dict[str, int]) -> tuple[Path, int]:
    size = get_benchmark("kws01").sample_bytes
    folder = write_dataset(root / "kws01", [f"{name},12,{i % 12}" for i, name in enumerate(files)])
    for name, length in files.items():
        if length >= 0:
            (folder / name).write_bytes(bytes(size if length == 0 else length))
    return folder, size


def test_for_benchmark_checks_every_listed_file_and_its_size(tmp_path):
    kws = get_benchmark("kws01")
    folder, size = _kws_folder(tmp_path, {"a.bin": 0, "b.bin": -1, "c.bin": 7, "d.bin": -1})
    with pytest.raises(UsageError) as info:
        Dataset.for_benchmark(kws, tmp_path)
    assert str(info.value) == (f"dataset file {folder / 'b.bin'} is missing (y_labels.csv lists "
                               "it); 3 of the 4 files y_labels.csv lists are missing or of the "
                               "wrong size")
    (folder / "b.bin").write_bytes(bytes(size))
    (folder / "d.bin").write_bytes(bytes(size))
    with pytest.raises(UsageError) as info:
        Dataset.for_benchmark(kws, tmp_path)
    assert str(info.value) == (f"dataset file {folder / 'c.bin'} has 7 bytes, expected {size:,} "
                               f"({'x'.join(map(str, kws.sample_shape))} {kws.sample_dtype})")
    (folder / "c.bin").write_bytes(bytes(size))
    assert len(Dataset.for_benchmark(kws, tmp_path)) == 4
