"""The ``no-allocation-growth`` rule: infer() keeps no memory from one call to the next.

The timed call must not allocate (:meth:`tinyharness.sut.SUT.infer`), and the harness runs
hundreds of thousands of them with the garbage collector paused. Three signals, on the prepared
first sample after a warm-up:

1. **Python heap** (tracemalloc, which also sees numpy's buffers): over ``CALLS`` calls (fewer for
   a slow SUT, at least ``MIN_CALLS``; garbage collector paused, as in a run) the traced memory may
   grow by at most ``GROWTH_CONSTANT`` bytes plus ``GROWTH_PER_CALL`` byte a call on average. An
   infer() that keeps anything per call (a list of outputs, a log line) grows by tens of bytes a
   call or more.
2. **A new array per call**: a host-timed SUT whose infer() binds a new numpy array to one of its
   attributes on every call (``self.out = np.zeros(...)``) allocates in the timed region, even
   though the old array is freed and the heap does not grow (alternating between buffers made in
   load() is fine). (An array made and dropped inside the
   call is seen by neither signal; the runtime's own Python bindings allocate a few hundred bytes
   per call that are freed at once, so a transient figure cannot be judged: it is reported.)
3. **Resident memory** (psutil): two further halves of up to ``RSS_CALLS`` calls (at most
   ``RSS_HALF_S`` seconds each); the second may grow RSS by at most ``RSS_CONSTANT`` plus
   ``RSS_PER_CALL`` bytes a call, or, when it does, one of up to ``RSS_WINDOWS`` windows in all
   (a one-off step is not a leak). It catches a leak in native code, which tracemalloc cannot see.

A device-timed SUT (its infer() is untimed: the device clock times ``run_window``) is held to the
growth bounds only, over ``DEVICE_CALLS`` calls.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import numpy as np

from ..sut import Timing
from .subject import Failed, Subject, calling

WARMUP_CALLS = 200
CALLS = 2000
MIN_CALLS = 200
DEVICE_WARMUP_CALLS, DEVICE_CALLS = 20, 200
BUDGET_S = 3.0  # the traced loop is shortened (to no fewer than MIN_CALLS) to last about this
GROWTH_CONSTANT = 8 * 1024  # bytes the traced heap may grow whatever the call count
GROWTH_PER_CALL = 1  # bytes a call, on average, beyond the constant
REBIND_CALLS = 3  # calls that must each bind a new array to the same attribute
TRANSIENT_CALLS = 100  # calls whose peak-over-current is reported (median)
RSS_CALLS = 20_000
RSS_HALF_S = 1.0
RSS_MIN_CALLS = 100  # fewer fit in RSS_HALF_S: the RSS signal is not measured
RSS_CONSTANT = 1 << 20
RSS_PER_CALL = 32
RSS_WINDOWS = 3  # windows measured at most: a leak exceeds the bound in every one


def _arrays(sut) -> dict[str, np.ndarray]:
    return {k: v for k, v in getattr(sut, "__dict__", {}).items() if isinstance(v, np.ndarray)}


def rebound(sut, infer) -> list[str]:
    """Attributes of ``sut`` bound by each of REBIND_CALLS infer() calls to an array never bound
    there before (a SUT that alternates between buffers it made in load() is not counted)."""
    seen = {k: [v] for k, v in _arrays(sut).items()}  # held: a freed array's id may come back
    changed = None
    for _ in range(REBIND_CALLS):
        infer()
        new = set()
        for k, v in _arrays(sut).items():
            if not any(v is old for old in seen.setdefault(k, [])):
                new.add(k)
                seen[k].append(v)
        changed = new if changed is None else changed & new
    return sorted(changed or ())


def _transient(infer) -> int:
    """The median bytes allocated and freed again within one call (reported, not judged)."""
    peaks = []
    traced, reset = tracemalloc.get_traced_memory, tracemalloc.reset_peak
    for _ in range(TRANSIENT_CALLS):
        current = traced()[0]
        reset()
        infer()
        peaks.append(traced()[1] - current)
    return int(np.median(peaks))


def _traced_growth(infer, warmup: int, calls: int) -> tuple[int, int]:
    """(growth of the traced heap over ``calls`` calls, transient bytes a call), gc paused."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for _ in range(warmup):  # what the first traced calls create once (a cache) is not growth
            infer()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            infer()
        growth = tracemalloc.get_traced_memory()[0] - before
        return growth, _transient(infer)
    finally:
        if started:
            tracemalloc.stop()


