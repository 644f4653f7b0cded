"""JSON Schema validation against the schemas in ``rules/*.schema.json``."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from .errors import UsageError
from .resources import data_dir


class SchemaError(Exception):
    """A document does not match its schema (a harness bug when the harness wrote it)."""


@lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema

    schema = json.loads((data_dir("rules") / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(document: Any, name: str) -> list[str]:
    """Every violation of schema ``name``, as 'path: message' lines (empty when valid)."""
    found = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def validate(document: Any, name: str, where: str = "", user_input: bool = True) -> None:
    """Raise on the first violations: UsageError for user input, SchemaError for our own output."""
    problems = errors(document, name)
    if problems:
        message = f"{where or name}: does not match {name}.schema.json: {problems[0]}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        raise (UsageError if user_input else SchemaError)(message)
