"""Reading datasets in the EEMBC / MLPerf Tiny layout (y_labels.csv beside the sample files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

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
