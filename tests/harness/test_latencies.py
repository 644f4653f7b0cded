"""Latencies in bounded memory: exact order statistics without a sorted copy, values past 4.29 s,
the histogram past the exact limit, and the .npy written block by block."""

from __future__ import annotations

import numpy as np
import pytest

from tinyharness import latencies as L
from tinyharness.latencies import CEILING, Latencies
from tinyharness.logs import RunDirectory


def loadgen_percentiles(values: np.ndarray, ps) -> list[int]:
    ordered = np.sort(values)
    return [int(ordered[min(int(len(values) * p), len(values) - 1)]) for p in ps]


def fill(record: Latencies, values: np.ndarray) -> Latencies:
    """Write as the single-stream loop does: into the space the record offers, in chunks."""
    done = 0
    while done < len(values):
        block, start, room = record.space()
        take = min(room, len(values) - done, 70_001)  # chunks that do not align with blocks
        for i, value in enumerate(values[done:done + take]):
            try:
                block[start + i] = int(value)
            except OverflowError:
                block[start + i] = record.overflow(start + i, int(value))
        record.advance(start + take)
        done += take
    return record


@pytest.mark.parametrize("n", [1, 2, 999, 1 << 20, (1 << 20) + 17])
def test_order_statistics_are_exact(n):
    rng = np.random.default_rng(n)
    values = (rng.lognormal(9, 1.2, n) + 1).astype(np.int64)
    record = Latencies.from_array(values)
    ps = (0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0)
    assert record.kth([min(int(n * p), n - 1) for p in ps]) == loadgen_percentiles(values, ps)
    low, high, total, _ = record.moments()
    assert (low, high, total) == (int(values.min()), int(values.max()), int(values.sum()))
    assert np.array_equal(np.asarray(record), values)


def test_values_past_the_uint32_range_stay_exact_in_the_hot_loop_path():
    values = np.array([1500, 7 * 2**32 + 3, CEILING, 2**32, 900, 5 * 10**9] * 50, np.int64)
    record = fill(Latencies(), values)
    assert len(record.big) == 150  # CEILING itself fits in a block
    n = len(values)
    assert record.kth(range(n)) == sorted(values.tolist())
    assert record.moments()[1:3] == (7 * 2**32 + 3, int(values.sum()))
    assert np.array_equal(np.asarray(record), values)


def test_repetitions_back_to_back_keep_order_and_big_values(tmp_path):
    """--repeat: each repetition waits in a part file; latencies.npy puts them back to back."""
    a, b = np.array([5, 2**33, 7], np.int64), np.array([1, 2, 2**34 + 1, 3], np.int64)
    run_dir = RunDirectory(tmp_path)
    parts = [run_dir.spill(fill(Latencies(), a), 1), run_dir.spill(fill(Latencies(), b), 2)]
    run_dir.write_npy("latencies.npy", parts)
    back = np.load(tmp_path / "latencies.npy", allow_pickle=False)
    assert back.tolist() == a.tolist() + b.tolist()
    assert not list(tmp_path.glob(".repetition-*"))


def test_memory_is_four_bytes_a_query():
    values = np.full(3 * L.BLOCK, 1234, np.int64)
    record = fill(Latencies(), values)
    assert sum(block.nbytes for block in record.blocks) == 3 * L.BLOCK * 4


def test_past_the_exact_limit_a_histogram_bounds_the_error_and_the_memory(monkeypatch):
    monkeypatch.setattr(L, "EXACT_LIMIT", 2 * L.BLOCK)
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.integers(100, 2000, L.BLOCK),  # exact region of the histogram
                             (rng.lognormal(10, 1.5, 5 * L.BLOCK) + 1).astype(np.int64)])
    record = fill(Latencies(), values)
    assert len(record.blocks) <= 1  # folded as it goes: fixed memory
    record.finish()
    assert not record.exact and len(record) == len(values)
    ps = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999)
    n = len(values)
    got = record.kth([int(n * p) for p in ps])
    for approx, exact in zip(got, loadgen_percentiles(values, ps)):
        assert exact <= approx <= exact * (1 + 1 / 1024) + 1
    assert record.moments()[:3] == (int(values.min()), int(values.max()), int(values.sum()))
    with pytest.raises(ValueError, match="histogram"):
        record.to_array()


def test_small_latencies_are_exact_in_the_histogram_too(monkeypatch):
    monkeypatch.setattr(L, "EXACT_LIMIT", L.BLOCK)
    values = np.tile(np.arange(1, 2048, dtype=np.int64), 1100)
    record = fill(Latencies(), values)
    record.finish()
    assert not record.exact
    ps = (0.1, 0.5, 0.9, 0.99)
    assert record.kth([int(len(values) * p) for p in ps]) == loadgen_percentiles(values, ps)


@pytest.mark.parametrize("values, dtype", [
    (np.arange(1, 2 * L.BLOCK + 5, dtype=np.int64), np.uint32),
    (np.array([3, 2**40, 4], np.int64), np.int64),
])
def test_the_npy_is_written_block_by_block_and_reads_back(tmp_path, values, dtype):
    run_dir = RunDirectory(tmp_path)
    run_dir.write_npy("latencies.npy", Latencies.from_array(values))
    back = np.load(tmp_path / "latencies.npy", allow_pickle=False)
    assert back.dtype == dtype and np.array_equal(back.astype(np.int64), values)
