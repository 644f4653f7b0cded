"""Option types with bounds, shared by the commands: a number that is not finite, or out of its
range, is a one-line usage error naming the option and the range (exit 2), never a crash or a
hang further in."""

from __future__ import annotations

import math

import click


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
