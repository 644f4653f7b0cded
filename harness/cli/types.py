"""Option types with bounds, shared by the commands: a number that is not finite, or out of its
range, is a one-line usage error naming the option and the range (exit 2), never a crash or a
hang further in. A choice matches in any case and names the closest choice when none does."""

from __future__ import annotations

import math
from typing import Sequence

import click

from ..errors import did_you_mean


class Finite(click.FloatRange):
    """A finite float within [min, max] (click's FloatRange lets nan and inf through)."""

    name = "number"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx) if not isinstance(value, float) else value
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def finite(min: float | None = None, max: float | None = None, *, min_open: bool = False,
           max_open: bool = False) -> Finite:
    return Finite(min=min, max=max, min_open=min_open, max_open=max_open)


def count(min: int = 0, max: int = 2**31 - 1) -> click.IntRange:
    """A whole number within [min, max] (bounded so that nothing sized by it can exhaust memory)."""
    return click.IntRange(min=min, max=max)


class Choice(click.Choice):
    """A choice matched in any case (``Offline`` is ``offline``), given to the command as the
    choice spells it; a value that matches none names the closest choices ("did you mean")."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__(list(choices), case_sensitive=False)

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            choices = [str(c) for c in self.choices]
            hint = did_you_mean(str(value), choices)
            if not hint:
                raise
            self.fail(f"{value!r} is not one of {', '.join(map(repr, choices))}{hint}", param, ctx)


def choice(*choices: str) -> Choice:
    return Choice(choices)


def registered_sut(ctx, param, value: str | None) -> str | None:
    """A click callback: a ``--sut`` NAME as its plugin registered it (any case), or a one-line
    UsageError naming the closest names."""
    if value is None:
        return None
    from ..plugins import registry

    return registry().get(value).name
