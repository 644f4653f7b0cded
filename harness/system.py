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
        "cpu_count": os.cpu_count(),
        "argv": sys.argv[1:],
    }
