"""Build the DUT firmware ELF for one benchmark, board and model, cached by a hash of its inputs.

The key covers every file under ``src/``, this package's ``*.py`` (the build flags and the model
compiler), the model's bytes, the board, the defines and memory limits and the toolchain's version,
so a cache hit is the same ELF without running gcc. A build runs in a temporary folder beside the
cache entry and is renamed into place when complete; a failed build keeps its folder and log.

Sizes come from the ELF's section headers: ``rom_bytes`` is everything loaded into ROM (code,
constants, the vector table and the initial values of ``.data``: Berkeley ``text + data``);
``ram_bytes`` is everything placed in RAM (``.data``, ``.bss``, the ``db`` upload buffer and the
fixed heap and stack reservations: Berkeley ``data + bss``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from tinyharness.errors import UsageError

from . import API, BOARD, KERNELS, MAIN, MODEL, PORT, ROOT, SRC
from .boards import Board, get_board

GCC = "arm-none-eabi-gcc"
DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "libstdc++-arm-none-eabi-newlib")
INSTALL_HINT = (f"install the Debian packages {', '.join(DEBIAN_PACKAGES)}: "
                f"sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}")
BENCHMARKS = ("kws01", "vww01", "ic01", "ic02", "ad01")
PRINTF_FLOAT = frozenset(BENCHMARKS) - {"kws01"}  # result lines printed with %f
ARCH_FLAGS = ("-mthumb", "-mfloat-abi=soft")  # soft float on every board: one library set
COMPILE_FLAGS = ("-O2", "-g", "-std=gnu11", "-Wall", "-ffunction-sections", "-fdata-sections",
                 "-ffp-contract=off")  # no fused multiply-adds: float results as the C is written
LINK_FLAGS = ("--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections")
KEY_VERSION = 1
GCC_TIMEOUT = 600  # seconds for one compile or the link (a large model's weights)
ELF_NAME, META_NAME, LOG_NAME = "firmware.elf", "firmware.json", "build.log"

_DEFINE = re.compile(r"[A-Za-z_]\w*(=.*)?\Z")
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")
_ERROR = re.compile(r"\berror:|undefined reference|ld returned")
_NO_LIBC = re.compile(r"cannot find -l\w+|cannot read spec file|nano\.specs: No such file")


class ModelSources(Protocol):
    """A compiled model: its C sources and the folders its headers are in."""

    sources: Sequence[Path]
    include_dirs: Sequence[Path]


@dataclass(frozen=True)
class Firmware:
    """A built firmware. ``key`` is the full cache key, ``cached`` whether gcc did not run."""

    elf: Path
    sha256: str
    board: str
    core: str
    benchmark: str
    rom_bytes: int
    ram_bytes: int
    toolchain: str
    key: str
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields a run record keeps (the path as a string)."""
        return {"elf": str(self.elf), "sha256": self.sha256, "board": self.board,
                "core": self.core, "benchmark": self.benchmark, "rom_bytes": self.rom_bytes,
                "ram_bytes": self.ram_bytes, "toolchain": self.toolchain, "key": self.key,
                "cached": self.cached}


class BuildFailed(UsageError):
    """gcc or ld refused the firmware; ``log`` is the build log kept on disk (None for a
    model that does not fit, whose message says all)."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


def default_cache_root() -> Path:
    """``$TINYHARNESS_CACHE_DIR/firmware``, else the user cache's ``firmware`` folder."""
    env = os.environ.get("TINYHARNESS_CACHE_DIR")
    if env:
        return Path(env) / "firmware"
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinyharness")) / "firmware"


@lru_cache(maxsize=4)
def _toolchain_line(gcc: str) -> str:
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, timeout=60,
                         check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def toolchain() -> tuple[str, str]:
    """(gcc path, first line of ``--version``); a one-line UsageError when it is not installed."""
    gcc = shutil.which(GCC)
    if gcc is None:
        raise UsageError(f"{GCC} not found: {INSTALL_HINT}")
    return gcc, _toolchain_line(gcc)


