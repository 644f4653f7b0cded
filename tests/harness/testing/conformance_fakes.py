"""SUTs for the conformance kit's own tests: one that keeps the whole contract, and one for each
way of breaking it that the kit must catch. Module-level classes, so that the registration rule
can import them in a fresh process (as ``testing.conformance_fakes``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyharness.sut import SUT, SUTDescription, TensorSpec
from tinyharness.sut_config import HostConfig, option, positive_float

INPUT = TensorSpec("input", (1, 8, 8, 1), "float32")
OUTPUT = TensorSpec("scores", (1, 10), "float32")


@dataclass(frozen=True)
class LinearConfig(HostConfig):
    gain: float = option("multiplies every score (default 1)", positive_float, 1.0)


class LinearSUT(SUT):
    """A real model, a fixed linear layer over the digits01 pixels, that keeps the contract:
    buffers allocated in load(), infer() writes into them, output() copies, close() twice is fine."""

    name = "fake-linear"
    summary = "a linear layer in numpy (conformance kit tests)"
    runtime = "numpy"
    model_formats = ("onnx",)
    config_class = LinearConfig
    seed = 7

    def load(self, model: Path) -> None:
        self.check_format(Path(model))
        weights = np.random.default_rng(self.seed).standard_normal((64, 10)).astype(np.float32)
        self.w = weights * np.float32(self.config.gain / 64)
        self.x = np.zeros(INPUT.shape, np.float32)
        self.flat = self.x.reshape(1, 64)  # a view: prepare() fills x, infer() reads it
        self.y = np.zeros(OUTPUT.shape, np.float32)

    def input_spec(self) -> TensorSpec:
        return INPUT

    def output_spec(self) -> TensorSpec:
        return OUTPUT

    def prepare(self, sample: np.ndarray) -> None:
        np.copyto(self.x, sample)

    def infer(self) -> None:
        np.matmul(self.flat, self.w, out=self.y)

    def output(self) -> np.ndarray:
        return self.y.copy()

    def describe(self) -> SUTDescription:
        return SUTDescription(self.name, "numpy", np.__version__, "cpu", "onnx", "float32",
                              self.threads())

    def close(self) -> None:
        self.w = self.x = self.flat = self.y = None


class OtherWeights(LinearSUT):
    """Another model: a reference its outputs do not match."""

    name = "fake-other-weights"
    seed = 8


class AllocatingSUT(LinearSUT):
    """infer() makes a new output array on every call."""

    name = "fake-allocating"

    def infer(self) -> None:
        self.y = np.matmul(self.flat, self.w)


class NativeLeakSUT(LinearSUT):
    """infer() leaks a fresh page from mmap every 8th call (512 B a call on average), touched so
    it counts in RSS: invisible to tracemalloc, and never absorbed by malloc's free lists (a
    malloc'd leak can be served from memory earlier tests freed, and RSS does not move)."""

    name = "fake-native-leak"

    def load(self, model: Path) -> None:
        import ctypes

        super().load(model)
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        self.calls = 0

    def infer(self) -> None:
        import ctypes
        import mmap

        self.calls += 1
        if self.calls % 8 == 0:
            page = self.mmap(None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE,
                             mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
            ctypes.memset(page, 1, 1)
        np.matmul(self.flat, self.w, out=self.y)


class DoubleBufferSUT(LinearSUT):
    """infer() alternates between two output buffers made in load(): no allocation."""

    name = "fake-double-buffer"

    def load(self, model: Path) -> None:
        super().load(model)
        self.buffers, self.calls = (self.y, self.y.copy()), 0

    def infer(self) -> None:
        self.calls += 1
        self.y = self.buffers[self.calls % 2]
        np.matmul(self.flat, self.w, out=self.y)


class HoardingSUT(LinearSUT):
    """infer() keeps a record of every call (a list that grows for the whole run)."""

    name = "fake-hoarding"

    def load(self, model: Path) -> None:
        super().load(model)
        self.history: list[np.ndarray] = []

    def infer(self) -> None:
        np.matmul(self.flat, self.w, out=self.y)
        self.history.append(self.y[0, :2].copy())


class WrongShapeSUT(LinearSUT):
    """Declares 12 scores, returns the model's 10."""

    name = "fake-wrong-shape"

    def output_spec(self) -> TensorSpec:
        return TensorSpec("scores", (1, 12), "float32")


class OwnBufferSUT(LinearSUT):
    """output() hands out the SUT's own buffer instead of a copy."""

    name = "fake-own-buffer"

    def output(self) -> np.ndarray:
        return self.y


class FutureStampsSUT(LinearSUT):
    """issue_offline() runs every sample but stamps each completion a second in the future."""

    name = "fake-future-stamps"

    def issue_offline(self, samples, completions) -> None:
        super().issue_offline(samples, completions)
        completions += 1_000_000_000


class CloseTwiceSUT(LinearSUT):
    """close() raises when called a second time."""

    name = "fake-close-twice"
    closed = False

    def close(self) -> None:
        if self.closed:
            raise RuntimeError("the session is already closed")
        self.closed = True
        super().close()


def level(text: str) -> str:
    if text not in ("low", "high"):
        raise KeyError(text)  # not the ValueError SUTConfig turns into a one-line message
    return text


@dataclass(frozen=True)
class LeakyOptionConfig(LinearConfig):
    level: str = option("low or high", level, "low")


class BadOptionSUT(LinearSUT):
    """An option whose parser lets a KeyError out instead of a one-line UsageError."""

    name = "fake-bad-option"
    config_class = LeakyOptionConfig


class SlowSUT(LinearSUT):
    """Takes its time: timing-ratio has something to measure."""

    name = "fake-slow"

    def infer(self) -> None:
        end = time.perf_counter_ns() + 20_000
        while time.perf_counter_ns() < end:
            pass
        np.matmul(self.flat, self.w, out=self.y)
