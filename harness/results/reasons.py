"""Why a result is INVALID: a :class:`Reason` is a code from :class:`ReasonCode` and a sentence.

Codes let readers decide by kind (the open division accepts an accuracy below the target; a
checker counts early-stopping failures) instead of matching the wording of a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any


class ReasonCode(str, Enum):
    """Kinds of rule a run can break; the value is what summary.json stores."""

    OVERRIDE = "override"  # a setting below the rule set's (min duration, count, window length)
    MIN_DURATION = "min-duration"
    MIN_QUERIES = "min-queries"
    EARLY_STOPPING = "early-stopping"
    WINDOW_COUNT = "window-count"
    WINDOW_DURATION = "window-duration"
    ACCURACY_TARGET = "accuracy-target"  # measured, below the quality target
    ACCURACY_UNDEFINED = "accuracy-undefined"  # the metric does not exist (AUC over one class)
    OTHER = "other"

    @property
    def is_accuracy(self) -> bool:
        """About the quality target, which the open division does not enforce."""
        return self in (ReasonCode.ACCURACY_TARGET, ReasonCode.ACCURACY_UNDEFINED)


# How schema-1 files (plain strings) worded each kind; the first match wins.
_LEGACY = (
    (re.compile(r"^(min_duration|min_query_count) overridden|^window duration shortened"), ReasonCode.OVERRIDE),
    (re.compile(r"^min duration not met"), ReasonCode.MIN_DURATION),
    (re.compile(r"^min (query|sample) count not met"), ReasonCode.MIN_QUERIES),
    (re.compile(r"^early stopping not met"), ReasonCode.EARLY_STOPPING),
    (re.compile(r"^\d+ performance windows, the rules require"), ReasonCode.WINDOW_COUNT),
    (re.compile(r"^window \d+ ran "), ReasonCode.WINDOW_DURATION),
    (re.compile(r"^(accuracy|AUC) .* is below the target"), ReasonCode.ACCURACY_TARGET),
    (re.compile(r"^AUC is undefined"), ReasonCode.ACCURACY_UNDEFINED),
)


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_value(cls, value: Any) -> "Reason":
        """A reason as summary.json stores it: ``{code, message}`` (schema 2) or a string (schema 1)."""
        if isinstance(value, dict):
            try:
                code = ReasonCode(value.get("code"))
            except ValueError:
                code = ReasonCode.OTHER
            return cls(code, str(value.get("message", "")))
        text = str(value)
        return cls(next((code for pattern, code in _LEGACY if pattern.search(text)), ReasonCode.OTHER), text)
