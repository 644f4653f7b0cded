"""The model store: find a benchmark's reference model as a verified local file.

Resolution order, first hit wins (every hit is checked against the rule set's sha256):

1. ``--model PATH`` (handled by the caller; not verified, since it may be the user's own model);
2. an embedded benchmark's ``reference_models/<store_dir>/<file>``;
3. each folder of ``TINYHARNESS_MODEL_MIRROR`` (``os.pathsep``-separated), as ``<mirror>/<store_dir>/<file>``;
4. the per-user cache (``TINYHARNESS_CACHE_DIR`` or platformdirs' user cache), ``models/<store_dir>/<file>``;
5. a download from the pinned upstream URL into the cache: sha256 checked, written atomically.

``TINYHARNESS_MODEL_BASE_URL`` replaces the upstream host (e.g. an internal mirror server).

Every local copy is ``stat``-ed before it is opened (links followed; a FIFO, device or folder is a
problem, never read) and hashed no further than the rule set's size. A download has an overall
deadline (:data:`DEADLINE_S`), a stall timeout (:data:`STALL_S`: no byte for that long, also the
connect timeout) and a size cap (the rule set's size, :data:`MAX_MODEL_BYTES` where none is known):
a declared ``Content-Length`` above it is refused before the body is read, and the body is read no
further than the cap plus one byte.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import stat
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .benchmark import ModelEntry
from .errors import UsageError
from .fileio import umask
from .resources import data_dir

# Not pooch 1.9 (+7 MB with requests): against test_model_store.py's servers it had no overall deadline
# (a trickle ran 10 s, as long as the server chose), wrote all 64 MiB of an endless body, ignored a
# 500 MiB Content-Length, and hung on a FIFO or /dev/zero link in its cache (it hashes what is there).
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
DEADLINE_S = 600.0  # a whole download (the largest reference model is 1.5 MB)
STALL_S = 30.0  # no byte from the server for this long ends a download (and a connect)
MAX_MODEL_BYTES = 1 << 30  # a model whose size is not known (a rule set always states it)
CHUNK = 1 << 16
_MIRROR_HINT = "set TINYHARNESS_MODEL_MIRROR to a folder with the models, or give --model PATH"
_OFFLINE_HINT = f"offline? {_MIRROR_HINT}"


@dataclass(frozen=True)
class Found:
    path: Path
    where: str  # "embedded", "mirror", "cache" or "download"


@dataclass(frozen=True)
class Copy:
    """A local file at one of a model's candidate places, checked against the rule set."""

    where: str  # "embedded", "mirror" or "cache"
    path: Path
    problem: str | None  # None: size and sha256 match


def _kind(mode: int) -> str:
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def _hash(path: Path, limit: int) -> tuple[int, str]:
    """(size, sha256) of a regular file of at most ``limit`` bytes, reading at most ``limit + 1``;
    an OSError, or a ValueError that says why the file is not one (never read then)."""
    info = os.stat(path)  # links followed: a link to /dev/zero is a device
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        return info.st_size, ""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped for something else since the stat
            raise ValueError(f"{_kind(mode)}, not a regular file")
        digest, size = hashlib.sha256(), 0
        while size <= limit:
            block = handle.read(min(CHUNK, limit + 1 - size))
            if not block:
                break
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest() if size <= limit else ""


def check(entry: ModelEntry, path: Path) -> str | None:
    """Why ``path`` is not the rule set's file (kind, size, then sha256), or None when it is."""
    try:
        size, actual = _hash(path, entry.size)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    except ValueError as exc:
        return str(exc)
    if size != entry.size:
        return f"{size} bytes, the rule set for {entry.benchmark} expects {entry.size}"
    if actual != entry.sha256:
        return (f"sha256 {actual[:16]}..., the rule set for {entry.benchmark} expects "
                f"{entry.sha256[:16]}...")
    return None


