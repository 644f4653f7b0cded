#!/usr/bin/env python3
"""A test ``.eim``: Edge Impulse's Linux runner protocol served by Python, the model run by ONNX
Runtime, so that the ``eim`` SUT can be tried (and tested) without Edge Impulse Studio.

It behaves as the runner an Edge Impulse Linux deployment builds (example-standalone-inferencing-
linux, ``source/eim.cpp``): ``test.eim SOCKET`` binds SOCKET, accepts one connection and serves
it until it closes; ``test.eim --print-info`` prints the hello reply. Requests are JSON objects
framed by counting braces; replies are sorted, compact JSON, ``"\\n"`` and a NUL. It answers
``hello`` (project, model_parameters, features_shm: a POSIX shared-memory segment of float32
features it creates), ``classify`` (features in the request) and ``classify_shm`` (features in
the segment) with ``result.classification`` (label to score, float32 printed shortest as
nlohmann::json does) and ``timing`` in whole milliseconds (dsp, classification, anomaly, json,
stdin, msg_handler), and the runner's error replies word for word. SIGINT, SIGTERM and SIGHUP
remove the segment and exit 128 + signal, as the runner does.

The impulse is a raw-features block (the features, reshaped to the model's input) and the ONNX
model. :func:`write_test_eim` writes this file as an executable ``.eim`` (a shebang naming this
Python) with its settings filled in: the model, the labels, the project, and ``crash_after`` (the
process kills itself with SIGKILL on that classify, before replying: a runner that dies mid-run).
The ``.eim`` needs numpy and onnxruntime in that Python
(``pip install 'tinyharness[onnxruntime]'``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

SETTINGS: dict = {}  # write_test_eim() replaces this line with the .eim's settings

MAX_MESSAGE = 32 * 1024 * 1024  # the runner's STDIN_BUFFER_SIZE
ACCEPT_TIMEOUT_S = 300.0  # no client by then: nobody will come
IDLE_TIMEOUT_S = 3600.0  # a client silent this long is gone (its close would have ended us)
BRACES = re.compile(rb"[{}]")
SENSOR_UNKNOWN = -1  # EI_CLASSIFIER_SENSOR_UNKNOWN: raw features, no sensor


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def shortest(value) -> float:
    """A float32 score as nlohmann::json prints it (shortest text that reads back the same)."""
    import numpy as np

    return float(str(np.float32(value)))


class Impulse:
    """The model and the runner's state: initialised by hello, as run_classifier_init()."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self.initialized = False
        self.session = self.input_name = self.shape = None
        self.features = 0
        self.segment = None
        self.classified = 0

    def init(self, shm: bool) -> str | None:
        """Load the model; make the features segment. The segment's error, if any."""
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.settings["model"], options,
                                            providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.shape = tuple(d if isinstance(d, int) else 1 for d in model_input.shape)
        self.features = int(np.prod(self.shape))
        if not shm:
            return None
        from multiprocessing import shared_memory

        try:
            self.segment = shared_memory.SharedMemory(name="shm-" + secrets.token_hex(6),
                                                      create=True, size=self.features * 4)
        except OSError as exc:
            return f"shm_open failed ({exc.errno})"
        return None

    def cleanup(self) -> None:
        segment, self.segment = self.segment, None
        if segment is not None:
            segment.close()
            try:
                segment.unlink()
            except OSError:
                pass

    def hello(self, id_: int) -> dict:
        s, labels = self.settings, list(self.settings["labels"])
        resp = {"id": id_, "success": True, "project": s["project"],
                "model_parameters": {
                    "input_features_count": self.features, "sensor": SENSOR_UNKNOWN,
                    "frequency": 0, "interval_ms": 0, "axis_count": self.features,
                    "image_input_width": 0, "image_input_height": 0, "image_input_frames": 0,
                    "image_channel_count": 0, "image_resize_mode": "none",
                    "label_count": len(labels), "has_anomaly": 0, "has_object_tracking": False,
                    "labels": labels, "model_type": "classification", "slice_size": self.features,
                    "use_continuous_mode": False, "has_performance_calibration": False,
                    "inferencing_engine": 0, "thresholds": []},
                "inferencing_engine": {"engine_type": 0, "properties": ["onnxruntime"]}}
        if self.segment is not None:
            resp["features_shm"] = {"name": "/" + self.segment.name, "type": "float32",
                                    "size_bytes": self.features * 4, "elements": self.features}
        return resp

    def classify(self, id_: int, values, entry_ms: int, json_ms: int, stdin_ms: int) -> dict:
        """run_classifier() on ``values`` (a sequence of floats), as the runner's reply."""
        import numpy as np

        self.classified += 1
        crash = self.settings.get("crash_after")
        if crash and self.classified >= crash:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash: no reply, no cleanup
        t0 = time.perf_counter_ns()
        x = np.asarray(values, dtype=np.float32).reshape(self.shape)  # the raw-features block
        t1 = time.perf_counter_ns()
        scores = self.session.run(None, {self.input_name: x})[0].reshape(-1)
        t2 = time.perf_counter_ns()
        labels = self.settings["labels"]
        if len(scores) != len(labels):
            return error(id_, "Classifying failed, error code was -5")  # EI_IMPULSE_TFLITE_ERROR
        return {"id": id_, "success": True,
                "result": {"classification": {k: shortest(v) for k, v in zip(labels, scores)}},
                "timing": {"dsp": (t1 - t0) // 1_000_000, "classification": (t2 - t1) // 1_000_000,
                           "anomaly": 0, "json": json_ms, "stdin": stdin_ms,
                           "msg_handler": now_ms() - entry_ms}}


