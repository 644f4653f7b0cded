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

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .benchmark import ModelEntry
from .errors import UsageError
from .resources import data_dir

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
TIMEOUT_S = 30


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Found:
    path: Path
    where: str  # "embedded", "mirror", "cache" or "download"


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

    def locate(self, entry: ModelEntry) -> Found | None:
        """A local copy with the right checksum, or None. A copy with a wrong checksum is an error."""
        for where, path in self.candidates(entry):
            if path.is_file():
                actual = sha256_of(path)
                if actual != entry.sha256:
                    raise UsageError(f"{path} has sha256 {actual[:16]}..., the rule set for "
                                     f"{entry.benchmark} expects {entry.sha256[:16]}...: a different or "
                                     f"damaged file; remove it or fetch it again")
                return Found(path, where)
        return None

    def resolve(self, entry: ModelEntry, download: bool = True) -> Found:
        found = self.locate(entry)
        if found is not None:
            return found
        if not download or entry.url() is None:
            how = ("set TINYHARNESS_MODEL_MIRROR to a folder holding "
                   f"{entry.relative_path}, or give --model PATH")
            if entry.converted_from:
                how += f" (or convert {entry.converted_from}: 'tinyharness models convert')"
            raise UsageError(f"model {entry.relative_path} of {entry.benchmark} is not available "
                             f"locally; {how}")
        return Found(self.download(entry), "download")

    def download(self, entry: ModelEntry) -> Path:
        """Fetch the pinned upstream file into the cache, verified, written atomically."""
        url = entry.url(self.base_url)
        target = self.cache / entry.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=target.parent)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                expected_length = response.headers.get("Content-Length")
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
            if expected_length is not None and size != int(expected_length):
                raise UsageError(f"download of {url} was cut short: {size} of {expected_length} bytes")
            if size != entry.size or digest.hexdigest() != entry.sha256:
                raise UsageError(f"download of {url} does not match the rule set ({size} bytes, sha256 "
                                 f"{digest.hexdigest()[:16]}...; expected {entry.size} bytes, "
                                 f"{entry.sha256[:16]}...); nothing was saved")
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(f"cannot download {entry.file} from {url}: {reason}; offline? set "
                             "TINYHARNESS_MODEL_MIRROR to a folder with the models, or give "
                             "--model PATH") from None
        finally:
            Path(tmp).unlink(missing_ok=True)


def default_cache() -> Path:
    env = os.environ.get("TINYHARNESS_CACHE_DIR")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinyharness")) / "models"
