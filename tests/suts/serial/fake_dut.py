"""A scripted MLPerf Tiny DUT on a real pseudo-terminal (``FakeDUT``), shared by the serial tests:
each reply and fault is written by a thread on the master side of a pty pair (a flood by a child
process writing to it), and the host side opens the slave with pyserial, as it would a board."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
import tty

import serial
from tinyharness.suts.serial.protocol import WRAP, DUTLink


FLOODS = {  # what a flooding device writes, over and over
    "bytes": b"A" * 4096,  # no newline ever
    "lines": b"m-chatter-0123456789\r\n" * 128,  # short lines, never m-ready
    "ready": b"m-ready\r\n" * 256,  # an m-ready for every command, and more
    "blank": b"\r\n" * 1024,  # empty lines
}

FLOOD_CODE = "import os, sys\nb = bytes.fromhex(sys.argv[1])\nwhile True:\n    os.write(1, b)\n"


class FakeDUT:
    """A scripted MLPerf Tiny DUT on the master side of a pty pair (raw mode); ``port`` is the slave.

    A simulated microsecond clock advances ``us_per_inference`` per inference. ``faults`` maps a
    command predicate to an action, used once each: ``drop`` (no reply at all), ``error``
    (``e-[...]``), ``garble`` (the hex payload corrupted, as lost UART bytes), ``no-ready``
    (reply without ``m-ready``), ``delay:S`` (``m-ready`` S seconds late), ``disconnect``,
    ``flood:KIND`` (no reply: from then on a child process writes :data:`FLOODS` ``[KIND]`` over
    and over as fast as the pty takes it, and the device answers nothing; a process, so that the
    flood never waits on this one's GIL), or a function giving the command as
    the device misread it.
    """

    def __init__(self, model="kws01", name="FakeVendor", banner=True, mode="performance",
                 us_per_inference=2000, clock_us=1_000_000, results=None, trailing_comma=False,
                 stray_after_ready=False, echo_done_early=False):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.model, self.name, self.mode = model, name, mode
        self.us_per_inference, self.clock_us = us_per_inference, clock_us
        self.results = results or (lambda data: [0.5] + [0.0] * 11)
        self.trailing_comma, self.stray_after_ready = trailing_comma, stray_after_ready
        self.echo_done_early = echo_done_early
        self.faults: list[tuple] = []
        self.commands: list[str] = []
        self.buffer = bytearray()
        self.expected = 0
        self._stop = threading.Event()
        self._closed = False
        self.flooder: subprocess.Popen | None = None
        if banner:  # pyserial flushes the input when it opens the port: only a reset shows this
            self.boot()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def boot(self):
        """Print the boot banner (as a board that resets when the port opens)."""
        self.emit(f"m-timestamp-mode-{self.mode}")
        if self.mode == "performance":
            self.emit(f"m-lap-us-{self.clock_us}")
        self.emit("m-init-done", "m-ready")

    def fault(self, predicate, action):
        self.faults.append((predicate, action))
        return self

    def emit(self, *lines):
        if not self._closed:
            os.write(self.master, b"".join(ln.encode() + b"\r\n" for ln in lines))

    def _serve(self):
        pending = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                pending += os.read(self.master, 4096)
            except OSError:
                return
            while b"%" in pending:
                raw, _, rest = bytes(pending).partition(b"%")
                pending = bytearray(rest)
                self._handle(raw.decode("ascii", "replace"))
                if self._closed:
                    return

    def _take_fault(self, command):
        for i, (predicate, action) in enumerate(self.faults):
            if predicate(command):
                del self.faults[i]
                return action
        return None

    def _handle(self, command):
        self.commands.append(command)
        if self.flooder is not None:  # a flooding device answers nothing
            return
        action = self._take_fault(command)
        if action == "drop":
            return
        if isinstance(action, str) and action.startswith("flood:"):
            self.flooder = subprocess.Popen(
                [sys.executable, "-S", "-c", FLOOD_CODE, FLOODS[action[6:]].hex()],
                stdin=subprocess.DEVNULL, stdout=self.master, stderr=subprocess.DEVNULL)
            return
        if action == "disconnect":
            self.close()
            return
        if action == "garble" and command.startswith("db "):
            command = command[:-1]  # one hex digit lost: odd count
        if callable(action):  # the command as the device misread it (a valid-looking corruption)
            command, action = action(command), None
        lines = ["e-[Injected error]"] if action == "error" else self._reply(command)
        if action == "no-ready":
            self.emit(*lines)
            return
        if action and action.startswith("delay:"):
            self.emit(*lines)
            time.sleep(float(action.split(":")[1]))
            self.emit("m-ready")
            return
        self.emit(*lines, "m-ready")
        if self.stray_after_ready:
            self.emit("debug: after ready")

    def _reply(self, command):
        tokens = command.split(" ")
        if command == "name":
            return [f"m-name-dut-[{self.name}]"]
        if command == "profile":
            return ["m-profile-[ULPMark for tinyML Firmware V0.0.1]", f"m-model-[{self.model}]"]
        if command == "timestamp":
            return [f"m-lap-us-{self.clock_us}"] if self.mode == "performance" else []
        if tokens[:2] == ["db", "load"]:
            self.expected, self.buffer = int(tokens[2]), bytearray()
            return [f"m-[Expecting {self.expected} bytes]"]
        if tokens[:2] == ["db", "print"]:
            n = self.expected
            return ["m-buffer-" + self.buffer[i:min(i + 8, n)].hex("-") for i in range(0, n, 8)]
        if tokens[0] == "db":
            digits = tokens[1]
            if len(digits) % 2:
                return ["e-[Insufficent number of hex digits]"]
            self.buffer += bytes.fromhex(digits)
            done = len(self.buffer) >= self.expected
            if self.echo_done_early and len(self.buffer) < self.expected:
                return ["m-load-done"]
            return ["m-load-done"] if done else []
        if tokens[0] == "infer":
            n, w = int(tokens[1]), int(tokens[2])
            self.clock_us += w * self.us_per_inference
            out = [f"m-warmup-start-{w}", "m-warmup-done", f"m-infer-start-{n}",
                   f"m-lap-us-{self.clock_us % WRAP}"]
            self.clock_us += n * self.us_per_inference
            out += [f"m-lap-us-{self.clock_us % WRAP}", "m-infer-done"]
            values = ",".join(f"{v:0.3f}" for v in self.results(bytes(self.buffer)))
            return out + [f"m-results-[{values}{',' if self.trailing_comma else ''}]"]
        return [f"e-[Unknown command: {tokens[0]}]"]

    def close(self):
        if not self._closed:
            self._closed = True
            os.close(self.master)

    def stop(self):
        self._stop.set()
        if threading.current_thread() is not self.thread:
            self.thread.join(2)
        if self.flooder is not None:  # our own child, by its handle
            self.flooder.kill()
            self.flooder.wait(10)
        self.close()
        os.close(self.slave)


def fake_duts():
    """Behind the ``dut`` fixture (shared with the other test modules): ``make(**kwargs)`` gives
    a FakeDUT; all are stopped at teardown."""
    made = []

    def make(**kwargs):
        made.append(FakeDUT(**kwargs))
        return made[-1]

    yield make
    for d in made:
        d.stop()


def link_to(peer, timeout=1.0, **kwargs):
    port = serial.Serial(peer.port, 115200, timeout=timeout)
    return DUTLink(port, line_timeout=timeout, **kwargs)
