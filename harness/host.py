"""The host's state around a measurement: load average, CPU frequency and governor, and how much
CPU other processes used, read before and after a pass with nothing running in between.

The host figures come from a :class:`HostSampler`, started before a pass and stopped after it: it
reads counters twice and runs nothing in between (no thread), so it costs nothing inside the timed
region. Other processes' CPU is the system-wide busy time (``psutil.cpu_times``: everything but
idle and iowait, steal included, as ``psutil.cpu_percent`` counts it) less this process's own user
and system time (``psutil.Process().cpu_times``). It counts processes that started or exited during
the run, the kernel's own work, and this process's children (other processes, e.g. a SUT's server).
In a container ``/proc/stat`` and ``os.cpu_count()`` usually describe the whole host: the figure is
then the host's, neighbours included.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CPU_SYSFS = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class HostSample:
    """What the host did between :meth:`HostSampler.start` and :meth:`HostSampler.stop`."""

    sampled_s: float  # wall time between start and stop
    cpu_count: int | None
    load1_before: float | None  # 1-minute load average; None where the OS has none
    load1_after: float | None
    governor: str | None  # one governor, or the distinct ones joined by "," when CPUs differ
    cpu_mhz_before: float | None  # mean scaling_cur_freq over the CPUs (else psutil's), MHz
    cpu_mhz_after: float | None
    own_cpu_s: float | None  # this process's user + system CPU seconds
    other_cpu_s: float | None  # everything else's busy CPU seconds (never below 0)
    notes: tuple[str, ...] = ()

    @property
    def other_cpu_fraction(self) -> float | None:
        """Other processes' CPU seconds over (wall time x cores)."""
        if self.other_cpu_s is None or not self.cpu_count or self.sampled_s <= 0:
            return None
        return self.other_cpu_s / (self.sampled_s * self.cpu_count)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def read_governor(cpu_dir: Path = CPU_SYSFS) -> str | None:
    """The CPUs' ``scaling_governor``: one name, the distinct names joined by "," when they differ,
    or None where cpufreq is absent (many VMs and containers)."""
    found = {g for p in sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_governor"))
             if (g := _read(p)) is not None}
    return ",".join(sorted(found)) if found else None


def read_cpu_mhz(cpu_dir: Path = CPU_SYSFS) -> float | None:
    """The mean of the CPUs' ``scaling_cur_freq`` (kHz) in MHz, or None where none is readable."""
    khz = []
    for path in sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            khz.append(int(_read(path) or ""))
        except ValueError:  # unreadable, empty or not a number: that CPU is left out
            continue
    return round(sum(khz) / len(khz) / 1000.0, 1) if khz else None


def psutil_cpu_mhz() -> float | None:
    """psutil's current CPU frequency in MHz, or None. Where cpufreq's sysfs files are absent (many
    VMs and containers, where :func:`read_cpu_mhz` finds none) it reads /proc/cpuinfo's 'cpu MHz';
    on macOS and Windows it is the OS's (nominal) figure. Any error is 'unknown'."""
    try:
        import psutil

        freq = psutil.cpu_freq()
    except Exception:  # noqa: BLE001 - ImportError, NotImplementedError, OSError, a psutil bug
        return None
    current = getattr(freq, "current", None)
    return round(float(current), 1) if current and current > 0 else None


def read_load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):  # Windows has none (psutil's emulation starts a thread)
        return None


