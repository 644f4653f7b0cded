"""The Edge Impulse Linux runner protocol, client side: start a ``.eim``, say ``hello``, classify.

The protocol, as the runner serves it (Edge Impulse's example-standalone-inferencing-linux,
``source/eim.cpp``) and the reference client speaks it (``edge_impulse_linux.runner``):

- ``./model.eim SOCKET`` binds a Unix stream socket at SOCKET, accepts one connection and serves
  it until it closes; it prints progress to stdout and removes its shared memory on SIGTERM.
- A request is one JSON object with an integer ``id``. The runner frames requests by counting
  braces, so nothing separates them.
- A reply is one JSON object, ``"\\n"``, then a NUL byte. It echoes ``id`` and says ``success``
  (``error`` when false); its keys come sorted and compact (nlohmann::json's ``dump()``).
- ``{"hello": 1}`` first: ``project`` (id, owner, name, deploy_version, ...) and
  ``model_parameters`` (input_features_count, labels, label_count, model_type, sensor, ...), and
  ``features_shm`` (name, elements, type float32) where the runner made a POSIX shared-memory
  segment for the features (``features_shm_error`` where it could not).
- ``{"classify": [features]}``, or ``{"classify_shm": {"elements": N}}`` with the features
  already in the segment: ``result`` (``classification``: label to score) and ``timing``, whole
  milliseconds: ``dsp``, ``classification``, ``anomaly`` (the impulse's own clock), ``json``,
  ``stdin`` and ``msg_handler`` (the runner's parsing, reading and whole handler).

:class:`Runner` owns one started ``.eim``: its process, a private folder (socket, output log),
the connection and the features segment. Every wait is bounded (the start, each reply, the stop)
and a reply is read into a buffer of a fixed maximum size allocated once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyharness.errors import UsageError
from tinyharness.fileio import loads_json
from tinyharness.sut import SUTError

POLL_S = 0.01  # between looks for the socket while the .eim starts
EXIT_WAIT_S = 1.0  # for a runner that closed its socket to be reaped, or to exit once we close
STOP_WAIT_S = 5.0  # after SIGTERM, then after SIGKILL
TAIL_BYTES = 4096  # of the runner's output log, for its last line in an error
TIMING_KEYS = ("dsp", "classification", "anomaly", "json", "stdin", "msg_handler")
IMPULSE_KEYS = ("dsp", "classification", "anomaly")  # the impulse's own time: runtime latency


@dataclass(frozen=True)
class Hello:
    """What the runner says about its model in its ``hello`` reply."""

    features: int  # input_features_count: float32 values per classify
    labels: tuple[str, ...]
    model_type: str  # classification, object_detection, constrained_object_detection, freeform
    project: dict[str, Any]
    parameters: dict[str, Any]  # model_parameters as sent
    shm: dict[str, Any] | None  # features_shm as sent
    shm_error: str | None
    engine: Any = None  # inferencing_engine as sent (newer runners)

    @classmethod
    def parse(cls, reply: Any, where: str) -> "Hello":
        """The reply's fields, or a one-line UsageError: a program that answers hello with
        something else is not an .eim."""
        def wrong(what: str) -> UsageError:
            return UsageError(f"{where} is not an Edge Impulse .eim: its hello reply {what}")

        params = reply.get("model_parameters") if isinstance(reply, dict) else None
        if not isinstance(params, dict):
            raise wrong("has no model_parameters")
        count, labels = params.get("input_features_count"), params.get("labels")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise wrong(f"gives input_features_count {count!r}, not a positive integer")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise wrong("gives no list of labels")
        if params.get("label_count", len(labels)) != len(labels):
            raise wrong(f"gives label_count {params.get('label_count')!r} for {len(labels)} labels")
        shm = reply.get("features_shm")
        project = reply.get("project")
        return cls(count, tuple(labels), str(params.get("model_type", "classification")),
                   project if isinstance(project, dict) else {}, params,
                   shm if isinstance(shm, dict) else None,
                   str(reply["features_shm_error"]) if reply.get("features_shm_error") else None,
                   reply.get("inferencing_engine"))


@dataclass
class Timings:
    """Sums of the ``timing`` fields over the replies read, in the runner's whole ms."""

    replies: int = 0
    totals_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_KEYS, 0))

    def add(self, timing: dict[str, Any]) -> None:
        self.replies += 1
        for key in TIMING_KEYS:
            value = timing.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.totals_ms[key] += value


