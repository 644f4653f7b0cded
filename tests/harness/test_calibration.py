"""Calibration inputs for ``models export --precision int8`` (tinyharness.calibration)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tinyharness.benchmark import get_benchmark
from tinyharness.calibration import load
from tinyharness.errors import UsageError
from tinyharness.resources import data_dir

DIGITS = data_dir("datasets") / "digits01"


def _list(tmp_path, text: str):
    path = tmp_path / "cal.txt"
    path.write_text(text)
    return path


def test_a_list_of_dataset_files_becomes_float_inputs(tmp_path):
    path = _list(tmp_path, "# three digits\ntst_0000_3.bin\n\ntst_0002_0.bin  # comment\n"
                           "tst_0001_8.bin\ntst_0000_3.bin\n")
    cal = load(path, get_benchmark("digits01"), None)
    assert cal.files == ("tst_0000_3.bin", "tst_0002_0.bin", "tst_0001_8.bin")  # once each
    assert cal.inputs.dtype == np.float32 and cal.inputs.shape == (3, 8, 8, 1)
    raw = np.frombuffer((DIGITS / "tst_0002_0.bin").read_bytes(), np.uint8)
    np.testing.assert_array_equal(cal.inputs[1].ravel(), raw.astype(np.float32))  # float(u8)
    assert cal.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cal.to_dict()["samples"] == 3 and cal.source == "cal.txt"


def test_a_label_file_works_as_a_list():
    cal = load(DIGITS / "y_labels.csv", get_benchmark("digits01"), None)
    assert cal.inputs.shape == (360, 8, 8, 1)


def test_the_dequantize_transform_applies(tmp_path):
    """kws01's int8 MFCC files become the float model's input: (q - 83) * 0.5847029."""
    from pathlib import Path

    shared = Path(__file__).resolve().parents[3] / "shared" / "mlperf_tiny" / "datasets"
    name = "tst_000000_Stop_7.bin"
    if not (shared / "kws01" / name).is_file():
        pytest.skip(f"MLPerf Tiny kws01 files not found in {shared}")
    cal = load(_list(tmp_path, name + "\n"), get_benchmark("kws01"), shared)
    q = np.frombuffer((shared / "kws01" / name).read_bytes(), np.int8).astype(np.float64)
    np.testing.assert_allclose(cal.inputs[0].ravel(), (q - 83) * 0.5847029089927673, rtol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("3667\n53\n8246\n", r"holds indices .* list their names"),
    ("tst_0000_3.bin\nnope.bin\n", r"1 of 2 files are not in .*y_labels.csv \(first: nope.bin\)"),
    ("# nothing\n\n", r"names no files"),
])
def test_bad_lists_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message) as caught:
        load(_list(tmp_path, text), get_benchmark("digits01"), None)
    assert "\n" not in str(caught.value)


def test_a_missing_list_is_named(tmp_path):
    with pytest.raises(UsageError, match=r"calibration list .*nosuch.txt: no such file"):
        load(tmp_path / "nosuch.txt", get_benchmark("digits01"), None)


def test_an_npy_array_is_taken_as_it_is(tmp_path):
    path = tmp_path / "cal.npy"
    x = np.random.default_rng(0).random((5, 1, 8, 8, 1), dtype=np.float32)
    np.save(path, x)
    cal = load(path, None, None)
    np.testing.assert_array_equal(cal.inputs, x)
    assert load(path, get_benchmark("digits01"), None).inputs.shape == x.shape


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 8, 8, 1), np.float64), r"is float64 \[4, 8, 8, 1\]; it must be float32"),
    (np.zeros((4, 9), np.float32), r"inputs of shape \[9\]; digits01 takes \[8, 8, 1\]"),
    (np.full((2, 64), np.nan, np.float32), r"NaN or infinite"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, array, message):
    path = tmp_path / "cal.npy"
    np.save(path, array)
    with pytest.raises(UsageError, match=message):
        load(path, get_benchmark("digits01"), None)


def test_a_list_needs_a_benchmark(tmp_path):
    with pytest.raises(UsageError, match=r"for an \.onnx file give a \.npy array"):
        load(_list(tmp_path, "a.bin\n"), None, None)
