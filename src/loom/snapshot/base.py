"""The base of every snapshot class, and the constrained types they share."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class Model(Struct, frozen=True, forbid_unknown_fields=True):
    """Immutable once built, compared field by field; an unknown field is an error.

    Every schema class says ``kw_only=True`` itself (msgspec applies it to the fields of the
    class that says it only): fields are passed by name, in any order of required and optional.
    """


class FieldError(ValueError):
    """A rule about one field, broken: reported at that field's path rather than the object's."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


NonEmptyStr = Annotated[str, Meta(min_length=1)]
Port = Annotated[int, Meta(ge=0, le=65535)]
"""A port to bind; 0 picks a free one."""
Percentage = Annotated[float, Meta(ge=0, le=100)]