def model_file(path: Path, limit: int = MAX_MODEL_BYTES) -> str:
    """The sha256 of a model given by path (``--model``): a regular file (links followed) of at
    most ``limit`` bytes, read no further; anything else is a one-line UsageError naming it."""
    try:
        size, digest = _hash(Path(path), limit)
    except FileNotFoundError:
        raise UsageError(f"model file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"model file {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"model file {path} is {exc}; give a model file") from None
    if size > limit:
        raise UsageError(f"model file {path} has more than {limit:,} bytes, more than any model "
                         "tinyharness loads")
    return digest


class ModelStore:
    def __init__(self, mirrors: list[Path] | None = None, cache: Path | None = None,
                 base_url: str | None = None) -> None:
        env_mirrors = os.environ.get("TINYHARNESS_MODEL_MIRROR", "")
        self.mirrors = mirrors if mirrors is not None else [Path(p) for p in env_mirrors.split(os.pathsep) if p]
        self.cache = cache or default_cache()
        self.base_url = base_url or os.environ.get("TINYHARNESS_MODEL_BASE_URL") or DEFAULT_BASE_URL

    def candidates(self, entry: ModelEntry) -> list[tuple[str, Path]]:
        places = []
        if entry.embedded:
            places.append(("embedded", data_dir("reference_models") / entry.relative_path))
        places += [("mirror", m / entry.relative_path) for m in self.mirrors]
        places.append(("cache", self.cache / entry.relative_path))
        return places

    def copies(self, entry: ModelEntry) -> list[Copy]:
        """Every local copy of ``entry``, in resolution order, each checked."""
        return [Copy(where, path, check(entry, path))
                for where, path in self.candidates(entry) if os.path.exists(path)]

    def locate(self, entry: ModelEntry) -> Found | None:
        """A local copy with the right checksum, or None. A copy with a wrong checksum is an error."""
        for where, path in self.candidates(entry):
            if os.path.exists(path):  # a FIFO or device there is a problem, never opened
                problem = check(entry, path)
                if problem:
                    again = (f" ('tinyharness models fetch --force {entry.benchmark}')"
                             if where == "cache" else "")
                    raise UsageError(f"{path} is not the model the rule set names ({problem}): a "
                                     f"different or damaged file; remove it or fetch it again{again}")
                return Found(path, where)
        return None

    def resolve(self, entry: ModelEntry, download: bool = True) -> Found:
        found = self.locate(entry)
        if found is not None:
            return found
        if not download or entry.url() is None:
            raise UsageError(f"model {entry.relative_path} of {entry.benchmark} is not available "
                             f"locally; {self.hint(entry)}")
        return Found(self.download(entry), "download")

    @staticmethod
    def hint(entry: ModelEntry) -> str:
        how = f"set TINYHARNESS_MODEL_MIRROR to a folder holding {entry.relative_path}, or give --model PATH"
        if entry.converted_from:
            how += f" (it is converted from {entry.converted_from}, with {entry.converter or 'a converter'})"
        return how

    def download(self, entry: ModelEntry) -> Path:
        """Fetch the pinned upstream file into the cache, verified, written atomically.

        Only a verified file replaces the cache's copy; the temporary ``.part`` file goes on any
        failure, KeyboardInterrupt included."""
        url = entry.url(self.base_url)
        if url is None:
            raise UsageError(f"model {entry.relative_path} of {entry.benchmark} has no upstream URL; "
                             f"{self.hint(entry)}")
        target = self.cache / entry.relative_path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=target.parent)
        except OSError as exc:
            raise _cache_error(target.parent, exc) from None
        size, expected_length, cap = 0, None, entry.size or MAX_MODEL_BYTES
        watchdog = _Watchdog(DEADLINE_S)
        late = UsageError(f"download of {url} took longer than {DEADLINE_S:g} s; nothing was saved; "
                          f"{_MIRROR_HINT}")
        try:
            digest = hashlib.sha256()
            with watchdog, os.fdopen(fd, "wb") as out, watchdog.open(url, STALL_S) as response:
                expected_length = _content_length(response)
                if expected_length is not None and expected_length > cap:
                    raise UsageError(f"download of {url} declares {expected_length:,} bytes, the rule "
                                     f"set expects {cap:,}; nothing was saved")
                read = getattr(response, "read1", response.read)  # read1: what one recv brings
                while True:
                    if watchdog.fired:
                        raise late
                    block = read(min(CHUNK, cap + 1 - size))
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                    if size > cap:
                        raise UsageError(f"download of {url} sends more than the {cap:,} bytes the rule "
                                         "set expects; stopped, nothing was saved")
                if watchdog.fired:
                    raise late
                out.flush()
                os.fsync(out.fileno())
            if expected_length is not None and size != expected_length:
                raise http.client.IncompleteRead(b"")
            if size != entry.size or digest.hexdigest() != entry.sha256:
                raise UsageError(f"download of {url} does not match the rule set ({size} bytes, sha256 "
                                 f"{digest.hexdigest()[:16]}...; expected {entry.size} bytes, "
                                 f"{entry.sha256[:16]}...); nothing was saved")
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it 0600
            os.replace(tmp, target)
            return target
        except urllib.error.HTTPError as exc:
            raise UsageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}"
                             f"{self._base_note()}; {_MIRROR_HINT}") from None
        except http.client.IncompleteRead:
            raise (late if watchdog.fired else UsageError(
                f"download of {url} was cut short: {size} of {expected_length or '?'} "
                "bytes; nothing was saved, try again")) from None
        except OSError as exc:
            if watchdog.fired:
                raise late from None
            if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                raise UsageError(f"download of {url} stalled: no data for {STALL_S:g} s after "
                                 f"{size:,} bytes; nothing was saved; {_OFFLINE_HINT}") from None
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
                raise _cache_error(target.parent, exc) from None
            raise UsageError(f"cannot download {entry.file} from {url}: "
                             f"{getattr(exc, 'reason', None) or exc}; {_OFFLINE_HINT}") from None
        except (http.client.HTTPException, ValueError) as exc:
            if watchdog.fired:
                raise late from None
            raise UsageError(f"cannot download {entry.file} from {url}: {exc or type(exc).__name__}; "
                             f"{_OFFLINE_HINT}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _base_note(self) -> str:
        if self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            return ""
        return f" (TINYHARNESS_MODEL_BASE_URL is {self.base_url})"


def _content_length(response) -> int | None:
    """The declared body size, or None; a malformed one is a ValueError."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise ValueError(f"malformed Content-Length {value[:40]!r}")
    return int(value)


class _Watchdog:
    """The overall deadline of a download: when it passes, every socket the download opened is
    shut down, which wakes a read blocked on it (a server that trickles its headers or body, or
    that goes quiet just under the stall timeout, again and again)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def open(self, url: str, timeout: float):
        """``urllib.request.urlopen`` (proxies and redirects as usual), its sockets watched."""
        watchdog = self

        def watched(http_class):
            class Watched(http_class):
                def connect(self) -> None:
                    super().connect()
                    watchdog.register(self.sock)
            return Watched

        class HTTP(urllib.request.HTTPHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(watched(http_class), req, **kwargs)

        class HTTPS(urllib.request.HTTPSHandler):
            def do_open(self, http_class, req, **kwargs):
                return super().do_open(watched(http_class), req, **kwargs)

        return urllib.request.build_opener(HTTP(), HTTPS()).open(url, timeout=timeout)


def _shut(sock: socket.socket) -> None:
    try:  # the plain socket's shutdown, also under TLS: the reading thread owns the TLS state
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _cache_error(folder: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot write to the model cache {folder}: {exc.strerror or exc}; set "
                      "TINYHARNESS_CACHE_DIR to a writable folder")


def default_cache() -> Path:
    env = os.environ.get("TINYHARNESS_CACHE_DIR")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinyharness")) / "models"
