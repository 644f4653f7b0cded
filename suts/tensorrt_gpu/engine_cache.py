"""The on-disk cache of serialized TensorRT engines.

An engine is specific to the model, the TensorRT version that built it, the GPU (its tactics are
timed on that chip: name and compute capability) and the build options (precision, the batch the
optimization profile allows, the workspace limit). :func:`cache_key` hashes exactly those parts;
any change gives another key, so an engine is never deserialized where it was not built for (a
TensorRT version mismatch would fail to deserialize, another GPU of the same compute capability
would run with tactics timed elsewhere).

Layout, under ``ModelStore().cache / "tensorrt"``: ``<model>-<precision>-b<batch>-<key16>.engine``
and a ``.json`` sidecar beside it with the key, its parts, the engine's sha256 and the build time.
Both are written to a temporary file and renamed, the sidecar last, so a reader sees a complete
pair or none; an entry whose engine does not match its sidecar's sha256 is a miss (and rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyharness.errors import UsageError

MAX_ENGINE_BYTES = 4 << 30  # MLPerf Tiny engines are kilobytes to a few MB; a bound on the read
MAX_SIDECAR_BYTES = 1 << 20
FORMAT = 1  # the sidecar's layout version (a part of the key)


@dataclass(frozen=True)
class KeyParts:
    """Everything an engine depends on. ``cache_key`` hashes all of them."""

    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"
    precision: str  # fp32, fp16, int8
    max_batch: int  # the optimization profile's max (1: batch-1 engine)
    workspace_mb: int | None  # None: TensorRT's default limit


def cache_key(parts: KeyParts) -> str:
    """The sha256 (hex) of the parts as canonical JSON: deterministic, and different when any
    part differs."""
    text = json.dumps({"format": FORMAT, **asdict(parts)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A cache hit: the serialized engine and what its sidecar recorded."""

    engine: bytes
    key: str
    build_s: float  # how long the original build took
    path: Path


def default_root() -> Path:
    from tinyharness.model_store import ModelStore

    return ModelStore().cache / "tensorrt"


class EngineCache:
    """Serialized engines by :func:`cache_key`, in ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def path(self, parts: KeyParts, model_stem: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_stem)[:64] or "model"
        return self.root / f"{safe}-{parts.precision}-b{parts.max_batch}-{cache_key(parts)[:16]}.engine"

    def get(self, parts: KeyParts, model_stem: str) -> Entry | None:
        """The cached engine for ``parts``, or None when there is none or it does not check out
        (sidecar missing, another key, wrong size or sha256). Reads are bounded."""
        path, key = self.path(parts, model_stem), cache_key(parts)
        try:
            meta = json.loads(_read(path.with_suffix(".json"), MAX_SIDECAR_BYTES))
            if not isinstance(meta, dict) or meta.get("key") != key:
                return None
            data = _read(path, MAX_ENGINE_BYTES)
        except (OSError, ValueError):
            return None
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None
        return Entry(data, key, float(meta.get("build_s", 0.0)), path)

    def put(self, parts: KeyParts, model_stem: str, engine: bytes, build_s: float) -> Path:
        """Store ``engine`` atomically (engine first, then the sidecar that makes it valid)."""
        path, key = self.path(parts, model_stem), cache_key(parts)
        meta: dict[str, Any] = {"key": key, "parts": asdict(parts), "format": FORMAT,
                                "size": len(engine), "sha256": hashlib.sha256(engine).hexdigest(),
                                "build_s": round(build_s, 3)}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _write(path, engine)
            _write(path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
        except OSError as exc:
            raise UsageError(f"cannot write to the engine cache {self.root}: "
                             f"{exc.strerror or exc}; set TINYHARNESS_CACHE_DIR to a writable "
                             "folder") from None
        return path


def _read(path: Path, limit: int) -> bytes:
    """A regular file's bytes, at most ``limit`` (ValueError beyond, or for a FIFO/device)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        raise ValueError(f"{path}: not a regular file of at most {limit} bytes")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: more than {limit} bytes")
    return data


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
