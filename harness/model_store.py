"""The model store: find a benchmark's reference model as a verified local file.

Resolution order, first hit wins (every hit is checked against the rule set's sha256):

1. ``--model PATH`` (handled by the caller; not verified, since it may be the user's own model);
2. an embedded benchmark's ``reference_models/<store_dir>/<file>``;
3. each folder of ``TINYHARNESS_MODEL_MIRROR`` (``os.pathsep``-separated), as ``<mirror>/<store_dir>/<file>``;
4. the per-user cache (``TINYHARNESS_CACHE_DIR`` or platformdirs' user cache), ``models/<store_dir>/<file>``;
5. a download from the pinned upstream URL into the cache: sha256 checked, written atomically.

``TINYHARNESS_MODEL_BASE_URL`` replaces the upstream host (e.g. an internal mirror server).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .benchmark import ModelEntry
from .errors import UsageError
from .fileio import sha256_of
from .resources import data_dir

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
TIMEOUT_S = 30
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


def check(entry: ModelEntry, path: Path) -> str | None:
    """Why ``path`` is not the rule set's file (size, then sha256), or None when it is."""
    try:
        size = path.stat().st_size
        actual = sha256_of(path) if size == entry.size else ""
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if size != entry.size:
        return f"{size} bytes, the rule set for {entry.benchmark} expects {entry.size}"
    if actual != entry.sha256:
        return (f"sha256 {actual[:16]}..., the rule set for {entry.benchmark} expects "
                f"{entry.sha256[:16]}...")
    return None


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
                for where, path in self.candidates(entry) if path.is_file()]

    def locate(self, entry: ModelEntry) -> Found | None:
        """A local copy with the right checksum, or None. A copy with a wrong checksum is an error."""
        for where, path in self.candidates(entry):
            if path.is_file():
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
        size, expected_length = 0, None
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                expected_length = response.headers.get("Content-Length")
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            if expected_length is not None and size != int(expected_length):
                raise http.client.IncompleteRead(b"")
            if size != entry.size or digest.hexdigest() != entry.sha256:
                raise UsageError(f"download of {url} does not match the rule set ({size} bytes, sha256 "
                                 f"{digest.hexdigest()[:16]}...; expected {entry.size} bytes, "
                                 f"{entry.sha256[:16]}...); nothing was saved")
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600
            os.replace(tmp, target)
            return target
        except urllib.error.HTTPError as exc:
            raise UsageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}"
                             f"{self._base_note()}; {_MIRROR_HINT}") from None
        except http.client.IncompleteRead:
            raise UsageError(f"download of {url} was cut short: {size} of {expected_length or '?'} "
                             "bytes; nothing was saved, try again") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
                raise _cache_error(target.parent, exc) from None
            raise UsageError(f"cannot download {entry.file} from {url}: "
                             f"{getattr(exc, 'reason', None) or exc}; {_OFFLINE_HINT}") from None
        except (http.client.HTTPException, ValueError) as exc:
            raise UsageError(f"cannot download {entry.file} from {url}: {exc or type(exc).__name__}; "
                             f"{_OFFLINE_HINT}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _base_note(self) -> str:
        if self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            return ""
        return f" (TINYHARNESS_MODEL_BASE_URL is {self.base_url})"


def _cache_error(folder: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot write to the model cache {folder}: {exc.strerror or exc}; set "
                      "TINYHARNESS_CACHE_DIR to a writable folder")


def default_cache() -> Path:
    env = os.environ.get("TINYHARNESS_CACHE_DIR")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinyharness")) / "models"