def _check_args(benchmark_id: str, board: Board, defines: Sequence[str],
                rom_limit: int | None, ram_limit: int | None) -> None:
    if benchmark_id not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {benchmark_id!r}; one of {', '.join(BENCHMARKS)}")
    for define in defines:
        if not _DEFINE.match(define):
            raise UsageError(f"bad define {define!r}: NAME or NAME=VALUE, without -D")
    for what, limit, (_, size) in (("rom_limit", rom_limit, board.rom), ("ram_limit", ram_limit, board.ram)):
        if limit is not None and not 0 < limit <= size:
            raise UsageError(f"{what} must be 1 to {size} bytes ({board.name}'s size), not {limit}")


def _model_files(model: Path | ModelSources) -> list[Path]:
    """The files whose bytes identify the model: the .tflite, or a compiled model's sources and
    the headers in its include folders."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise UsageError(f"model file not found: {path}")
        if path.suffix != ".tflite":
            raise UsageError(f"{path.name}: expected a .tflite model")
        return [path]
    files = [Path(p) for p in model.sources]
    for folder in model.include_dirs:
        files += sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix == ".h")
    return files


def _tree_files() -> list[Path]:
    src = sorted(p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return src + sorted(ROOT.glob("*.py"))


def cache_key(benchmark_id: str, board: Board, model_files: Sequence[Path],
              defines: Sequence[str], rom_limit: int | None, ram_limit: int | None,
              toolchain_line: str) -> str:
    """sha256 over the configuration, the firmware tree, the build scripts and the model."""
    digest = hashlib.sha256()

    def add(label: str, payload: bytes) -> None:
        digest.update(b"%s\0%d\0" % (label.encode(), len(payload)))
        digest.update(payload)

    config = {"version": KEY_VERSION, "benchmark": benchmark_id, "board": board.to_dict(),
              "defines": list(defines), "rom_limit": rom_limit, "ram_limit": ram_limit,
              "toolchain": toolchain_line}
    add("config", json.dumps(config, sort_keys=True).encode())
    for path in _tree_files():
        add(f"tree:{path.relative_to(ROOT).as_posix()}", path.read_bytes())
    for i, path in enumerate(model_files):
        add(f"model:{i}:{path.name}", path.read_bytes())
    return digest.hexdigest()


def build_firmware(benchmark_id: str, board: Board | str, model: Path | ModelSources, *,
                   cache_dir: Path | None = None, defines: Sequence[str] = (),
                   rom_limit: int | None = None, ram_limit: int | None = None,
                   jobs: int = 2) -> Firmware:
    """The firmware ELF for ``benchmark_id`` on ``board`` running ``model`` (a ``.tflite``,
    compiled here with :func:`tinyharness.firmware.compiler.compile_model`, or an object with
    ``.sources`` and ``.include_dirs``). ``cache_dir`` is the cache's root (entries are
    ``<root>/<key[:16]>/``); ``defines`` are ``NAME`` or ``NAME=VALUE``; ``rom_limit`` and
    ``ram_limit`` shrink the board's memories to emulate a smaller MCU."""
    board = get_board(board) if isinstance(board, str) else board
    defines = tuple(defines)
    _check_args(benchmark_id, board, defines, rom_limit, ram_limit)
    gcc, version = toolchain()
    key = cache_key(benchmark_id, board, _model_files(model), defines, rom_limit, ram_limit, version)
    root = Path(cache_dir) if cache_dir is not None else default_cache_root()
    entry = root / key[:16]
    hit = _load_entry(entry, key)
    if hit is not None:
        return hit
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".build-{key[:16]}-", dir=root))
    except OSError as exc:
        raise UsageError(f"cannot write to the firmware cache {root}: {exc.strerror or exc}; "
                         "set TINYHARNESS_CACHE_DIR to a writable folder") from None
    failed = root / f"failed-{key[:16]}"
    job = _Build(gcc, benchmark_id, board, defines, rom_limit, ram_limit, work, max(1, jobs))
    try:
        elf = job.run(model, failed / LOG_NAME)
    except BuildFailed as exc:
        _keep_failed(work, failed, exc)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    rom, ram = elf_sizes(elf, board.ram)
    meta = {"sha256": hashlib.sha256(elf.read_bytes()).hexdigest(), "board": board.name,
            "core": board.core, "benchmark": benchmark_id, "rom_bytes": rom, "ram_bytes": ram,
            "toolchain": version, "key": key}
    (work / META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(work / "obj", ignore_errors=True)
    if _load_entry(entry, key) is None:  # else another process built the same meanwhile
        shutil.rmtree(entry, ignore_errors=True)  # a stale or damaged entry
        try:
            os.rename(work, entry)
            return Firmware(elf=entry / ELF_NAME, cached=False, **meta)
        except OSError:
            pass
    shutil.rmtree(work, ignore_errors=True)
    hit = _load_entry(entry, key)
    if hit is None:
        raise UsageError(f"cannot store the firmware in the cache {entry}")
    return hit


def _load_entry(entry: Path, key: str) -> Firmware | None:
    """The cached firmware at ``entry``, or None (absent, incomplete or not matching)."""
    try:
        meta = json.loads((entry / META_NAME).read_text())
        elf = entry / ELF_NAME
        if meta.get("key") != key or hashlib.sha256(elf.read_bytes()).hexdigest() != meta["sha256"]:
            return None
        return Firmware(elf=elf, cached=True, **meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _keep_failed(work: Path, failed: Path, exc: BuildFailed) -> None:
    """Keep a failed build's folder (for its log) as ``failed``, or drop it when the message says
    everything."""
    shutil.rmtree(failed, ignore_errors=True)
    if exc.log is None:
        shutil.rmtree(work, ignore_errors=True)
        return
    try:
        os.rename(work, failed)
    except OSError:  # keep it where it is
        exc.log = work / LOG_NAME


class _Build:
    """One build in its own folder: compile every source in parallel, then link."""

    def __init__(self, gcc: str, benchmark_id: str, board: Board, defines: tuple[str, ...],
                 rom_limit: int | None, ram_limit: int | None, work: Path, jobs: int) -> None:
        self.gcc, self.benchmark, self.board, self.work, self.jobs = gcc, benchmark_id, board, work, jobs
        self.defines = (f"TH_BENCHMARK_{benchmark_id.upper()}", *defines)
        self.rom = (board.rom[0], rom_limit or board.rom[1])
        self.ram = (board.ram[0], ram_limit or board.ram[1])
        self.log, self.kept_log = work / LOG_NAME, work / LOG_NAME
        self._lock = threading.Lock()

    def run(self, model: Path | ModelSources, kept_log: Path) -> Path:
        """The linked ELF; a failure names ``kept_log``, where the caller keeps the log."""
        self.kept_log = kept_log
        sources, includes = self._model(model)
        board_dir = BOARD / self.board.family
        sources = _unique([*sorted(API.glob("*.c")), *sorted(PORT.glob("*.c")),
                           *sorted(board_dir.glob("*.c")), MAIN, *sources])
        includes = _unique([API, BOARD, board_dir, MODEL, KERNELS, *includes])
        flags = [*self.board.cpu_flags, *ARCH_FLAGS, *COMPILE_FLAGS, *(f"-D{d}" for d in self.defines),
                 *(f"-I{d}" for d in includes)]
        objects = self.work / "obj"
        objects.mkdir()
        targets = [objects / f"{i:03d}-{src.stem}.o" for i, src in enumerate(sources)]
        with ThreadPoolExecutor(self.jobs) as pool:
            results = list(pool.map(lambda st: self._gcc([*flags, "-c", str(st[0]), "-o", str(st[1])]),
                                    zip(sources, targets)))
        for result in results:
            if result.returncode != 0:
                raise self._failure(result.stderr, "compiling")
        return self._link(targets, board_dir)

    def _model(self, model: Path | ModelSources) -> tuple[list[Path], list[Path]]:
        if isinstance(model, (str, Path)):
            from .compiler import compile_model, kernel_sources

            compiled = compile_model(Path(model), self.work / "model", self.benchmark)
            return ([*map(Path, compiled.sources), *kernel_sources()],
                    list(map(Path, compiled.include_dirs)))
        return list(map(Path, model.sources)), list(map(Path, model.include_dirs))

    def _link(self, objects: list[Path], board_dir: Path) -> Path:
        (self.work / "memory.ld").write_text(
            "MEMORY\n{\n"
            f"    ROM (rx) : ORIGIN = {self.rom[0]:#010x}, LENGTH = {self.rom[1]}\n"
            f"    RAM (rwx) : ORIGIN = {self.ram[0]:#010x}, LENGTH = {self.ram[1]}\n"
            "}\n")
        elf = self.work / ELF_NAME
        extra = ["-u", "_printf_float"] if self.benchmark in PRINTF_FLOAT else []
        result = self._gcc([*self.board.cpu_flags, *ARCH_FLAGS, *LINK_FLAGS, *extra,
                            f"-L{self.work}", f"-T{board_dir / (self.board.family + '.ld')}",
                            f"-Wl,-Map={self.work / 'firmware.map'}", *map(str, objects),
                            "-lm", "-o", str(elf)])
        if result.returncode != 0:
            raise self._failure(result.stderr, "linking")
        return elf

    def _gcc(self, args: list[str]) -> subprocess.CompletedProcess:
        cmd = [self.gcc, *args]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=GCC_TIMEOUT,
                                    check=False)
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess(cmd, 1, "", f"error: timed out after {GCC_TIMEOUT} s")
        with self._lock, open(self.log, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}")
        return result

    def _failure(self, stderr: str, stage: str) -> BuildFailed:
        overflows = _OVERFLOW.findall(stderr)
        what = f"the {self.benchmark} firmware"
        if overflows:
            limits = {"ROM": self.rom[1], "RAM": self.ram[1]}
            parts = [f"{region}: overflowed by {int(n)} bytes (limit {limits.get(region, '?')} bytes)"
                     for region, n in overflows]
            return BuildFailed(f"{what} does not fit {self.board.name}'s {'; '.join(parts)}")
        if _NO_LIBC.search(stderr):
            return BuildFailed(f"{stage} {what} failed: the C library is missing ({INSTALL_HINT})",
                               self.kept_log)
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        first = next((ln for ln in lines if _ERROR.search(ln)), lines[0] if lines else "no message")
        return BuildFailed(f"{stage} {what} for {self.board.name} failed: {first[:400]} "
                           f"(log: {self.kept_log})", self.kept_log)


def _unique(paths: Sequence[Path]) -> list[Path]:
    seen: dict[Path, None] = {}
    for path in paths:
        seen.setdefault(Path(path).resolve(), None)
    return list(seen)


SHF_ALLOC, SHT_NOBITS = 0x2, 8


def elf_sizes(elf: Path, ram: tuple[int, int]) -> tuple[int, int]:
    """(ROM bytes, RAM bytes) from a 32-bit little-endian ELF's section headers: allocated
    sections with contents go to ROM, allocated sections inside ``ram`` (origin, size) to RAM."""
    data = elf.read_bytes()
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x01\x01":
        raise UsageError(f"{elf}: not a 32-bit little-endian ELF file")
    shoff = struct.unpack_from("<I", data, 0x20)[0]
    entsize, count = struct.unpack_from("<HH", data, 0x2E)
    rom = ram_bytes = 0
    for i in range(count):
        _, kind, flags, addr, _, size = struct.unpack_from("<6I", data, shoff + i * entsize)
        if not flags & SHF_ALLOC:
            continue
        if kind != SHT_NOBITS:
            rom += size
        if ram[0] <= addr < ram[0] + ram[1]:
            ram_bytes += size
    return rom, ram_bytes


MAX_ELF_BYTES = 256 << 20


def describe_elf(elf: Path, board: Board | str, benchmark_id: str) -> Firmware:
    """The record of a firmware built elsewhere (``--sut-option firmware=ELF``): its sha256 and
    sizes; the toolchain is unknown and the key is its checksum."""
    from tinyharness.fileio import read_bounded

    board = get_board(board) if isinstance(board, str) else board
    data = read_bounded(Path(elf), MAX_ELF_BYTES, "firmware")
    try:
        rom, ram = elf_sizes(Path(elf), board.ram)
    except struct.error:
        raise UsageError(f"{elf}: a damaged ELF file (its section headers run past its end)") from None
    digest = hashlib.sha256(data).hexdigest()
    return Firmware(elf=Path(elf).resolve(), sha256=digest, board=board.name, core=board.core,
                    benchmark=benchmark_id, rom_bytes=rom, ram_bytes=ram,
                    toolchain="unknown (a prebuilt firmware)", key=digest, cached=True)
