"""Durations as written in configuration: ``"250ms"``, ``"5s"``, ``"1m30s"``, ``"2h"`` or plain seconds.

Strings are summed exactly (as fractions) and rounded to a float once, so ``"9ms"`` is the
same float as ``0.009``; ``format_duration`` writes a float back without losing a digit, so a
dumped snapshot loads to an equal one.

A schema field typed ``Duration`` holds a ``Duration``: a float (seconds) that remembers it is
a duration. msgspec hands such fields to ``decode`` (reading) and ``encode`` (writing), the
hooks ``loom.snapshot.load`` passes to it. A plain float put in such a field from Python code
(``RetryPolicy(per_try_timeout=0.5)``) behaves the same, but is written back as a number of
seconds, which reads back as the same duration.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h)")
_UNIT_SECONDS = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}


def parse_duration(value: object) -> float:
    """Return seconds for a duration string (Go/Istio syntax) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '5s' or '250ms', not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '5s' or '250ms'")
    text = value.strip()
    if not text:
        raise ValueError("empty duration; write e.g. '5s' or '250ms'")
    pos, total = 0, Fraction(0)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {value!r}; write e.g. '5s', '250ms' or '1m30s'")
        total += Fraction(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return float(total)


def format_duration(seconds: float) -> str:
    """``0.25`` → ``"250ms"``, ``90.0`` → ``"90s"``; exact, never in exponent notation."""
    exact = Decimal(repr(float(seconds)))
    if exact and exact < 1:
        return f"{_plain(exact * 1000)}ms"
    return f"{_plain(exact)}s"


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Duration(float):
    """Seconds, as a float for arithmetic; read from ``"5s"``-style strings and written back as one."""

    __slots__ = ()


def decode(type_: type, value: Any) -> Any:
    """msgspec ``dec_hook``: build the schema's own types (only ``Duration``) from decoded values."""
    if type_ is Duration:
        return Duration(parse_duration(value))
    raise NotImplementedError(f"the snapshot schema has no type {type_!r}")


def encode(value: Any) -> Any:
    """msgspec ``enc_hook``: a ``Duration`` is written as a duration string."""
    if isinstance(value, Duration):
        return format_duration(value)
    raise NotImplementedError(f"cannot write {type(value).__name__} into a snapshot")
