"""Published system descriptions (``systems/<system_desc_id>.json``) read as submitters wrote them.

Keys are matched ignoring case, spaces and punctuation at their ends (``"Operating System "``);
values that are objects or lists (``"Software Libraries": {"TVM": {"SHA": ...}}``) become one line
of text. A file that is not quite JSON (a missing comma, a trailing one, a missing closing brace:
all in the published trees) is repaired where that is unambiguous, else its ``"key": "value"``
pairs are read line by line; either way a note says so. A results folder is matched to its
description by name: exactly, then ignoring case and punctuation, then by every part of a nested
name (``microtvm_cmsis_nn/NRF5340-DK`` to ``system_description_NRF5340DK_microtvm_cmsis_nn``),
then the submitter's only description.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..errors import UsageError
from ..fileio import loads_json

TEXT_LIMIT = 200  # characters of one field as tables show it

# field -> the keys submitters used for it, normalised (see _norm), preferred first
FIELDS: dict[str, tuple[str, ...]] = {
    "board": ("board name", "board"),
    "soc": ("soc name",),
    "processor": ("processor(s) name", "processor name", "processor(s)", "processor"),
    "frequency": ("processor(s) frequencies", "processor frequencies", "processor(s) frequency",
                  "processor frequency"),
    "accelerator": ("accelerator", "accelerator(s)", "accelerator name", "accelerator(s) name"),
    # Inference Framework, else the compiler or libraries where it is blank or "N/A" (syntiant,
    # greenwaves): what ran the model, for the framework column and filter
    "framework": ("inference framework", "framework", "ml model compiler(s)", "software libraries"),
    "software": ("software libraries", "software", "ml model compiler(s)"),
    "division": ("division",),
    "submitter": ("submitter",),
}


def _norm(key: str) -> str:
    return re.sub(r"\s+", " ", str(key)).strip(" \t:;,.").casefold()


def text(value, limit: int = TEXT_LIMIT) -> str:
    """A field's value as one line: objects as ``key value; ...``, lists joined with commas."""
    def flat(v, depth: int = 0) -> str:
        if depth > 8:
            return "..."
        if v is None:
            return ""
        if isinstance(v, dict):
            return "; ".join(" ".join(filter(None, [str(k).strip(), flat(x, depth + 1)])) for k, x in v.items())
        if isinstance(v, list):
            return ", ".join(filter(None, (flat(x, depth + 1) for x in v)))
        return str(v)

    line = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", flat(value)).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class SystemInfo:
    """One description: its name (the file name less .json), where it is, its fields and notes."""

    name: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


def _repaired(raw: str) -> str:
    """Commas missing between members and trailing before a closing bracket, closing braces
    missing at the end: the slips found in published descriptions."""
    fixed = re.sub(r",(\s*[}\]])", r"\1", raw.strip())
    fixed = re.sub(r'(["}\]\d]|true|false|null)(\s*\n\s*")', r"\1,\2", fixed)
    fixed = re.sub(r",\s*$", "", fixed)
    missing = fixed.count("{") - fixed.count("}")
    return fixed + "}" * missing if 0 < missing <= 8 else fixed


PAIR = re.compile(r'^\s*"([^"\n]{1,200})"\s*:\s*"([^"\n]*)"', re.M)


def _first_filled(duplicates: list[str]):
    """A json object_pairs_hook: a key given twice (a template pasted twice) keeps its first
    filled value, and is recorded in ``duplicates``."""
    def hook(pairs):
        out: dict = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
                if text(out[key]) or not text(value):
                    continue
            out[key] = value
        return out
    return hook


def parse(data: bytes, name: str, where: str) -> SystemInfo:
    """A description's bytes as fields; a UsageError (one line) when nothing can be read."""
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text; not a system description") from None
    notes: list[str] = []
    duplicates: list[str] = []
    try:
        loads_json(raw, where)  # the depth and size guards; the pairs are read below
        document = json.loads(raw, object_pairs_hook=_first_filled(duplicates))
    except UsageError as exc:
        why = str(exc).removeprefix(f"{where}: ").removeprefix("not readable JSON: ")
        try:
            document = json.loads(_repaired(raw), object_pairs_hook=_first_filled(duplicates))
            notes.append(f"system description not valid JSON ({why}); read after repairing "
                         "commas and braces")
        except (ValueError, RecursionError):
            document = {}
            for key, value in PAIR.findall(raw):
                if not document.get(key):
                    document[key] = value
            if not document:
                raise UsageError(f"{where}: not a system description: {exc}") from None
            notes.append(f'system description not valid JSON ({why}); its "key": "value" lines '
                         "read one by one")
    if not isinstance(document, dict):
        raise UsageError(f"{where}: holds a JSON {type(document).__name__}, not an object")
    if duplicates:
        keys_twice = ", ".join(repr(k.strip()) for k in dict.fromkeys(duplicates))
        notes.append(f"system description gives {keys_twice} more than once; the first filled "
                     "value kept")
    keys: dict = {}
    for key, value in document.items():
        if not text(keys.get(_norm(key))):
            keys[_norm(key)] = value
    fields = {}
    for field_name, spellings in FIELDS.items():
        found = next((keys[k] for k in spellings if k in keys and _filled(text(keys[k]))), None)
        if found is not None:
            fields[field_name] = text(found)
    return SystemInfo(name, where, fields, tuple(notes))


def _filled(value: str) -> bool:
    """A value that says something: not empty, not "N/A", "-" or "none"."""
    return bool(value) and value.strip().casefold() not in ("n/a", "na", "-", "none", "tbd")


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def match(system: str, descriptions: dict[str, SystemInfo]) -> tuple[SystemInfo | None, str]:
    """The description of the results folder ``system`` (a name, or ``a/b`` when results nest
    one folder deeper) and how it was found ("" when none was)."""
    if system in descriptions:
        return descriptions[system], ""
    squashed = {n: _squash(n) for n in descriptions}
    same = [n for n, s in squashed.items() if s == _squash(system)]
    if len(same) == 1:
        return descriptions[same[0]], f"system description {same[0]}.json matched ignoring case and punctuation"
    parts = [_squash(p) for p in system.split("/") if _squash(p)]
    containing = [n for n, s in squashed.items() if parts and all(p in s for p in parts)]
    if len(containing) == 1:
        return descriptions[containing[0]], f"system description {containing[0]}.json matched by name"
    if len(descriptions) == 1:
        only = next(iter(descriptions))
        return descriptions[only], f"system description {only}.json: the submitter's only one"
    return None, ""