def error(id_, message: str) -> dict:
    return {"error": message, "success": False} if id_ is None else \
        {"error": message, "id": id_, "success": False}


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def handle(impulse: Impulse, msg: dict, json_ms: int, stdin_ms: int, shm: bool) -> dict:
    """json_message_handler(): one request, one reply."""
    id_ = msg.get("id")
    if not isinstance(id_, int) or isinstance(id_, bool):
        return error(None, "Missing 'id' field in message")
    entry = now_ms()
    hello, data, data_shm = msg.get("hello"), msg.get("classify"), msg.get("classify_shm")
    if isinstance(hello, int) and not isinstance(hello, bool):
        if impulse.initialized:
            return error(id_, "Invalid message 'hello', already initialized")
        if hello != 1:
            return error(id_, "Invalid value for 'hello', only 1 supported")
        shm_error = impulse.init(shm)
        resp = impulse.hello(id_)
        if shm_error:
            resp["features_shm_error"] = shm_error
        impulse.initialized = True
        return resp
    if not impulse.initialized:
        return error(id_, "Invalid message, should initialize first")
    if isinstance(data, list):
        if not all(number(v) for v in data):
            return error(id_, "Failed to parse classify array, should contain all numbers")
        if len(data) != impulse.features:
            return error(id_, f"Invalid number of features in 'classify', expected "
                              f"{impulse.features} but got {len(data)}")
        return impulse.classify(id_, data, entry, json_ms, stdin_ms)
    if isinstance(data_shm, dict):
        elements = data_shm.get("elements")
        elements = int(elements) if number(elements) else -1
        if impulse.segment is None:
            return error(id_, "Cannot use 'classify_data_shm', cannot find shm input tensor "
                              "with ix=0")
        if elements != impulse.features:
            return error(id_, "Missing 'elements' in 'classify_data_shm'" if elements == -1 else
                         f"Invalid value for 'classify_data_shm.elements', expected "
                         f"{impulse.features}, but got {elements}")
        import numpy as np

        values = np.ndarray((impulse.features,), dtype=np.float32, buffer=impulse.segment.buf)
        try:
            return impulse.classify(id_, values, entry, json_ms, stdin_ms)
        finally:
            del values  # a view left on the segment would keep it from closing
    return error(id_, "Failed to handle message")


def dump(resp: dict) -> bytes:
    """The reply as the runner writes it: compact JSON, sorted keys, newline, NUL."""
    return json.dumps(resp, sort_keys=True, separators=(",", ":")).encode() + b"\n\0"


