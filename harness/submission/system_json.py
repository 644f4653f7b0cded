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

# Every key of a real MLPerf Tiny system description (docs/mlperf-tiny-rules.md §9.3), in the order
# real submissions list them.
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
# Required fields a closed-division description may not leave blank ("N/A" where one does not
# apply): a result others compare with must say what it ran on. The notes may stay empty.
CLOSED_FILLED: tuple[str, ...] = (
    "Submitter", "Division", "Board Name", "Processor(s) Name", "Processor(s) Frequencies",
    "Processor memory type and capacity", "Accelerator", "Accelerator(s) Frequencies",
    "Accelerator memory type and capacity", "Inference Framework", "Software Libraries",
)
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


def _cpu_freq():
    """psutil's ``cpu_freq()`` (MHz: current, min, max; 0 where unknown), or None. On Linux it reads
    cpufreq's sysfs files, else /proc/cpuinfo's 'cpu MHz'; on macOS and Windows the OS's nominal
    figure. Detection never fails a command: any error is 'unknown'."""
    try:
        import psutil

        return psutil.cpu_freq()
    except Exception:  # noqa: BLE001 - ImportError, NotImplementedError, OSError, a psutil bug
        return None


def _frequency() -> str:
    freq = _cpu_freq()
    if freq is None:
        return ""
    if freq.max and freq.max > 0:
        return f"{freq.max / 1e3:.2f} GHz (max)"
    if freq.current and freq.current > 0:
        return f"{freq.current / 1e3:.2f} GHz (as reported by the OS)"
    return ""


def _memory() -> str:
    try:
        import psutil

        total = psutil.virtual_memory().total
    except Exception:  # noqa: BLE001 - as _cpu_freq
        return ""
    return f"{total / 2**30:.1f} GiB system RAM" if total > 0 else ""


def _os_name() -> str:
    """'PRETTY_NAME (kernel)' from os-release on Linux and BSDs (``platform.freedesktop_os_release``),
    'macOS 14.5 (Darwin 23.5.0)' on macOS, else the kernel alone ('Windows 10')."""
    kernel = f"{platform.system()} {platform.release()}".strip()
    pretty = ""
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME", "").strip()
    except OSError:  # no /etc/os-release nor /usr/lib/os-release
        mac = platform.mac_ver()[0]
        pretty = f"macOS {mac}" if mac else ""
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
             status: str = "available", recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """A system description with every field of :data:`FIELDS`: what the harness detects on this host
    (CPU, memory, OS, Python, runtime versions from the SUT registry), empty strings elsewhere; a
    SUT's own :meth:`~tinyharness.sut.SUT.system_fields` (a board it emulates or drives) win, given
    ``recorded``, a run's ``system.sut.extra``."""
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
    if sut is not None:
        from ..plugins import registry

        doc.update({k: v for k, v in registry().get(sut).system_fields(recorded).items() if k in doc})
    return doc


def blanks(doc: dict[str, Any]) -> list[str]:
    """The :data:`CLOSED_FILLED` fields that are missing or blank (a value of another type is the
    schema's to report)."""
    return [key for key in CLOSED_FILLED if key not in doc or isinstance(doc[key], str) and not doc[key].strip()]


def problems(doc: Any, division: str | None = None) -> list[tuple[str, str]]:
    """Every violation as (rule, message): 'system-status' for a bad Status, 'system-type' for a
    system_type key, 'system-blank' for a field the closed division needs filled (``division``
    "closed"), 'system-json' for the rest of the schema."""
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
    if division is not None and division.lower() == "closed":
        empty = [key for key in blanks(doc) if key in doc and key not in ("Submitter", "Division")]
        if empty:
            found.append(("system-blank", f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} "
                                          "empty; the closed division needs every system field filled "
                                          "(write 'N/A' where one does not apply)"))
    return found


def _normal(key: str) -> str:
    return " ".join(key.split()).casefold()


def lookup(doc: dict[str, Any], key: str) -> tuple[str | None, Any]:
    """(the key as the file spells it, its value) for ``key`` read tolerantly: the exact key, else
    one that differs only in case and spacing ('Operating System ', 'status'); (None, None)."""
    if key in doc:
        return key, doc[key]
    for spelled, value in doc.items():
        if isinstance(spelled, str) and _normal(spelled) == _normal(key):
            return spelled, value
    return None, None


def mlcommons_problems(doc: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """(violations as (rule, message), notes) of a system description by the MLCommons checker's
    rules alone, for a tree tinyharness did not make: a JSON object whose ``Status`` is available,
    preview or rdi in any case (read tolerant of the key's spelling; a note says when it is not
    spelled 'Status') and no ``system_type`` value (null is what the checker expects). The fields
    its results table copies are optional: a note lists the absent ones."""
    from .versions import SYSTEM_REQUIRED, SYSTEM_TABLE

    if not isinstance(doc, dict):
        return [("system-json", f"a system description is a JSON object, not {type(doc).__name__}")], []
    found: list[tuple[str, str]] = []
    notes: list[str] = []
    for key in SYSTEM_REQUIRED:
        spelled, value = lookup(doc, key)
        if spelled is None:
            found.append(("system-status", f"no {key!r} field; the MLCommons checker requires it "
                                           f"({', '.join(STATUSES)})"))
        elif not isinstance(value, str) or value.lower() not in STATUSES:
            found.append(("system-status", f"{key} is {value!r}; it must be one of {', '.join(STATUSES)}"))
        elif spelled != key:
            notes.append(f"{key!r} read from the key {spelled!r}; the MLCommons checker reads only {key!r}")
    spelled, value = lookup(doc, "system_type")
    if spelled is not None and value is not None:
        found.append(("system-type", f"{spelled!r} is {value!r}; the MLPerf Tiny checker raises unless "
                                     "it is absent or null"))
    absent = [key for key in SYSTEM_TABLE if lookup(doc, key)[0] is None]
    if absent:
        notes.append(f"no {', '.join(absent)}: optional, the MLCommons results table shows "
                     f"{'it' if len(absent) == 1 else 'them'} empty")
    return found, notes


def load(path: Path, division: str | None = None) -> dict[str, Any]:
    """A system description file, validated; UsageError naming the file and the first problem
    (a FIFO, a huge file or hostile JSON included: it is read bounded, through loads_json)."""
    from ..fileio import loads_json, read_bounded

    data = read_bounded(Path(path), LIMIT, "system description")
    try:
        doc = loads_json(data.decode("utf-8"), f"system description {path}")
    except UnicodeDecodeError as exc:
        raise UsageError(f"system description {path}: not UTF-8 text (byte {exc.start})") from None
    found = problems(doc, division)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UsageError(f"system description {path}: {found[0][0]}: {found[0][1]}{more}")
    return doc


def render(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
