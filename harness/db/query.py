"""Which runs to list: :class:`Filters`, from keyword arguments or from a query expression.

A query is ``key=value`` terms separated by spaces, all of which a run must match (no SQL, no
``--where``)::

    benchmark=kws01 sut=tflite-cpu,onnxruntime-cpu valid=true since=2026-12-01

A comma-separated value matches any of its values. Keys: benchmark, sut, scenario, mode, state
(done, failed, interrupted, running), sweep (a sweep id), node, valid (true or false), since and
until (ISO dates or times; UTC unless given with an offset; a date ``until`` includes that whole
day) and limit (the newest N). A value with spaces is quoted, as in a shell.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..errors import UsageError, did_you_mean
from .index import STATES

MODES = ("performance", "accuracy", "all")
TEXT_KEYS = ("benchmark", "sut", "scenario", "mode", "state", "sweep", "node")
KEYS = (*TEXT_KEYS, "valid", "since", "until", "limit")
MAX_LIMIT = 10_000_000
_TRUE, _FALSE = ("true", "yes", "1", "valid"), ("false", "no", "0", "invalid")


@dataclass(frozen=True)
class Filters:
    """What a run must match; an empty field matches every run. ``since`` and ``until`` are UTC
    bounds as index rows store times: ``since`` <= started < ``until``."""

    benchmark: tuple[str, ...] = ()
    sut: tuple[str, ...] = ()
    scenario: tuple[str, ...] = ()
    mode: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    sweep: tuple[str, ...] = ()
    node: tuple[str, ...] = ()
    valid: bool | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        for value in self.state:
            if value not in STATES:
                raise UsageError(f"state {value!r} is not one of {', '.join(STATES)}"
                                 f"{did_you_mean(value, STATES)}")
        for value in self.mode:
            if value not in MODES:
                raise UsageError(f"mode {value!r} is not one of {', '.join(MODES)}"
                                 f"{did_you_mean(value, MODES)}")
        if self.limit is not None and not 0 < self.limit <= MAX_LIMIT:
            raise UsageError(f"limit {self.limit} is out of range; give 1 to {MAX_LIMIT:,}")

    @classmethod
    def of(cls, **given: Any) -> "Filters":
        """Filters from Python values: a text filter takes a str (commas: any of) or a sequence;
        valid a bool or 'true'/'false'; since and until a str, date or datetime; None: any."""
        unknown = [k for k in given if k not in KEYS]
        if unknown:
            raise UsageError(f"no filter {unknown[0]!r}{did_you_mean(unknown[0], KEYS)}; filters: "
                             f"{', '.join(KEYS)}")
        values: dict[str, Any] = {}
        for key, value in given.items():
            if value is None or value == () or value == []:
                continue
            if key in TEXT_KEYS:
                values[key] = _texts(key, value)
            elif key == "valid":
                values[key] = value if isinstance(value, bool) else _boolean(str(value))
            elif key == "limit":
                values[key] = value if isinstance(value, int) else _integer(key, str(value))
            else:
                values[key] = _bound(key, value)
        return cls(**values)

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE clause over the ``runs`` table (aliased ``r``) and its parameters ("1" when
        everything matches)."""
        terms: list[str] = []
        params: list[Any] = []
        for key in TEXT_KEYS:
            values = getattr(self, key)
            if not values:
                continue
            marks = ", ".join("?" * len(values))
            if key == "sweep":  # the run's own link, or the cell that recorded it
                terms.append(f"(r.sweep_id IN ({marks}) OR r.run_id IN "
                             f"(SELECT run_id FROM cells WHERE sweep_id IN ({marks})))")
                params += [*values, *values]
            else:
                terms.append(f"r.{key} IN ({marks})")
                params += values
        if self.valid is not None:
            terms.append("r.valid = ?")
            params.append(int(self.valid))
        if self.since is not None:
            terms.append("r.started >= ?")
            params.append(self.since)
        if self.until is not None:
            terms.append("r.started < ?")
            params.append(self.until)
        return " AND ".join(terms) or "1", params


def parse_query(text: str) -> Filters:
    """A query expression (see the module's doc) as :class:`Filters`; a term that is not
    ``key=value``, an unknown key or a key given twice is a one-line UsageError."""
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"query {text!r}: {exc}; quote a value as in a shell") from None
    given: dict[str, str] = {}
    for term in terms:
        key, sep, value = term.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise UsageError(f"query term {term!r} is not key=value (e.g. sut=tflite-cpu); keys: "
                             f"{', '.join(KEYS)}")
        if key in given:
            raise UsageError(f"query names {key!r} twice; give one {key}= with comma-separated values")
        given[key] = value
    return Filters.of(**given)


def _texts(key: str, value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    items = [i.strip() for i in items if i.strip()]
    if not items:
        raise UsageError(f"filter {key}= names nothing; give a value (commas: any of several)")
    return tuple(dict.fromkeys(items))


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise UsageError(f"valid={text!r} is not true or false")


def _integer(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{key}={text!r} is not a whole number") from None


def _bound(key: str, value: Any) -> str:
    """``since`` or ``until`` as a UTC time string: a date's ``until`` is the next day's start
    (the whole day counts); a time's ``until`` the next second (times are stored to the second)."""
    if isinstance(value, datetime):
        moment, whole_day = value, False
    elif isinstance(value, date):
        moment, whole_day = datetime(value.year, value.month, value.day), True
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{key}={text!r} is not an ISO date or time (e.g. 2026-12-01 or "
                             "2026-12-01T14:30)") from None
        whole_day = len(text) == 10
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if key == "until":
        moment += timedelta(days=1) if whole_day else timedelta(seconds=1)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")
