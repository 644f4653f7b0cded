"""The MLPerf Tiny system description (``systems/<system_desc_id>.json``): a template filled with
what the harness can detect, and its validation (``rules/system.schema.json``).

The MLCommons checker requires ``Status`` (available, preview or rdi, any case) and raises when a
``system_type`` key is present, so a tinyharness system file never has one.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from ..errors import UsageError

# Every key of mlperf-tiny.md section 7.4, in the order real submissions list them.
FIELDS: tuple[str, ...] = (
    "Submitter", "Division", "Status", "Board Name",
    "Board Memory capacity (not including SoC, processor, or accelerator)", "Board Memory type",
    "Board storage capacity", "Board storage type", "SoC Name",
    "SoC Memory capacity (not including processor or accelerator)", "SoC Memory type",
    "SoC storage capacity", "SoC storage type", "Processor(s) Name", "Processor(s) Frequencies",
    "Processor memory type and capacity", "Processor storage type and capacity", "Accelerator",
    "Accelerator(s) Frequencies", "Accelerator memory type and capacity",
    "Accelerator storage type and capacity", "Hardware Notes", "Inference Framework",
    "Software Libraries", "Operating System", "Other Software Stack", "Software Notes",
    "Quantization Method", "Training framework (open division)", "ML Model Compiler(s)",
    "General Compiler(s)", "Other Software", "Training and Quantization Notes",
)
STATUSES = ("available", "preview", "rdi")
LIMIT = 1 << 20  # bytes: a description is about 2 KB
DIVISIONS = {"closed": "Closed", "open": "Open"}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return ""


def _board() -> str:
    """Vendor and product from DMI (Linux), e.g. 'Dell Inc. PowerEdge R650'; '' when unknown."""
    parts = [_read(f"/sys/devices/virtual/dmi/id/{k}") for k in ("sys_vendor", "product_name")]
    return " ".join(p for p in parts if p and "to be filled" not in p.lower())


def _frequency() -> str:
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz.isdigit():
        return f"{int(khz) / 1e6:.2f} GHz (max)"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("cpu MHz"):
            try:
                return f"{float(line.split(':', 1)[1]) / 1e3:.2f} GHz (as reported by /proc/cpuinfo)"
            except ValueError:
                break
    return ""


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return f"{int(fields[1]) / 2**20:.1f} GiB system RAM"
    return ""


def _os_name() -> str:
    pretty = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    kernel = f"{platform.system()} {platform.release()}"
    return f"{pretty} ({kernel})" if pretty else kernel


def _runtimes(only: str | None) -> tuple[str, list[str]]:
    """(the SUT's runtime 'name version' or '', every installed SUT runtime as 'name version')."""
    from ..plugins import registry

    reg = registry()
    if only is not None:
        cls = reg.get(only)  # UsageError for an unknown SUT
        version = cls.runtime_version()
        framework = f"{cls.runtime} {version}" if cls.runtime and version else (cls.runtime or "")
        return framework, [framework] if framework else []
    found = []
    for name in sorted(reg.suts):
        cls = reg.suts[name]
        version = cls.runtime_version()
        if cls.runtime and version and f"{cls.runtime} {version}" not in found:
            found.append(f"{cls.runtime} {version}")
    return "", found


def describe(sut: str | None = None, submitter: str = "", division: str = "",
             status: str = "available") -> dict[str, Any]:
    """A system description with every section 7.4 field: what the harness detects on this host
    (CPU, memory, OS, Python, runtime versions from the SUT registry), empty strings elsewhere."""
    import numpy

    from .. import __version__
    from ..system import cpu_model, git_revision

    framework, libraries = _runtimes(sut)
    doc: dict[str, Any] = {key: "" for key in FIELDS}
    rev = git_revision()
    doc.update({
        "Submitter": submitter,
        "Division": DIVISIONS.get(division.lower(), "") if division else "",
        "Status": status,
        "Board Name": _board(),
        "Processor(s) Name": cpu_model(),
        "Processor(s) Frequencies": _frequency(),
        "Processor memory type and capacity": _memory(),
        "Inference Framework": framework,
        "Software Libraries": ", ".join(dict.fromkeys([f"tinyharness {__version__}",
                                                       f"numpy {numpy.__version__}", *libraries])),
        "Operating System": _os_name(),
        "Other Software Stack": f"Python {platform.python_version()} ({platform.python_implementation()})",
        "Software Notes": (f"Measured with tinyharness {__version__}"
                           + (f" ({rev})" if rev else "")
                           + (f", SUT {sut}" if sut else "") + "."),
    })
    return doc


def problems(doc: Any) -> list[tuple[str, str]]:
    """Every violation as (rule, message): 'system-status' for a bad Status, 'system-type' for a
    system_type key, 'system-json' for the rest of the schema."""
    from ..schemas import errors

    if not isinstance(doc, dict):
        return [("system-json", f"a system description is a JSON object, not {type(doc).__name__}")]
    found: list[tuple[str, str]] = []
    if "system_type" in doc:
        found.append(("system-type", "has a 'system_type' key; the MLPerf Tiny checker raises on it "
                                     "(remove the key)"))
    status = doc.get("Status")
    if not isinstance(status, str) or status.lower() not in STATUSES:
        found.append(("system-status", f"Status is {status!r}; it must be one of "
                                       f"{', '.join(STATUSES)}"))
    for line in errors(doc, "system"):  # 'path: message'
        if line.split(": ", 1)[0] in ("Status", "system_type") or "'Status' is a required" in line \
                or "False schema" in line:  # the only false schema is system_type's
            continue  # reported above, with its own rule
        found.append(("system-json", line))
    return found


def load(path: Path) -> dict[str, Any]:
    """A system description file, validated; UsageError naming the file and the first problem
    (a FIFO, a huge file or hostile JSON included: it is read bounded, through loads_json)."""
    from ..fileio import loads_json, read_bounded

    data = read_bounded(Path(path), LIMIT, "system description")
    try:
        doc = loads_json(data.decode("utf-8"), f"system description {path}")
    except UnicodeDecodeError as exc:
        raise UsageError(f"system description {path}: not UTF-8 text (byte {exc.start})") from None
    found = problems(doc)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UsageError(f"system description {path}: {found[0][0]}: {found[0][1]}{more}")
    return doc


def render(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