def serve(path: str, impulse: Impulse, shm: bool) -> int:
    """socket_main(): one connection, requests framed by counting braces, until it closes."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener.bind(path)
    listener.listen(10)
    print(f"Waiting for connection on {path}...", flush=True)
    listener.settimeout(ACCEPT_TIMEOUT_S)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        print(f"ERR: no connection within {ACCEPT_TIMEOUT_S:g} s", flush=True)
        return 1
    conn.settimeout(IDLE_TIMEOUT_S)
    print("Connected", flush=True)
    pending, opened, closed, started = bytearray(), 0, 0, 0
    while True:
        try:
            data = conn.recv(1 << 16)
        except TimeoutError:
            print(f"ERR: no request for {IDLE_TIMEOUT_S:g} s", flush=True)
            return 1
        if not data:
            break
        begin = 0
        if opened == 0:  # what precedes a message's first brace is dropped, as by the runner
            first = data.find(b"{")
            if first < 0:
                continue
            begin, started = first, now_ms()
        for brace in BRACES.finditer(data, begin):
            if brace.group() == b"{":
                opened += 1
            else:
                closed += 1
            if opened and closed == opened:
                pending += data[begin:brace.end()]
                stdin_ms, t = now_ms() - started, now_ms()
                try:
                    msg = json.loads(pending)
                    json_ms = now_ms() - t
                    resp = handle(impulse, msg, json_ms, stdin_ms, shm) if isinstance(msg, dict) \
                        else error(None, "Missing 'id' field in message")
                except ValueError as exc:
                    resp = {"error": str(exc)}
                conn.sendall(dump(resp))
                pending, opened, closed, begin = bytearray(), 0, 0, brace.end()
                nxt = data.find(b"{", begin)
                if nxt < 0:
                    begin = len(data)
                    break
                begin, started = nxt, now_ms()
        if opened:
            pending += data[begin:]
        if len(pending) > MAX_MESSAGE:
            print(f"Invalid message, received more than {MAX_MESSAGE} bytes, and no valid JSON "
                  "message detected", flush=True)
            return 1
    conn.close()
    listener.close()
    return 0


def main(argv: list[str], settings: dict | None = None) -> int:
    impulse = Impulse(settings if settings is not None else SETTINGS)

    def on_signal(sig, frame):
        impulse.cleanup()
        os._exit(128 + sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if not argv:
        print("Requires one parameter (either: '--print-info' or the name of a socket)")
        return 1
    if not impulse.settings.get("model"):
        print("ERR: no model in this runner's settings (write it with write_test_eim())")
        return 1
    try:
        if argv[0] == "--print-info":
            print("Edge Impulse Linux impulse runner - printing model metadata")
            print(json.dumps(handle(impulse, {"id": 1, "hello": 1}, 0, 0, False), indent=4))
            return 0
        print(f"Edge Impulse Linux impulse runner - listening for JSON messages on socket "
              f"'{argv[0]}'", flush=True)
        return serve(argv[0], impulse, impulse.settings.get("shm", True))
    finally:
        impulse.cleanup()


def write_test_eim(folder: Path, name: str = "digits01.eim", model: Path | None = None,
                   labels: list[str] | None = None, crash_after: int | None = None,
                   shm: bool = True, python: str | None = None) -> Path:
    """Write this runner as an executable ``folder/name``: a ``#!`` line naming ``python``
    (default: this interpreter) and this file with its settings filled in. ``model``: an ONNX
    classifier (default: the embedded digits01 float model, labels "0" to "9"); ``crash_after``:
    the classify on which it kills itself; ``shm``: whether it offers shared memory."""
    if model is None:
        from tinyharness.resources import data_dir

        model = data_dir("reference_models") / "digits01" / "digits01_float.onnx"
    model = Path(model).resolve()
    settings = {"model": str(model), "labels": list(labels or [str(d) for d in range(10)]),
                "crash_after": crash_after, "shm": bool(shm),
                "project": {"id": 0, "owner": "tinyharness", "name": "tinyharness test runner",
                            "deploy_version": 1, "impulse_id": 1, "impulse_name": model.name}}
    source = Path(__file__).read_text(encoding="utf-8")
    marker = "SETTINGS: dict = " + "{}"  # split: this line must not match itself
    if source.count(marker) != 1:
        raise RuntimeError(f"{__file__}: the settings line is not there once")
    body = source.split("\n", 1)[1].replace(marker, f"SETTINGS: dict = {settings!r}", 1)
    out = Path(folder) / name
    out.write_text(f"#!{python or sys.executable}\n{body}", encoding="utf-8")
    out.chmod(0o755)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
