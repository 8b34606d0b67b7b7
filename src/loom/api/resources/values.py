"""Value types shared by the resource models: scalars as strict as Kubernetes, durations,
quantities, ports, percentages and Istio's ``StringMatch``.

Scalars are strict (``"5"`` is not a number and ``5`` is not a string) because the Kubernetes
API server refuses the same YAML; the error then says to quote or unquote the value.

Durations are read with :func:`loom.snapshot.durations.parse_duration`, the one duration parser
Loom has: Go/Istio syntax (``"250ms"``, ``"5s"``, ``"1m30s"``, ``"1.5h"``, units ``ns us µs ms s m
h``). A bare number is refused: Istio's durations are strings, and ``timeout: 5`` would be a
guess at the unit. The value is a ``Duration`` (a float of seconds).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from loom.api.resources.base import ApiModel
from loom.snapshot.durations import Duration as SnapshotDuration
from loom.snapshot.durations import parse_duration

Str = StrictStr
Int = StrictInt
Bool = StrictBool
Float = StrictFloat  # also takes a YAML integer: `sampling: 1`
UInt32 = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
HttpStatus = Annotated[StrictInt, Field(ge=100, le=599)]
Labels = dict[str, StrictStr]


def invalid(message: str, hint: str) -> PydanticCustomError:
    """A validation error with a message and a fix hint, both shown to the operator."""
    return PydanticCustomError("loom", "{message}", {"message": message, "hint": hint})


def only_one(model: ApiModel, names: tuple[str, ...], *, required: bool = False) -> None:
    """Refuse a model that sets more than one (or, if ``required``, none) of the YAML fields ``names``."""
    set_names = [alias for alias in names if getattr(model, _attr(model, alias)) is not None]
    if len(set_names) > 1:
        joined = ", ".join(f"`{name}`" for name in set_names)
        raise invalid(f"{joined} cannot be used together", f"keep only one of {_either(names)}")
    if required and not set_names:
        raise invalid(f"one of {_either(names)} is required", f"add one of {_either(names)}")


def _attr(model: ApiModel, alias: str) -> str:
    for name, info in type(model).model_fields.items():
        if info.alias == alias or name == alias:
            return name
    raise KeyError(alias)


def _either(names: tuple[str, ...]) -> str:
    quoted = [f"`{name}`" for name in names]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def _non_empty(items: tuple[Any, ...]) -> tuple[Any, ...]:
    if not items:
        raise invalid("the list is empty", "add at least one `- ` item")
    return items


NonEmpty = AfterValidator(_non_empty)
"""For ``Annotated[tuple[X, ...], NonEmpty]``: checked only once the items themselves are valid
(``Field(min_length=1)`` would report "0 items" when every item is invalid)."""


# --- durations ---------------------------------------------------------------------------------


def _duration(value: Any) -> SnapshotDuration:
    if isinstance(value, SnapshotDuration):  # built in Python: already a duration
        return value
    if not isinstance(value, str):
        raise invalid(
            f"a duration must be a string with a unit, not {yaml_type(value)}",
            f"write e.g. '{value}s' or '{value}ms'"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else "write e.g. '5s', '250ms' or '1m30s'",
        )
    try:
        return SnapshotDuration(parse_duration(value))
    except ValueError as exc:
        raise invalid(
            f"invalid duration {value!r}",
            "write a number and a unit (ns, us, ms, s, m, h), e.g. '5s', '250ms'",
        ) from exc


Duration = Annotated[SnapshotDuration, PlainValidator(_duration)]
"""An Istio duration (protobuf ``Duration`` written as a string), in seconds."""

_GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


def _gateway_duration(value: Any) -> SnapshotDuration:
    if isinstance(value, str) and not _GATEWAY_DURATION.match(value):
        raise invalid(
            f"invalid duration {value!r}",
            "Gateway API durations are 1-4 parts of up to 5 digits and a unit (h, m, s, ms), e.g. '1m30s'",
        )
    return _duration(value)


GatewayDuration = Annotated[SnapshotDuration, PlainValidator(_gateway_duration)]
"""A Gateway API duration (GEP-2257): ``^([0-9]{1,5}(h|m|s|ms)){1,4}$``, in seconds."""


# --- Kubernetes quantities ---------------------------------------------------------------------

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?$"
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes ``resource.Quantity`` as an exact Decimal: ``"90m"`` → 0.09, ``"1Ki"`` → 1024.

    Accepts YAML numbers too (``1``, ``0.5``). Suffixes: ``n u m k M G T P E`` (powers of ten),
    ``Ki Mi Gi Ti Pi Ei`` (powers of two) or a decimal exponent ``1e3``.
    """
    if isinstance(value, bool):
        raise ValueError("a quantity must be a number, not a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"a quantity must be a number or a string such as '90m', not {yaml_type(value)}")
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"invalid quantity {value!r}")
    number = Decimal(match["number"])
    suffix, exponent = match["suffix"], match["exponent"]
    if suffix in _BINARY:
        return number * (Decimal(2) ** _BINARY[suffix])
    if suffix:
        return number.scaleb(_DECIMAL[suffix])
    if exponent:
        return number.scaleb(int(exponent))
    return number


def _quantity(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise invalid(
            str(exc),
            "write a whole number (90) or a Kubernetes quantity: '900m' (0.9), '1k' (1000), '1Ki' (1024)",
        ) from exc


Quantity = Annotated[Decimal, PlainValidator(_quantity)]


# --- other shared scalars ----------------------------------------------------------------------


def _int_or_string(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(
            f"expected a port number or a port name, not {yaml_type(value)}",
            "write a number such as 8080 or the name of a container port such as http",
        )
    return value


IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]
"""Kubernetes ``IntOrString`` (e.g. a Service's ``targetPort``)."""


def yaml_type(value: object) -> str:
    """How a value reads in YAML terms, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


class StringMatch(ApiModel):
    """Istio's ``StringMatch``: at most one of exact, prefix, regex (RE2 syntax).

    An empty match (``{}``) is allowed: on headers it means "present with any value".
    """

    exact: Str | None = None
    prefix: Str | None = None
    regex: Str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        only_one(self, ("exact", "prefix", "regex"))
        return self


class Percent(ApiModel):
    """Istio's ``Percent``: a double in [0, 100]."""

    value: Annotated[StrictFloat, Field(ge=0.0, le=100.0)] | None = None