def exit_status(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``, for a Popen return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Runner:
    """One started ``.eim`` and its connection (see the module). :meth:`prepare` (untimed) puts a
    sample's features in place and builds the request; :meth:`roundtrip` (timed) sends it and
    reads the reply, nothing else; :meth:`reply` parses it (untimed)."""

    def __init__(self, path: Path, start_timeout_s: float, timeout_s: float, max_reply: int,
                 shared_memory: bool = True) -> None:
        self.path, self.name = Path(path), Path(path).name
        self.start_timeout_s, self.timeout_s = start_timeout_s, timeout_s
        self.want_shm = shared_memory
        self.request = b""
        self.length = 0  # bytes of the last reply, its NUL included
        self.timings = Timings()
        self.transport = "json"
        self.shm_refused: str | None = None  # why an announced segment is not used
        self._buf = bytearray(max_reply)
        self._view = memoryview(self._buf)
        self._size = max_reply
        self._what = "hello"
        self._id = 0
        self._parsed: Any = None
        self._count = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._segment = None
        self.features: np.ndarray | None = None  # the segment's float32 view, when used

    # -- start ------------------------------------------------------------------------------
    def start(self) -> Hello:
        """Start the .eim on a socket in a private folder, connect, say hello and map its
        features segment. UsageError when the file is no .eim; SUTError when the .eim fails."""
        self._dir = Path(tempfile.mkdtemp(prefix="tinyharness-eim-"))
        path = self._dir / "runner.sock"
        deadline = time.monotonic() + self.start_timeout_s
        with open(self._dir / "runner.log", "wb") as log:  # a file: a pipe left unread could fill
            try:
                self._proc = subprocess.Popen([str(self.path.resolve()), str(path)],
                                              stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, cwd=self._dir,
                                              start_new_session=True)  # Ctrl-C is the harness's
            except OSError as exc:
                raise UsageError(f"{self.path} cannot be started ({exc.strerror or exc}): not an "
                                 f"Edge Impulse .eim built for this machine ({os.uname().machine})?"
                                 ) from None
        self._sock = self._connect(path, deadline)
        self._sock.settimeout(max(deadline - time.monotonic(), POLL_S))
        self.request = b'{"hello":1,"id":1}'
        self._id = 1
        self._exchange(check=False)  # a program that is no .eim answers anything, or nothing
        try:
            reply = loads_json(bytes(self._view[:self.length - 1]), f"{self.name}'s hello reply")
        except UsageError as exc:
            raise UsageError(f"{self.path} is not an Edge Impulse .eim: {exc}") from None
        if not isinstance(reply, dict) or reply.get("success") is not True:
            error = reply.get("error") if isinstance(reply, dict) else None
            if error is None:
                raise UsageError(f"{self.path} is not an Edge Impulse .eim: its hello reply has "
                                 "no success field")
            raise SUTError(f"{self.name} refused hello: {error}")
        hello = Hello.parse(reply, str(self.path))
        self._count = hello.features
        self._sock.settimeout(self.timeout_s)
        self._what = "classify"
        if self.want_shm and hello.shm is not None:
            self._attach(hello.shm, hello.features)
        elif self.want_shm and hello.shm_error:
            self.shm_refused = f"the .eim could not make one: {hello.shm_error}"
        return hello

    def _connect(self, path: Path, deadline: float) -> socket.socket:
        while True:
            code = self._proc.poll()
            if code is not None:
                raise UsageError(f"{self.path} is not an Edge Impulse .eim: it {exit_status(code)} "
                                 f"without opening its runner socket{self._last_output()}")
            if path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.start_timeout_s)
                try:
                    sock.connect(str(path))
                    return sock
                except (FileNotFoundError, ConnectionRefusedError):  # bound, not yet listening
                    sock.close()
            if time.monotonic() >= deadline:
                raise UsageError(f"{self.path} opened no runner socket within "
                                 f"{self.start_timeout_s:g} s: not an Edge Impulse .eim, or a slow "
                                 "start (--sut-option start_timeout_s=SECONDS)")
            time.sleep(POLL_S)

    def _attach(self, shm: dict[str, Any], count: int) -> None:
        """Map the features segment the runner announced, as the reference client does; where
        it does not fit, the features go in the JSON request instead (and :attr:`shm_refused`
        says why)."""
        from multiprocessing import resource_tracker, shared_memory

        name, elements = shm.get("name"), shm.get("elements")
        if not isinstance(name, str) or elements != count \
                or shm.get("type", "float32") != "float32":
            self.shm_refused = f"announced segment {shm!r} does not hold {count} float32 features"
            return
        try:
            segment = shared_memory.SharedMemory(name=name.lstrip("/"))
        except (OSError, ValueError) as exc:
            self.shm_refused = f"cannot map {name}: {exc}"
            return
        # Attaching registers the runner's segment with this process's resource tracker, which
        # would unlink it when we exit; it is the runner's to remove (edge_impulse_linux does so).
        resource_tracker.unregister(segment._name, "shared_memory")
        if segment.size < count * 4:
            segment.close()
            self.shm_refused = f"segment {name} has {segment.size} bytes, fewer than {count * 4}"
            return
        self._segment = segment
        self.features = np.ndarray((count,), dtype=np.float32, buffer=segment.buf)
        self.transport = "shm"

    # -- queries ----------------------------------------------------------------------------
    def prepare(self, sample: np.ndarray) -> None:
        """Untimed: the sample's features into the segment (or into the JSON request), and the
        request with a new id."""
        self._id += 1
        flat = sample.reshape(-1)
        if self.features is not None:
            np.copyto(self.features, flat)
            self.request = b'{"classify_shm":{"elements":%d},"id":%d}' % (self._count, self._id)
        else:  # repr of a float64 holding a float32 value: the runner's (float) cast is exact
            values = ",".join(map(repr, flat.astype(np.float64).tolist())).encode()
            self.request = b'{"classify":[%s],"id":%d}' % (values, self._id)

    def roundtrip(self) -> None:
        """Timed: send the request, read the reply up to its NUL into the buffer. A reply that
        does not say ``"success":true`` is parsed (after the fact) and raised as SUTError."""
        self._exchange(check=True)

    def _exchange(self, check: bool) -> None:
        sock, view, size = self._sock, self._view, self._size
        self._parsed = None
        try:
            sock.sendall(self.request)
            n, deadline = 0, None
            while True:
                got = sock.recv_into(view[n:]) if n else sock.recv_into(view)
                if not got:
                    raise self._gone()
                n += got
                if view[n - 1] == 0:
                    break
                if n == size:
                    raise SUTError(f"{self.name}'s {self._what} reply is larger than "
                                   f"{size // 1024} KiB (--sut-option max_reply_kib=KIB)")
                # a reply in pieces: the pieces together within the timeout too (one clock read
                # only here, off the common path of a reply in one piece)
                if deadline is None:
                    deadline = time.monotonic() + sock.gettimeout()
                elif time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError:
            raise SUTError(f"{self.name} sent no complete reply to {self._what} within "
                           f"{sock.gettimeout():g} s (--sut-option timeout_s=SECONDS)") from None
        except OSError as exc:  # reset, broken pipe: the runner went away
            raise self._gone(exc) from None
        self.length = n
        if check and self._buf.find(b'"success":true', 0, n) < 0:
            self._refused()

    def _refused(self) -> None:
        reply = self.reply(check_id=False)
        if reply.get("success") is True:  # a runner that spaces its JSON: slower, still right
            return
        raise SUTError(f"{self.name} refused {self._what}: {reply.get('error', 'no error given')}")

    def reply(self, check_id: bool = True) -> dict[str, Any]:
        """The last reply, parsed once; SUTError when it is not the answer to the request."""
        if self._parsed is None:
            text = bytes(self._view[:self.length - 1])  # without the NUL
            try:
                reply = loads_json(text, f"{self.name}'s {self._what} reply")
            except UsageError as exc:
                raise SUTError(str(exc)) from None
            if not isinstance(reply, dict):
                raise SUTError(f"{self.name}'s {self._what} reply is not a JSON object")
            if isinstance(reply.get("timing"), dict):
                self.timings.add(reply["timing"])
            self._parsed = reply
        if check_id and self._parsed.get("id") != self._id:
            raise SUTError(f"{self.name} answered request {self._id} with id "
                           f"{self._parsed.get('id')!r}")
        return self._parsed

    def impulse_ns(self) -> int:
        """The last reply's dsp + classification + anomaly time (whole ms as the runner counts
        them) in nanoseconds."""
        timing = self.reply().get("timing")
        if not isinstance(timing, dict):
            raise SUTError(f"{self.name}'s classify reply has no timing")
        ms = 0
        for key in IMPULSE_KEYS:
            value = timing.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise SUTError(f"{self.name}'s classify reply has timing.{key} = {value!r}")
            ms += value
        return int(ms * 1_000_000)

    # -- failure and stop -------------------------------------------------------------------
    def _gone(self, exc: OSError | None = None) -> SUTError:
        """The runner closed the connection: how it ended, and its last output, on one line."""
        try:
            code = self._proc.wait(timeout=EXIT_WAIT_S)
            how = exit_status(code)
        except subprocess.TimeoutExpired:
            how = "closed its socket" + (f" ({exc.strerror or exc})" if exc else "")
        return SUTError(f"{self.name} {how} during {self._what} request {self._id}"
                        f"{self._last_output()}")

    def _last_output(self) -> str:
        """``; its last output: '...'`` from the runner's log, or ``""``."""
        try:
            with open(self._dir / "runner.log", "rb") as log:
                log.seek(max(0, os.fstat(log.fileno()).st_size - TAIL_BYTES))
                lines = log.read(TAIL_BYTES).decode("utf-8", "replace").splitlines()
        except (OSError, TypeError):
            return ""
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
        return f"; its last output: {last[:200]!r}" if last else ""

    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def close(self) -> None:
        """Close the connection (a runner then exits by itself), stop the process (SIGTERM,
        bounded wait, SIGKILL), remove a segment a killed runner left, remove the folder.
        Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self.features = None  # the view first: a mapped segment with views cannot close
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)
        if segment is not None:
            _remove_leftover(segment.name)
        folder, self._dir = self._dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=EXIT_WAIT_S)  # the socket closed: a runner returns from its loop
        return
    except subprocess.TimeoutExpired:
        pass
    for send in (proc.terminate, proc.kill):
        send()
        try:
            proc.wait(timeout=STOP_WAIT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def _remove_leftover(name: str) -> None:
    """Unlink the runner's segment if it died without doing so (SIGKILL). Attaching registers
    it with the resource tracker and unlink() unregisters it: the two balance."""
    from multiprocessing import shared_memory

    try:
        segment = shared_memory.SharedMemory(name=name)
    except (OSError, ValueError):  # gone: the runner removed it
        return
    segment.close()
    try:
        segment.unlink()
    except OSError:
        pass
