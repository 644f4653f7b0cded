"""What the host is: recorded in every summary so that a result can be reproduced and compared."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import __version__


CPUINFO = Path("/proc/cpuinfo")
# /proc/cpuinfo keys that name the CPU, best first: x86 and most others ('model name'), boards such
# as the Raspberry Pi ('Model'), ARM SoCs ('Hardware'), MIPS ('cpu model'), older ARM ('Processor').
CPUINFO_KEYS = ("model name", "Model", "Hardware", "cpu model", "Processor")
# Instruction-set extensions that decide which kernels a runtime picks, and so the numbers it
# gives: int8 dot products (x86 VNNI and AMX, ARM dotprod and i8mm) and bf16 / fp16 arithmetic.
# On x86 without VNNI, oneDNN multiplies u8 x s8 pairs with vpmaddubsw, whose int16 sums saturate
# ("Nuances of int8 Computations"): OpenVINO's int8 outputs there differ from the reference.
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx_vnni", "avx_vnni_int8", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme",  # aarch64 'Features'
)
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU model: from /proc/cpuinfo on Linux, the brand string on macOS, else whatever
    ``platform`` knows. psutil has no CPU name, and py-cpuinfo was measured and not taken: 1 MB,
    but ``get_cpu_info()`` takes 1.2 s and starts a Python and six programs (lscpu, dmesg, ...) to
    say what /proc/cpuinfo's 'model name' says."""
    try:
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip(), value.strip())
        for key in CPUINFO_KEYS:
            if key in fields:
                return fields[key]
    except OSError:
        pass
    if platform.system() == "Darwin":
        brand = _macos_brand()
        if brand:
            return brand
    return platform.processor() or platform.machine()


def cpu_features(cpuinfo: Path = CPUINFO) -> list[str] | None:
    """The host's :data:`ISA_FLAGS`, in that order, from /proc/cpuinfo's 'flags' (x86) or
    'Features' (ARM) line; None where the OS does not say (no /proc/cpuinfo, or no such line)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            have = set(value.split())
            return [flag for flag in ISA_FLAGS if flag in have]
    return None


def has_int8_dot_product(features: list[str] | None) -> bool | None:
    """Whether the CPU multiplies int8 vectors into int32 in one step (x86 VNNI / AMX, ARM
    dotprod / i8mm); None when its features are unknown."""
    if features is None:
        return None
    return any(flag in features for flag in INT8_DOT_FLAGS)


@lru_cache(maxsize=1)
def _macos_brand() -> str:
    """``sysctl -n machdep.cpu.brand_string`` (e.g. 'Apple M2'), '' when it cannot be read."""
    try:
        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The harness's own git revision when it runs from a checkout ('+dirty' with local changes)."""
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def describe_host() -> dict[str, Any]:
    import os

    import numpy

    return {
        "harness_version": __version__,
        "harness_git_revision": git_revision(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_count": os.cpu_count(),
        "argv": sys.argv[1:],
    }
