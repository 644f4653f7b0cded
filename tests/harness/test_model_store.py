"""The model store against a real HTTP server on 127.0.0.1 serving the shared MLPerf Tiny models
under the upstream layout /<repo>/<commit>/<path>. Nothing here reaches the internet."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from model_server import KWS_FLOAT, KWS_INT8, ModelServer, model_entry, serving, url_path
from tinyharness import model_store
from tinyharness.benchmark import load_benchmarks
from tinyharness.errors import UsageError
from tinyharness.fileio import sha256_of
from tinyharness.model_store import ModelStore


@pytest.fixture
def model_server(shared_data) -> Iterator[ModelServer]:
    with serving(shared_data) as server:
        yield server


def store_for(server_url: str, tmp_path: Path, mirrors: list[Path] | None = None) -> ModelStore:
    return ModelStore(mirrors=mirrors or [], cache=tmp_path / "cache", base_url=server_url)


def leftovers(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.part")) if cache.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_is_verified_placed_atomically_and_found_in_the_cache_next_time(model_server, tmp_path,
                                                                                monkeypatch):
    entry = model_entry(*KWS_INT8)
    target = tmp_path / "cache" / entry.relative_path
    replaced = []
    real_replace = model_store.os.replace

    def spy_replace(src, dst):
        replaced.append((Path(src), Path(dst), Path(dst).exists()))
        real_replace(src, dst)

    monkeypatch.setattr(model_store.os, "replace", spy_replace)
    found = store_for(model_server.url, tmp_path).resolve(entry)
    assert found.where == "download" and found.path == target
    assert sha256_of(target) == entry.sha256 and target.stat().st_size == entry.size
    assert model_server.requests == [url_path(entry)]
    # written beside the target as a .part file, then renamed over it in one step
    [(src, dst, existed)] = replaced
    assert dst == target and src.parent == target.parent and src.name.endswith(".part")
    assert not existed and not src.exists() and leftovers(tmp_path / "cache") == []

    again = store_for(model_server.url, tmp_path).resolve(entry)
    assert again.where == "cache" and again.path == target
    assert model_server.requests == [url_path(entry)]  # no second request


def test_wrong_checksum_download_saves_nothing(model_server, shared_data, tmp_path):
    entry = model_entry(*KWS_INT8)
    model_server.serve(entry, shared_data / "models" / model_entry(*KWS_FLOAT).relative_path)
    with pytest.raises(UsageError, match="does not match the rule set.*nothing was saved"):
        store_for(model_server.url, tmp_path).resolve(entry)
    assert not (tmp_path / "cache" / entry.relative_path).exists()
    assert leftovers(tmp_path / "cache") == []


def test_wrong_checksum_download_leaves_a_previous_good_copy_untouched(model_server, shared_data, tmp_path):
    entry = model_entry(*KWS_INT8)
    good = shared_data / "models" / entry.relative_path
    target = tmp_path / "cache" / entry.relative_path
    target.parent.mkdir(parents=True)
    shutil.copyfile(good, target)
    model_server.serve(entry, shared_data / "models" / model_entry(*KWS_FLOAT).relative_path)
    with pytest.raises(UsageError, match="does not match the rule set"):
        store_for(model_server.url, tmp_path).download(entry)  # what 'models fetch --force' does
    assert target.read_bytes() == good.read_bytes()
    assert leftovers(tmp_path / "cache") == []


def test_transfer_cut_short_is_an_error_and_saves_nothing(model_server, shared_data, tmp_path):
    entry = model_entry(*KWS_INT8)
    half = tmp_path / "half.tflite"
    half.write_bytes((shared_data / "models" / entry.relative_path).read_bytes()[:20_000])
    model_server.serve(entry, half)
    model_server.declared[url_path(entry)] = entry.size
    with pytest.raises(UsageError, match=f"cut short: 20000 of {entry.size} bytes"):
        store_for(model_server.url, tmp_path).resolve(entry)
    assert not (tmp_path / "cache" / entry.relative_path).exists()
    assert leftovers(tmp_path / "cache") == []


def test_http_404_names_the_url_and_status(model_server, tmp_path):
    entry = model_entry(*KWS_INT8)
    del model_server.routes[url_path(entry)]
    with pytest.raises(UsageError) as info:
        store_for(model_server.url, tmp_path).resolve(entry)
    message = str(info.value)
    assert entry.url(model_server.url) in message and "HTTP 404" in message
    assert "TINYHARNESS_MODEL_BASE_URL" in message and "\n" not in message
    assert leftovers(tmp_path / "cache") == []


def test_unreachable_server_suggests_the_mirror(tmp_path):
    entry = model_entry(*KWS_INT8)
    with pytest.raises(UsageError, match="offline.*TINYHARNESS_MODEL_MIRROR") as info:
        store_for(f"http://127.0.0.1:{free_port()}", tmp_path).resolve(entry)
    assert "\n" not in str(info.value)
    assert leftovers(tmp_path / "cache") == []


def test_keyboard_interrupt_mid_download_leaves_no_part_file(model_server, tmp_path, monkeypatch):
    entry = model_entry(*KWS_INT8)
    real_open = model_store._Watchdog.open

    def interrupted_after_first_block(self, *args, **kwargs):
        response = real_open(self, *args, **kwargs)
        reads, real_read = [], response.read1

        def read1(amt=-1):
            reads.append(amt)
            if len(reads) > 1:
                raise KeyboardInterrupt
            return real_read(amt)

        response.read1 = read1
        return response

    monkeypatch.setattr(model_store._Watchdog, "open", interrupted_after_first_block)
    with pytest.raises(KeyboardInterrupt):
        store_for(model_server.url, tmp_path).resolve(entry)
    assert not (tmp_path / "cache" / entry.relative_path).exists()
    assert leftovers(tmp_path / "cache") == []


def test_unwritable_cache_is_a_clear_error(model_server, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    store = ModelStore(mirrors=[], cache=blocker / "cache", base_url=model_server.url)
    with pytest.raises(UsageError, match="cannot write to the model cache.*TINYHARNESS_CACHE_DIR"):
        store.resolve(model_entry(*KWS_INT8))
    assert model_server.requests == []


def test_mirror_wins_over_cache_and_cache_over_download(model_server, shared_data, tmp_path):
    entry = model_entry(*KWS_INT8)
    cached = tmp_path / "cache" / entry.relative_path
    cached.parent.mkdir(parents=True)
    shutil.copyfile(shared_data / "models" / entry.relative_path, cached)
    mirror = shared_data / "models"

    found = store_for(model_server.url, tmp_path, mirrors=[tmp_path / "empty", mirror]).resolve(entry)
    assert found.where == "mirror" and found.path == mirror / entry.relative_path
    found = store_for(model_server.url, tmp_path).resolve(entry)
    assert found.where == "cache" and found.path == cached
    assert model_server.requests == []


def test_mirror_copy_with_wrong_checksum_is_an_error_naming_it(model_server, shared_data, tmp_path):
    entry = model_entry(*KWS_INT8)
    bad = tmp_path / "mirror" / entry.relative_path
    bad.parent.mkdir(parents=True)
    data = bytearray((shared_data / "models" / entry.relative_path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    store = store_for(model_server.url, tmp_path, mirrors=[tmp_path / "mirror"])
    with pytest.raises(UsageError, match="sha256") as info:
        store.resolve(entry)
    assert str(bad) in str(info.value)
    assert [(c.where, c.path, c.problem is not None) for c in store.copies(entry)] == [("mirror", bad, True)]
    assert model_server.requests == []


def test_embedded_models_resolve_without_any_environment(monkeypatch):
    for name in ("TINYHARNESS_MODEL_MIRROR", "TINYHARNESS_CACHE_DIR", "TINYHARNESS_MODEL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("an embedded model must not be downloaded")

    monkeypatch.setattr(model_store._Watchdog, "open", no_network)
    entries = load_benchmarks()["digits01"].models
    assert entries
    for entry in entries:
        found = ModelStore().resolve(entry)
        assert found.where == "embedded" and sha256_of(found.path) == entry.sha256


def test_converted_model_not_found_locally_gives_the_hint(tmp_path):
    entry = model_entry("kws01", "kws_ref_model.onnx")
    store = store_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    for attempt in (store.resolve, store.download):
        with pytest.raises(UsageError, match="TINYHARNESS_MODEL_MIRROR") as info:
            attempt(entry)
        assert entry.relative_path in str(info.value) and entry.converted_from in str(info.value)


# -- bounded downloads and local copies (hardening) ------------------------------------------------

class HostileServer(ThreadingHTTPServer):
    """A server on 127.0.0.1 that misbehaves as ``mode`` says: "trickle" (the declared size, one
    byte every 20 ms, 500 bytes at most), "stall" (100 bytes, then silence until the test ends),
    "endless" (no Content-Length, 64 KiB blocks up to 64 MiB) or "declares" (a 500 MiB
    Content-Length, then silence). ``sent`` counts the body bytes it got out."""

    daemon_threads = True

    def __init__(self, mode: str, size: int) -> None:
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        self.mode, self.size, self.sent = mode, size, 0
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _HostileHandler(BaseHTTPRequestHandler):
    server: HostileServer

    def do_GET(self) -> None:  # http.server's naming
        server = self.server
        self.send_response(200)
        if server.mode in ("trickle", "stall"):
            self.send_header("Content-Length", str(server.size))
        elif server.mode == "declares":
            self.send_header("Content-Length", str(500 << 20))
        self.end_headers()
        try:
            if server.mode == "trickle":
                for _ in range(500):
                    if server.stop.wait(0.02):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    server.sent += 1
            elif server.mode == "endless":
                block = bytes(1 << 16)
                for _ in range(1024):
                    self.wfile.write(block)
                    server.sent += len(block)
            else:
                if server.mode == "stall":
                    self.wfile.write(bytes(100))
                    self.wfile.flush()
                    server.sent += 100
                server.stop.wait(5)
        except OSError:  # the client hung up: what a bounded download does
            return

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile():
    servers = []

    def start(mode: str, size: int) -> HostileServer:
        server = HostileServer(mode, size)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def test_download_past_the_overall_deadline_is_stopped(hostile, tmp_path, monkeypatch):
    """Issue defect 21: a server sending a byte every 20 ms never stalls, yet never finishes."""
    entry = model_entry(*KWS_INT8)
    server = hostile("trickle", entry.size)
    monkeypatch.setattr(model_store, "DEADLINE_S", 0.3)
    with pytest.raises(UsageError, match=r"took longer than 0\.3 s; nothing was saved") as info:
        store_for(server.url, tmp_path).resolve(entry)
    assert "\n" not in str(info.value) and server.sent < 500
    assert not (tmp_path / "cache" / entry.relative_path).exists()
    assert leftovers(tmp_path / "cache") == []


def test_download_that_stalls_is_stopped(hostile, tmp_path, monkeypatch):
    entry = model_entry(*KWS_INT8)
    server = hostile("stall", entry.size)
    monkeypatch.setattr(model_store, "STALL_S", 0.2)
    with pytest.raises(UsageError, match=r"stalled: no data for 0\.2 s after 100 bytes"):
        store_for(server.url, tmp_path).resolve(entry)
    assert leftovers(tmp_path / "cache") == []


def test_download_larger_than_the_rule_set_size_stops_at_it(hostile, tmp_path, monkeypatch):
    """Issue defect 21: 500 MiB were downloaded before a 54 kB model was rejected."""
    entry = model_entry(*KWS_INT8)
    server = hostile("endless", entry.size)
    written = []
    real_fdopen = model_store.os.fdopen

    def spy_fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write
        handle.write = lambda data: written.append(len(data)) or real_write(data)
        return handle

    monkeypatch.setattr(model_store.os, "fdopen", spy_fdopen)
    with pytest.raises(UsageError, match=f"sends more than the {entry.size:,} bytes the rule set "
                                         "expects; stopped, nothing was saved"):
        store_for(server.url, tmp_path).resolve(entry)
    assert sum(written) == entry.size + 1  # read no further than the cap and one byte
    assert leftovers(tmp_path / "cache") == []


def test_declared_size_over_the_rule_set_size_is_refused_before_the_body(hostile, tmp_path):
    entry = model_entry(*KWS_INT8)
    server = hostile("declares", entry.size)
    with pytest.raises(UsageError, match=f"declares {500 << 20:,} bytes, the rule set expects "
                                         f"{entry.size:,}; nothing was saved"):
        store_for(server.url, tmp_path).resolve(entry)
    assert leftovers(tmp_path / "cache") == []


def test_a_fifo_or_a_device_in_the_cache_or_a_mirror_is_named_never_opened(tmp_path):
    """Issue defect 16: a FIFO where a model should be would block a reader forever."""
    entry = model_entry(*KWS_INT8)
    cached = tmp_path / "cache" / entry.relative_path
    cached.parent.mkdir(parents=True)
    os.mkfifo(cached)
    store = store_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    with pytest.raises(UsageError, match="a FIFO, not a regular file") as info:
        store.resolve(entry)
    assert str(cached) in str(info.value)
    mirrored = tmp_path / "mirror" / entry.relative_path
    mirrored.parent.mkdir(parents=True)
    mirrored.symlink_to("/dev/zero")
    store = store_for(f"http://127.0.0.1:{free_port()}", tmp_path, mirrors=[tmp_path / "mirror"])
    assert [(c.where, c.problem) for c in store.copies(entry)] == [
        ("mirror", "a device, not a regular file"), ("cache", "a FIFO, not a regular file")]


def test_a_model_given_by_path_is_a_bounded_regular_file(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    assert model_store.model_file(model) == hashlib.sha256(b"model bytes").hexdigest()
    with pytest.raises(UsageError, match="more than 5 bytes"):
        model_store.model_file(model, limit=5)
    os.mkfifo(tmp_path / "fifo.onnx")
    (tmp_path / "zero.onnx").symlink_to("/dev/zero")
    for path, kind in (("fifo.onnx", "a FIFO"), ("zero.onnx", "a device"), (".", "a folder")):
        with pytest.raises(UsageError, match=f"is {kind}, not a regular file; give a model file"):
            model_store.model_file(tmp_path / path)
    with pytest.raises(UsageError, match="does not exist"):
        model_store.model_file(tmp_path / "gone.onnx")
