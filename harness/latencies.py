"""Per-query latencies of any length of run in bounded memory.

Stored as uint32 nanoseconds in blocks of 2^20 (4 bytes a query, no copy as the run grows; a
latency past 2^32 - 1 ns, 4.29 s, is kept exactly in a side table). Order statistics come from a
radix selection over the blocks (three counting passes of 11, 11 and 10 bits), never from a sorted
copy, so a 10 M-query run needs 40 MB and no more while it is summarised.

Past ``EXACT_LIMIT`` queries the values fold into a fixed-size log-linear histogram: exact below
2048 ns, above that 1024 buckets per power of two (a bucket spans at most 1/1024 of its value). A
percentile is then the upper edge of its bucket, at most 0.1 % above the exact value, and
``exact`` is False; count, min, max and mean stay exact. Memory past the limit is fixed: the
histogram (23 552 counts) and one block.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

BLOCK = 1 << 20
EXACT_LIMIT = 1 << 23  # 8 Mi queries, 32 MiB; a 10 M-query run stays under 40 MB
CEILING = (1 << 32) - 1
_SHIFTS, _WIDTHS = (21, 10, 0), (11, 11, 10)
_LINEAR = 2048  # histogram buckets below this many ns are one ns wide
_SUB = 1024  # buckets per power of two above
_BUCKETS = _LINEAR + (32 - 11) * _SUB
_SLICE = 1 << 16


class Latencies:
    """Latencies in ns, appended block by block by the single-stream loop."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.used = 0  # entries used in the last block
        self.big: dict[int, int] = {}  # index -> latency past CEILING
        self.histogram: np.ndarray | None = None
        self.folded = self._sum = 0
        self._sum_sq = 0.0
        self._min, self._max = math.inf, -1

    # -- filling ----------------------------------------------------------------------------------
    def space(self) -> tuple[np.ndarray, int, int]:
        """(block, first free index, room) for the loop to write into; a fresh block when full."""
        if not self.blocks or self.used == len(self.blocks[-1]):
            if self.blocks and (self.histogram is not None or self.stored + BLOCK > EXACT_LIMIT):
                self._fold()
            self.blocks.append(np.empty(BLOCK, np.uint32))
            self.used = 0
        block = self.blocks[-1]
        return block, self.used, len(block) - self.used

    def advance(self, used: int) -> None:
        """The loop wrote up to index ``used`` of the last block."""
        self.used = used

    def overflow(self, local_index: int, value_ns: int) -> int:
        """Record a latency past CEILING written at ``local_index`` of the last block; what the
        block holds instead."""
        self.big[self.stored - self.used + local_index] = value_ns
        return CEILING

    @classmethod
    def from_array(cls, values) -> "Latencies":
        values = np.asarray(values)
        out = cls()
        for start in range(0, len(values), BLOCK):
            part = values[start:start + BLOCK]
            block, _, _ = out.space()
            over = part > CEILING
            block[:len(part)] = np.where(over, CEILING, part)
            for i in np.flatnonzero(over):
                out.big[start + int(i)] = int(part[i])
            out.advance(len(part))
        return out

    # -- what it holds ----------------------------------------------------------------------------
    @property
    def stored(self) -> int:
        """Entries in the blocks (not yet folded)."""
        return sum(len(b) for b in self.blocks[:-1]) + (self.used if self.blocks else 0)

    def __len__(self) -> int:
        return self.folded + self.stored

    @property
    def exact(self) -> bool:
        return self.histogram is None

    def chunks(self) -> Iterator[np.ndarray]:
        """The stored values in order, as uint32 views (CEILING where ``big`` has the value)."""
        for block in self.blocks[:-1]:
            yield block
        if self.blocks:
            yield self.blocks[-1][:self.used]

    def _slices(self) -> Iterator[np.ndarray]:
        """:meth:`chunks` in views of 64 Ki values, so that what statistics compute on them
        (shifts, masks, float copies) stays a few hundred KB however long the run."""
        for chunk in self.chunks():
            for start in range(0, len(chunk), _SLICE):
                yield chunk[start:start + _SLICE]

    def to_array(self) -> np.ndarray:
        """All values in order as int64 (a copy: 8 bytes a query; for tests and small runs)."""
        if not self.exact:
            raise ValueError("latencies past the exact limit are a histogram, not a sequence")
        out = np.concatenate([c.astype(np.int64) for c in self.chunks()] or [np.empty(0, np.int64)])
        for index, value in self.big.items():
            out[index] = value
        return out

    def __array__(self, dtype=None, copy=None):
        values = self.to_array()
        return values if dtype is None else values.astype(dtype)

    # -- statistics -------------------------------------------------------------------------------
    def moments(self) -> tuple[int, int, int, float]:
        """(min, max, integer sum, sum of squares) over every value."""
        lo, hi, total, squares = self._min, self._max, self._sum, self._sum_sq
        for chunk in self._slices():
            if len(chunk):
                lo, hi = min(lo, int(chunk.min())), max(hi, int(chunk.max()))
                total += int(chunk.sum(dtype=np.uint64))
                as_float = chunk.astype(np.float64)
                squares += float(np.dot(as_float, as_float))
        for value in self.big.values():
            total += value - CEILING
            squares += float(value) ** 2 - float(CEILING) ** 2
            hi = max(hi, value)
        return int(lo), int(hi), total, squares

    def mean(self) -> float:
        return self.moments()[2] / len(self) if len(self) else math.nan

    def kth(self, ranks: Iterable[int]) -> list[int]:
        """The values at 0-based ``ranks`` in ascending order (LoadGen's sorted[k])."""
        ranks = list(ranks)
        n = len(self)
        if any(not 0 <= k < n for k in ranks):
            raise ValueError(f"rank out of range for {n} latencies")
        if not self.exact:
            return [self._from_histogram(k) for k in ranks]
        big = sorted(self.big.values())
        below_big = n - len(big)
        cache: dict[tuple[int, int], np.ndarray] = {}
        return [big[k - below_big] if k >= below_big else self._select(k, cache) for k in ranks]

    def _select(self, k: int, cache: dict) -> int:
        prefix = 0
        for level in range(3):
            key = (level, prefix)
            if key not in cache:
                cache[key] = self._digit_counts(level, prefix)
            cumulative = np.cumsum(cache[key])
            digit = int(np.searchsorted(cumulative, k, side="right"))
            k -= int(cumulative[digit - 1]) if digit else 0
            prefix = (prefix << _WIDTHS[level]) | digit
        return prefix

    def _digit_counts(self, level: int, prefix: int) -> np.ndarray:
        """How many stored values (CEILING for big ones) have each digit at ``level`` among those
        whose higher digits are ``prefix``; big values are counted apart, above everything."""
        shift, width = _SHIFTS[level], _WIDTHS[level]
        counts = np.zeros(1 << width, np.int64)
        for chunk in self._slices():
            if level:
                chunk = chunk[(chunk >> np.uint32(_SHIFTS[level - 1])) == prefix]
            counts += np.bincount((chunk >> np.uint32(shift)) & np.uint32((1 << width) - 1),
                                  minlength=1 << width)
        if self.big and prefix == CEILING >> (_SHIFTS[level - 1] if level else 32):
            counts[-1] -= len(self.big)  # those CEILINGs stand for the big values
        return counts

    # -- past the exact limit ---------------------------------------------------------------------
    def _fold(self) -> None:
        if self.histogram is None:
            self.histogram = np.zeros(_BUCKETS, np.int64)
        lo, hi, total, squares = self.moments()
        self._min, self._max, self._sum, self._sum_sq = lo, hi, total, squares
        for chunk in self._slices():
            self.histogram += np.bincount(_bucket(chunk), minlength=_BUCKETS)
        # the blocks hold CEILING for the big values: counted in the last bucket; exact in the
        # maximum and the sums

        self.folded += self.stored
        self.blocks, self.used, self.big = [], 0, {}

    def finish(self) -> None:
        """Fold what the last blocks hold, past the exact limit (call once the run ended)."""
        if self.histogram is not None and self.stored:
            self._fold()

    def _from_histogram(self, k: int) -> int:
        self.finish()
        bucket = int(np.searchsorted(np.cumsum(self.histogram), k, side="right"))
        return min(_upper_edge(bucket), self._max)


def _bucket(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    bits = np.frexp(np.maximum(v, 1).astype(np.float64))[1]  # bit length, exact for < 2^53
    shift = np.maximum(bits - 11, 0)
    return np.where(v < _LINEAR, v, _LINEAR + (shift - 1) * _SUB + (v >> shift) - _SUB)


def _upper_edge(bucket: int) -> int:
    if bucket < _LINEAR:
        return bucket
    shift, offset = divmod(bucket - _LINEAR, _SUB)
    shift += 1
    return ((offset + _SUB + 1) << shift) - 1
