"""A real HTTP server on 127.0.0.1 serving the shared MLPerf Tiny models under the upstream layout
/<repo>/<commit>/<path>, for the model-store and ``tinyharness models`` tests. Nothing here reaches
the internet."""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tinyharness.benchmark import ModelEntry, load_benchmarks


def model_entry(benchmark: str, file: str) -> ModelEntry:
    return next(e for e in load_benchmarks()[benchmark].models if e.file == file)


KWS_INT8 = ("kws01", "kws_ref_model.tflite")
KWS_FLOAT = ("kws01", "kws_ref_model_float32.tflite")


def url_path(entry: ModelEntry) -> str:
    return urllib.parse.urlsplit(entry.url("http://server")).path


class ModelServer(ThreadingHTTPServer):
    """Serves ``routes`` (URL path -> local file); ``declared`` overrides a route's Content-Length
    (a larger one makes a transfer that is cut short). Every request path lands in ``requests``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Path] = {}
        self.declared: dict[str, int] = {}
        self.requests: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def serve(self, entry: ModelEntry, local: Path) -> None:
        self.routes[url_path(entry)] = local


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer

    def do_GET(self) -> None:  # http.server's naming
        self.server.requests.append(self.path)
        local = self.server.routes.get(self.path)
        if local is None:
            self.send_error(404)
            return
        data = local.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.server.declared.get(self.path, len(data))))
        self.end_headers()
        self.wfile.write(data)  # HTTP/1.0: the connection closes after this

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(shared_data: Path) -> Iterator[ModelServer]:
    """A running server for every upstream (tflite) model of the rule sets, from
    ../shared/mlperf_tiny/models; shut down on exit."""
    server = ModelServer()
    for bench in load_benchmarks().values():
        for entry in bench.models:
            if entry.source:
                server.serve(entry, shared_data / "models" / entry.relative_path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