def _psutil_readers() -> tuple[Callable[[], float], Callable[[], float]] | None:
    """System-wide busy CPU seconds and this process's CPU seconds, or None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process(os.getpid())

    def system_busy_s() -> float:
        t = psutil.cpu_times()
        total = sum(t)
        # On Linux guest time is already inside user and nice (psutil's cpu_percent does the same)
        total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
        return total - t.idle - getattr(t, "iowait", 0.0)

    def own_s() -> float:
        t = me.cpu_times()
        return t.user + t.system

    return system_busy_s, own_s


class HostSampler:
    """Host figures around a pass, without a thread: :meth:`start` before the pass, :meth:`stop`
    after it; each reads a few counters and files (well under a millisecond to a few ms), nothing
    runs in between.

    The readers can be replaced (tests): ``system_busy_s`` and ``own_cpu_s`` return cumulative CPU
    seconds, ``load1`` the 1-minute load average, ``clock`` seconds; ``cpu_dir`` is where the
    ``cpu*/cpufreq`` folders are. The frequency is their mean ``scaling_cur_freq``; where the real
    ``/sys/devices/system/cpu`` has none, psutil's figure (:func:`psutil_cpu_mhz`) or what
    ``cpu_mhz_fallback`` returns; a folder given as ``cpu_dir`` (a test) has no fallback unless one
    is given.
    """

    def __init__(self, *, cpu_dir: Path = CPU_SYSFS, cpu_count: int | None = None,
                 system_busy_s: Callable[[], float] | None = None,
                 own_cpu_s: Callable[[], float] | None = None,
                 load1: Callable[[], float | None] = read_load1,
                 clock: Callable[[], float] = time.perf_counter,
                 cpu_mhz_fallback: Callable[[], float | None] | None = None) -> None:
        self.cpu_dir, self.load1, self.clock = Path(cpu_dir), load1, clock
        if cpu_mhz_fallback is None and self.cpu_dir == CPU_SYSFS:
            cpu_mhz_fallback = psutil_cpu_mhz
        self.cpu_mhz_fallback = cpu_mhz_fallback
        self.cpu_count = cpu_count if cpu_count is not None else os.cpu_count()
        self.notes: tuple[str, ...] = ()
        if system_busy_s is None or own_cpu_s is None:
            readers = _psutil_readers()
            if readers is None:
                self.notes = ("psutil is not installed: other processes' CPU use was not measured",)
            else:
                system_busy_s = system_busy_s or readers[0]
                own_cpu_s = own_cpu_s or readers[1]
        self.system_busy_s, self.own_cpu_s = system_busy_s, own_cpu_s
        self._start: tuple | None = None

    def _mhz(self) -> float | None:
        mhz = read_cpu_mhz(self.cpu_dir)
        if mhz is None and self.cpu_mhz_fallback is not None:
            mhz = self.cpu_mhz_fallback()
        return mhz

    def _cpu(self) -> tuple[float | None, float | None]:
        if self.system_busy_s is None or self.own_cpu_s is None:
            return None, None
        return self.system_busy_s(), self.own_cpu_s()

    def start(self) -> None:
        """Take the 'before' figures; call it just before the pass (outside any timed region)."""
        governor, mhz, load = read_governor(self.cpu_dir), self._mhz(), self.load1()
        busy, own = self._cpu()
        self._start = (governor, mhz, load, busy, own, self.clock())  # the clock last: the interval
        # starts when the reading is done

    def stop(self) -> HostSample:
        """Take the 'after' figures, just after the pass, and return the interval's sample."""
        if self._start is None:
            raise RuntimeError("HostSampler.stop() without start()")
        now = self.clock()  # the clock first: the interval ends when the pass did
        busy, own = self._cpu()
        governor, mhz0, load0, busy0, own0, t0 = self._start
        self._start = None
        own_s = other_s = None
        if busy is not None and busy0 is not None:
            own_s = max(0.0, own - own0)
            other_s = max(0.0, (busy - busy0) - own_s)  # tick-rounded counters can cross: not < 0
        return HostSample(sampled_s=max(0.0, now - t0), cpu_count=self.cpu_count,
                          load1_before=load0, load1_after=self.load1(), governor=governor,
                          cpu_mhz_before=mhz0, cpu_mhz_after=self._mhz(),
                          own_cpu_s=own_s, other_cpu_s=other_s, notes=self.notes)
