"""A microcontroller running the MLPerf Tiny / EEMBC firmware, driven over its serial port.

The model lives on the device, so no model file is resolved (``needs_model = False``). Latency comes
from the device's own clock (``timing = "device"``): the harness calls :meth:`SerialSUT.run_window`,
which sends ``infer N W`` and returns (T1 - T0) of the two ``m-lap-us`` stamps. Inputs are the raw
sample files' bytes; the firmware applies its own transform (shift or quantization) before
``th_infer``. Accuracy sends ``infer 1 0`` per sample and parses ``m-results-[...]``; for AD the
single value is the DUT's own window MSE.

Every upload is read back with ``db print`` and compared (``verify=1``, the default), and uploaded
again when the device holds other bytes; ``verify=0`` opts out, is recorded in ``describe()`` and
the run's SUT configuration, and makes the run ineligible for the closed division.

The firmware's model cannot be read back from the device: the DUT reports only its model id
(``m-model-[kws01]``). ``--sut-option model_file=PATH`` names the model file the firmware was built
from; it is hashed when the SUT loads (never sent) and ``describe()`` reports it (``model_file``,
``model_sha256``, ``model_size``), which the run records as its model. The closed division requires
it, and requires it to be a reference model of the benchmark.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
from tinyharness.errors import UsageError
from tinyharness.fileio import regular_file, sha256_bounded
from tinyharness.sut import SUT, SUTDescription, SUTError, TensorSpec, Timing

from .config import PORT_HINT, SerialConfig
from .ports import identify
from .protocol import DUTError, DUTLink, LapClock, LinkStats

FAST_BAUD = {"ad01": 921600}  # the AD reference firmware runs its UART at 921 600 baud
DEFAULT_BAUD = 115200
MARGIN_S = 5.0  # added to every computed infer timeout


class SerialSUT(SUT):
    name = "serial"
    summary = "a microcontroller with the MLPerf Tiny firmware on a serial port (device-timed)"
    runtime = "pyserial"
    extra = ""
    model_formats = ("tflite",)  # display only: the model is flashed on the device
    devices = ("dut",)
    scenarios = ("single-stream",)
    timing = Timing.DEVICE
    needs_model = False
    config_class = SerialConfig

    _port = None
    _link: DUTLink | None = None
    _model_file: tuple[str, str, int] | None = None
    _stats = LinkStats()

    # -- life cycle ---------------------------------------------------------------------------
    def load(self, model: Path | None) -> None:
        c = self.config
        self._model_file = None  # (path, sha256, size) of the file the firmware was built from
        if c.model_file is not None:  # hashed first: a file that went away fails before the port opens
            self._model_file = self._hash_model(Path(c.model_file))
        self._connect(c.port, c.baud)

    @staticmethod
    def _hash_model(path: Path) -> tuple[str, str, int]:
        size = regular_file(path, "model file")
        return str(path), sha256_bounded(path, "model file"), size

    def _connect(self, port_name: str, baud: int | None) -> None:
        """Open the port, identify the firmware (banner, name, profile, timestamp mode) and check
        that it runs this benchmark's model in a performance build."""
        import serial

        c, bench = self.config, self.benchmark
        if bench is None:
            raise UsageError(f"SUT {self.name!r} needs the benchmark its DUT runs (--benchmark ID)")
        self._port_name = port_name
        self._baud = baud or FAST_BAUD.get(bench.id, DEFAULT_BAUD)
        try:
            self._port = serial.serial_for_url(self._port_name, baudrate=self._baud,
                                               timeout=c.timeout, write_timeout=c.timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise UsageError(f"cannot open serial port {self._port_name}: {exc}") from None
        self._link = DUTLink(self._port, c.timeout, c.chunk, c.retries, c.verify)
        try:
            self.info = identify(self._link)
        except DUTError as exc:
            raise DUTError(f"no MLPerf Tiny DUT answered on {self._port_name} at {self._baud} baud "
                           f"({exc}); check the port, the baud rate and that the firmware prints "
                           "to this UART", retryable=False) from exc
        info = self.info
        if info.model is None:
            raise DUTError("the device did not report its model (no m-model-[...] line)", "profile")
        if info.model != bench.id:
            raise UsageError(f"the DUT on {self._port_name} runs model {info.model!r}, but the "
                             f"benchmark is {bench.id!r}: flash the {bench.id} firmware "
                             "or pick the matching --benchmark")
        if info.timestamp_mode != "performance":
            raise UsageError(f"the DUT on {self._port_name} runs energy-mode firmware "
                             "(m-timestamp-mode-energy: its timestamps are GPIO pulses for an "
                             "energy monitor, not m-lap-us lines), which cannot do performance or "
                             "accuracy runs over the serial port; flash the performance build")
        # The raw sample file's layout: the DUT transforms it itself (th_load_tensor).
        self._raw = (bench.sample_dtype, bench.sample_bytes)
        self._output_count = bench.output_count
        self._clock = LapClock()
        self._estimate_s: float | None = None  # seconds per inference, for infer timeouts
        self._out = np.zeros(self._output_count, dtype=np.float32)
        self._uploads = 0  # samples handed to prepare(), to name one whose upload failed

    def input_spec(self) -> TensorSpec:
        # Empty shape and dtype: the raw dataset sample, unchanged (the DUT transforms it itself).
        return TensorSpec(name="db", shape=(), dtype="")

    def output_spec(self) -> TensorSpec:
        return TensorSpec(name="m-results", shape=(self._output_count,), dtype="float32")

    def prepare(self, sample: np.ndarray) -> None:
        dtype, size = self._raw
        if sample.dtype != np.dtype(dtype) or sample.nbytes != size:
            raise SUTError(f"the serial SUT uploads the raw {size}-byte {dtype} sample file, but "
                           f"was handed {sample.nbytes} bytes of {sample.dtype}: the harness "
                           "transformed the sample (an empty-dtype input spec must get the "
                           "'identity' transform)")
        data = np.ascontiguousarray(sample).tobytes()
        self._uploads += 1
        try:
            self._link.upload(data)
        except DUTError as exc:  # retries spent: name the sample (the harness gives no file name)
            digest = hashlib.sha256(data).hexdigest()[:16]
            raise DUTError(f"sample #{self._uploads} ({len(data)} bytes, sha256 {digest}…): {exc}",
                           retryable=False) from exc

    def _timeout(self, count: int) -> float:
        base = self.config.infer_timeout
        if self._estimate_s is None:
            return base
        return max(base, count * self._estimate_s * 1.5 + MARGIN_S)

    def _learn(self, count: int, device_us: int | None, host_s: float) -> None:
        per = host_s / count
        if device_us is not None:
            per = max(per, device_us / 1e6 / count)
        self._estimate_s = per

    def _infer(self, iterations: int, warmup: int):
        """``infer N W``, repeated after a retryable failure (an error reply, a garbled echo, a
        lost ``m-ready``): the sample stays loaded on the DUT, so a repeat is safe."""
        timeout = self._timeout(iterations + warmup)
        return self._link.retrying(lambda: self._link.infer(iterations, warmup, timeout),
                                   attempts=self.config.retries + 1)

    def infer(self) -> None:
        reply = self._infer(1, 0)
        values = reply.results
        if values is None:
            raise DUTError("no m-results-[...] line in the infer response", reply.command,
                           reply.lines[-1])
        if self._output_count and len(values) != self._output_count:
            raise DUTError(f"expected {self._output_count} result values, got {len(values)}",
                           reply.command, next(ln for ln in reply.lines if "m-results" in ln))
        self._out = np.asarray(values, dtype=np.float32)
        try:
            self._learn(1, self._clock.elapsed_us(reply), reply.elapsed_s)
        except DUTError:
            self._learn(1, None, reply.elapsed_s)

    def output(self) -> np.ndarray:
        return self._out.copy()

    def run_window(self, iterations: int, warmup: int) -> int:
        start = time.monotonic()
        reply = self._infer(iterations, warmup)
        elapsed_us = self._clock.elapsed_us(reply)
        self._learn(iterations, elapsed_us, (time.monotonic() - start) * iterations
                    / (iterations + warmup))
        return elapsed_us * 1000

    def describe(self) -> SUTDescription:
        info = self.info
        named = {}
        if self._model_file is not None:
            path, digest, size = self._model_file
            named = {"model_file": path, "model_sha256": digest, "model_size": size}
        return SUTDescription(
            name=self.name, runtime="serial DUT protocol", runtime_version=info.profile or "unknown",
            device=f"{info.name or 'unnamed DUT'} on {self._port_name}", model_format="device",
            precision="device", threads=None,
            extra={"model_id": info.model, **named, "port": self._port_name, "baud": self._baud,
                   "timestamp_mode": info.timestamp_mode, "timestamp_source": self._clock.name,
                   "chunk": self.config.chunk, "verify": self.config.verify,
                   "upload_check": "db print read-back" if self.config.verify else "none (verify=0)",
                   "pyserial": self.runtime_version()})

    def run_stats(self) -> dict[str, Any]:
        """Upload counters (bytes, seconds, restarts, of which read-back seconds and mismatches)
        and the last stray lines seen (each cut to 80 characters), for diagnostics."""
        st = self._link.stats if self._link is not None else self._stats
        return {"uploads": st.uploads, "upload_bytes": st.upload_bytes,
                "upload_s": round(st.upload_s, 6), "upload_restarts": st.upload_restarts,
                "verify_s": round(st.verify_s, 6), "verify_mismatches": st.verify_mismatches,
                "stray_lines": list(st.stray_lines)}

    def close(self) -> None:
        if self._link is not None:
            self._stats = self._link.stats  # still readable after close()
        port, self._port, self._link = self._port, None, None
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

