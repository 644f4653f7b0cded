"""Static memory planning for the activation arena: offsets from buffer lifetimes.

A buffer is live from the operator that first touches it to the last one that reads it (the graph's
input from the start, its outputs to the end). Buffers are placed one by one, each at the lowest
16-byte aligned offset that overlaps no placed buffer whose lifetime intersects its own (first fit);
a few placement orders are tried and the smallest arena kept.
Two buffers live at the same operator never share bytes, so an operator's output never overlaps
its inputs or its scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    key: str  # a stable name, for deterministic ordering and lookups
    size: int  # bytes
    first: int  # operator index where it becomes live
    last: int  # last operator index where it is live (inclusive)


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


ORDERS = (
    lambda b: (-b.size, b.first, b.key),  # largest first, as TFLM's greedy planner
    lambda b: (b.first, -b.size, b.key),  # in execution order
    lambda b: (-(b.last - b.first), -b.size, b.first, b.key),  # longest-lived first
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.key),  # largest size x lifetime first
)


def plan(buffers: list[Buffer]) -> tuple[dict[str, int], int]:
    """(offset per buffer key, arena bytes): the smallest arena of a few first-fit orders."""
    best: tuple[dict[str, int], int] | None = None
    for key in ORDERS:
        offsets, size = first_fit(sorted(buffers, key=key))
        if best is None or size < best[1]:
            best = offsets, size
    return best if best is not None else ({}, 0)


def first_fit(order: list[Buffer]) -> tuple[dict[str, int], int]:
    """Each buffer in turn at the lowest aligned offset free during its lifetime."""
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[str, int] = {}
    for buf in order:
        clashes = sorted(((off, b) for off, b in placed if b.first <= buf.last and buf.first <= b.last),
                         key=lambda item: item[0])
        offset = 0
        for off, b in clashes:
            if offset + buf.size <= off:
                break  # fits in the gap below this one
            offset = max(offset, align(off + b.size))
        offsets[buf.key] = offset
        placed.append((offset, buf))
    end = max((off + b.size for off, b in placed), default=0)
    return offsets, align(end)