def _rss_growth(infer, calls: int, bound: int) -> int:
    """RSS growth over ``calls`` calls after as many more; a window over ``bound`` is measured
    again, up to RSS_WINDOWS in all, and the least growth counts: a leak grows in every window,
    a one-off step (an allocator arena, pages a runtime touches once) in one."""
    import psutil

    process = psutil.Process()
    for _ in range(calls):
        infer()
    growths = []
    for _ in range(RSS_WINDOWS):
        before = process.memory_info().rss
        for _ in range(calls):
            infer()
        growths.append(process.memory_info().rss - before)
        if growths[-1] <= bound:
            break
    return min(growths)


def no_allocation_growth(subject: Subject) -> tuple[str, dict[str, Any]]:
    sut = subject.loaded()
    with calling("input_spec()"):
        sample = subject.samples(sut.input_spec(), 1)[0]
    with calling("prepare()"):
        sut.prepare(sample)
    device = sut.timing is Timing.DEVICE
    warmup, most = (DEVICE_WARMUP_CALLS, DEVICE_CALLS) if device else (WARMUP_CALLS, CALLS)
    infer = sut.infer
    detail: dict[str, Any] = {}
    gc.collect()
    paused = gc.isenabled()
    gc.disable()
    try:
        with calling("infer()"):
            start = time.perf_counter_ns()
            for _ in range(warmup):
                infer()
            per_ns = max((time.perf_counter_ns() - start) / warmup, 1.0)
            if not device:
                names = rebound(sut, infer)
                if names:
                    raise Failed(f"infer() binds a new numpy array to self.{names[0]} on every "
                                 "call: it allocates in the timed call; allocate the buffer once "
                                 "in load() and write into it (np.copyto, out=..., [...] =)")
            # tracing makes each call slower: budget for about twice the untraced time
            calls = int(min(most, max(MIN_CALLS, BUDGET_S * 1e9 / (2 * per_ns))))
            growth, transient = _traced_growth(infer, warmup // 4, calls)
            bound = GROWTH_CONSTANT + GROWTH_PER_CALL * calls
            detail.update(calls=calls, heap_growth_bytes=growth, heap_bound_bytes=bound,
                          transient_bytes_per_call=transient)
            if growth > bound:
                raise Failed(f"the Python heap grew by {growth:,} bytes over {calls:,} infer() "
                             f"calls ({growth / calls:.1f} bytes a call; the bound is "
                             f"{GROWTH_CONSTANT:,} + {GROWTH_PER_CALL} byte a call): infer() "
                             "keeps something from every call", detail)
            rss_calls = int(min(RSS_CALLS, RSS_HALF_S * 1e9 / per_ns))
            if rss_calls >= RSS_MIN_CALLS:
                rss_bound = RSS_CONSTANT + RSS_PER_CALL * rss_calls
                rss = _rss_growth(infer, rss_calls, rss_bound)
                detail.update(rss_calls=rss_calls, rss_growth_bytes=rss,
                              rss_bound_bytes=rss_bound)
                if rss > rss_bound:
                    raise Failed(f"resident memory grew by {rss:,} bytes or more in each of "
                                 f"{RSS_WINDOWS} windows of {rss_calls:,} infer() calls after a "
                                 f"first {rss_calls:,} (the bound is "
                                 f"{RSS_CONSTANT:,} + {RSS_PER_CALL} bytes a call): a leak, "
                                 "perhaps in native code", detail)
    finally:
        if paused:
            gc.enable()
    rss_text = (f", RSS +{detail['rss_growth_bytes']:,} B over {detail['rss_calls']:,}"
                if "rss_calls" in detail else ", RSS not measured (infer() too slow)")
    return (f"heap +{growth:,} B over {calls:,} calls (bound {bound:,} B){rss_text}; "
            f"{transient:,} B transient a call", detail)
