"""The query sample library: input transforms, loading, and the seeded performance set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyharness.dataset import Dataset
from tinyharness.errors import UsageError
from tinyharness.qsl import QSL, Seeds, transform
from tinyharness.sut import TensorSpec

RAW = np.array([[0, 1, 2], [127, 128, 255]], dtype=np.uint8)


def test_minus128_exact_values():
    x = transform(RAW, "minus128", TensorSpec("in", (1, 2, 3), "int8"))
    assert x.dtype == np.int8
    assert x.shape == (1, 2, 3)
    assert x.reshape(-1).tolist() == [-128, -127, -126, -1, 0, 127]


def test_minus128_covers_the_whole_uint8_range():
    raw = np.arange(256, dtype=np.uint8)
    x = transform(raw, "minus128", TensorSpec("in", (256,), "int8"))
    assert x.tolist() == list(range(-128, 128))


def test_float_exact_values():
    x = transform(RAW, "float", TensorSpec("in", (1, 6), "float32"))
    assert x.dtype == np.float32
    assert x.tolist() == [[0.0, 1.0, 2.0, 127.0, 128.0, 255.0]]


def test_identity_keeps_values():
    x = transform(RAW, "identity", TensorSpec("in", (6, 1), "uint8"))
    assert x.dtype == np.uint8
    assert x.reshape(-1).tolist() == [0, 1, 2, 127, 128, 255]
    raw_i8 = np.array([-128, -5, 0, 7, 127, 1], dtype=np.int8)
    y = transform(raw_i8, "identity", TensorSpec("in", (2, 3), "int8"))
    assert y.dtype == np.int8
    assert y.tolist() == [[-128, -5, 0], [7, 127, 1]]


def test_result_is_contiguous_and_a_copy_of_the_layout():
    x = transform(RAW.T, "float", TensorSpec("in", (6,), "float32"))  # a non-contiguous view
    assert x.flags["C_CONTIGUOUS"]
    assert x.tolist() == [0.0, 127.0, 1.0, 128.0, 2.0, 255.0]  # row-major order of the transposed view


def test_any_input_spec_adds_a_batch_axis():
    x = transform(RAW, "float", TensorSpec("any", (), ""))
    assert x.shape == (1, 2, 3)
    assert x.dtype == np.float32
    assert x[0].tolist() == [[0.0, 1.0, 2.0], [127.0, 128.0, 255.0]]


@pytest.mark.parametrize("shape", [(1, 7), (5,), (2, 2, 2)])
def test_shape_mismatch_is_a_usage_error(shape):
    with pytest.raises(UsageError) as info:
        transform(RAW, "identity", TensorSpec("input_1", shape, "uint8"))
    message = str(info.value)
    assert "input_1" in message
    assert str(list(shape)) in message
    assert "6 values" in message


def test_unknown_transform_is_a_usage_error():
    with pytest.raises(UsageError, match="plus128"):
        transform(RAW, "plus128", TensorSpec("in", (6,), "int8"))


# -- QSL over a dataset ----------------------------------------------------------------------------

def make_dataset(folder: Path, count: int) -> Dataset:
    folder.mkdir()
    rows = []
    for i in range(count):
        name = f"s{i:03d}.bin"
        (folder / name).write_bytes(bytes([i % 256, (2 * i) % 256]))
        rows.append(f"{name},5,{i % 5}\n")
    (folder / "y_labels.csv").write_text("".join(rows))
    return Dataset.open(folder, "q", "y_labels.csv", (2,), "uint8")


@pytest.fixture
def qsl(tmp_path) -> QSL:
    return QSL(make_dataset(tmp_path / "q", 40), "minus128", TensorSpec("in", (1, 2), "int8"))


def test_load_sample_unload(qsl):
    assert qsl.total_count == 40
    qsl.load([3, np.int64(7)])
    assert sorted(qsl.loaded) == [3, 7]
    assert qsl.sample(3).tolist() == [[3 - 128, 6 - 128]]
    assert qsl.sample(7).dtype == np.int8
    first = qsl.sample(3)
    qsl.load([3])
    assert qsl.sample(3) is first  # loading twice keeps the loaded array
    qsl.unload()
    assert qsl.loaded == {}
    with pytest.raises(KeyError):
        qsl.sample(3)


def test_performance_set_is_a_reproducible_permutation_prefix(qsl):
    seeds = Seeds(qsl_rng_seed=12345, sample_index_rng_seed=1)
    full = qsl.performance_set(40, seeds)
    assert sorted(full.tolist()) == list(range(40))
    assert full.tolist() != list(range(40))  # shuffled
    for count in (1, 10, 39):
        part = qsl.performance_set(count, seeds)
        assert part.tolist() == full[:count].tolist()
    assert qsl.performance_set(40, Seeds(12345, 999)).tolist() == full.tolist()  # only qsl seed counts
    assert qsl.performance_set(40, Seeds(12346, 1)).tolist() != full.tolist()


def test_performance_set_larger_than_the_dataset_is_the_whole_set(qsl):
    seeds = Seeds(7, 7)
    assert sorted(qsl.performance_set(1000, seeds).tolist()) == list(range(40))


def test_seeds_from_seed():
    a, b, c = Seeds.from_seed(0), Seeds.from_seed(0), Seeds.from_seed(1)
    assert a == b
    assert a != c
    assert a.qsl_rng_seed != a.sample_index_rng_seed
    assert a.to_dict() == {"qsl_rng_seed": a.qsl_rng_seed, "sample_index_rng_seed": a.sample_index_rng_seed}
    assert all(isinstance(v, int) and 0 <= v < 2 ** 32 for v in a.to_dict().values())


def test_qsl_reports_a_shape_mismatch_on_load(tmp_path):
    q = QSL(make_dataset(tmp_path / "q", 3), "identity", TensorSpec("img", (3, 3), "uint8"))
    with pytest.raises(UsageError, match="img"):
        q.load([0])


def test_kws01_loads_as_model_input(shared_data):
    ds = Dataset.open(shared_data / "datasets" / "kws01", "kws01", "y_labels.csv", (49, 10, 1), "int8")
    q = QSL(ds, "identity", TensorSpec("input_1", (1, 49, 10, 1), "int8"))
    assert q.total_count == 1000
    q.load([0])
    x = q.sample(0)
    assert x.shape == (1, 49, 10, 1)
    assert x.dtype == np.int8
    assert x.tobytes() == (ds.folder / "tst_000000_Stop_7.bin").read_bytes()
