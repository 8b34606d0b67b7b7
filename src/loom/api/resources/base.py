"""The base of every resource model: YAML's camelCase names, unknown fields refused, frozen.

Models are read with ``model_validate(data, by_name=False)``: only the YAML (camelCase) names
are accepted from files, while Python code may build models with the snake_case names.

Fields Istio does not have but Loom accepts (because operators write them and expect them to
work) are declared with :func:`extension`; the loader lists the ones a resource uses in
``Resource.extensions`` so an analyzer can warn that Istio would not honour them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

EXTENSION_KEY = "x-loom-extension"


def camel(name: str) -> str:
    """``http1_max_pending_requests`` → ``http1MaxPendingRequests``; ``from_`` → ``from``.

    pydantic's ``to_camel`` turns ``consecutive_5xx_errors`` into ``consecutive5XxErrors``;
    Istio's name is ``consecutive5xxErrors``, so only letters after an underscore are raised.
    """
    first, *rest = name.rstrip("_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class ApiModel(BaseModel):
    """A part of a resource as written in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=camel,
        validate_by_alias=True,
        validate_by_name=True,
        frozen=True,
    )


def extension(note: str, **kwargs: Any) -> Any:
    """A field Istio does not define; ``note`` says what Istio uses instead and what Loom does."""
    return Field(default=None, json_schema_extra={EXTENSION_KEY: note}, **kwargs)


def extension_note(info: FieldInfo) -> str | None:
    """The note of an extension field, or None for a field Istio defines."""
    extra = info.json_schema_extra
    if isinstance(extra, dict):
        note = extra.get(EXTENSION_KEY)
        return note if isinstance(note, str) else None
    return None
