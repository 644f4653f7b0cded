"""The few CUDA runtime calls the ``tensorrt-gpu`` SUT makes, through NVIDIA's own Python
bindings (``cuda-bindings``, the package behind ``cuda-python``).

Why those: they are NVIDIA's maintained binding of the CUDA runtime API, used by TensorRT's own
Python samples, a 7.6 MB wheel whose only dependency is ``cuda-pathfinder``, with the runtime
linked statically (only the driver is needed). PyCUDA compiles at install time against a CUDA
toolkit; CuPy is a 100 MB+ wheel; PyTorch is gigabytes. Every call returns ``(error, value...)``:
:func:`check` turns an error into a one-line SUTError naming the call.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyharness.errors import UsageError
from tinyharness.sut import SUTError

NO_GPU = "no NVIDIA GPU (nvidia-smi / CUDA driver not found)"
# cudaGetDeviceCount's errors that mean "no usable GPU here" rather than a broken call.
_ABSENT = {"cudaErrorNoDevice", "cudaErrorInsufficientDriver", "cudaErrorInitializationError",
           "cudaErrorSystemDriverMismatch", "cudaErrorCompatNotSupportedOnDevice"}


def import_cudart():
    """``cuda.bindings.runtime`` (cuda-bindings, 12.8+), else cuda-python's older ``cuda.cudart``;
    ImportError when neither is installed."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


def _error_text(cudart, err) -> str:
    name = getattr(err, "name", str(err))
    try:
        text = cudart.cudaGetErrorString(err)[1].decode(errors="replace")
    except Exception:  # the message is a courtesy; the name says it already
        text = ""
    return f"{name} ({text})" if text else name


def check(cudart, result: Any, what: str):
    """The value(s) of a binding call's ``(error, value...)`` result; SUTError naming ``what``
    when the error is not cudaSuccess."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise SUTError(f"{what} failed: {_error_text(cudart, err)}")
    return rest[0] if len(rest) == 1 else tuple(rest)


def _version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"  # 12040 -> "12.4"


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: str  # "9.0"
    memory_mib: int
    driver_cuda: str  # the newest CUDA the driver supports, "12.4"
    runtime_cuda: str  # the CUDA runtime the bindings link, "12.9"


def open_device(cudart, index: int) -> DeviceInfo:
    """Make device ``index`` current and describe it. No GPU or driver, or an index beyond the
    devices present, is a one-line UsageError (the machine, not the SUT, is wrong)."""
    result = cudart.cudaGetDeviceCount()
    err = result[0]
    if err != cudart.cudaError_t.cudaSuccess:
        if getattr(err, "name", "") in _ABSENT:
            raise UsageError(f"SUT 'tensorrt-gpu' needs an NVIDIA GPU: {NO_GPU}: "
                             f"cudaGetDeviceCount: {_error_text(cudart, err)}")
        check(cudart, result, "cudaGetDeviceCount")
    count = result[1]
    if index >= count:
        raise UsageError(f"--sut-option device={index}: this machine has {count} CUDA "
                         f"device(s): expected 0 to {count - 1}")
    check(cudart, cudart.cudaSetDevice(index), f"cudaSetDevice({index})")
    props = check(cudart, cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    driver = check(cudart, cudart.cudaDriverGetVersion(), "cudaDriverGetVersion")
    runtime = check(cudart, cudart.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")
    return DeviceInfo(index, name.split("\0")[0].strip(), f"{props.major}.{props.minor}",
                      int(props.totalGlobalMem) >> 20, _version(driver), _version(runtime))


class Buffers:
    """Pinned host and device buffers, one CUDA stream and two timing events, all released by
    :meth:`free` (idempotent). Host buffers are numpy arrays over page-locked memory, so a copy
    to or from the device is a DMA without a staging copy."""

    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self._host: list[int] = []
        self._device: list[int] = []
        self.stream = check(cudart, cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
                            "cudaStreamCreateWithFlags")
        self.stream_handle = int(self.stream)  # what IExecutionContext.execute_async_v3 takes
        self.start = check(cudart, cudart.cudaEventCreate(), "cudaEventCreate")
        self.stop = check(cudart, cudart.cudaEventCreate(), "cudaEventCreate")

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        ptr = check(self.cudart, self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})")
        self._host.append(ptr)
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))
        return raw[:int(np.prod(shape)) * np.dtype(dtype).itemsize].view(dtype).reshape(shape)

    def device(self, nbytes: int) -> int:
        ptr = check(self.cudart, self.cudart.cudaMalloc(max(1, nbytes)), f"cudaMalloc({nbytes})")
        self._device.append(ptr)
        return ptr

    def to_device(self, dst: int, src: np.ndarray, nbytes: int) -> None:
        """Enqueue a host-to-device copy of ``nbytes`` from a pinned array."""
        cudart = self.cudart
        check(cudart, cudart.cudaMemcpyAsync(dst, src.ctypes.data, nbytes,
                                             cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                             self.stream), "cudaMemcpyAsync(host to device)")

    def to_host(self, dst: np.ndarray, src: int, nbytes: int) -> None:
        """Enqueue a device-to-host copy of ``nbytes`` into a pinned array."""
        cudart = self.cudart
        check(cudart, cudart.cudaMemcpyAsync(dst.ctypes.data, src, nbytes,
                                             cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                                             self.stream), "cudaMemcpyAsync(device to host)")

    def synchronize(self) -> None:
        check(self.cudart, self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def elapsed_ms(self) -> float:
        """GPU time between the ``start`` and ``stop`` events (both completed)."""
        return float(check(self.cudart, self.cudart.cudaEventElapsedTime(self.start, self.stop),
                           "cudaEventElapsedTime"))

    def free(self) -> None:
        cudart = self.cudart
        for ptr in self._device:
            cudart.cudaFree(ptr)
        for ptr in self._host:
            cudart.cudaFreeHost(ptr)
        self._device, self._host = [], []
        for event in (self.start, self.stop):
            if event is not None:
                cudart.cudaEventDestroy(event)
        if self.stream is not None:
            cudart.cudaStreamDestroy(self.stream)
        self.start = self.stop = self.stream = None
