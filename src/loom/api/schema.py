"""Questions about the models asked by path: which fields are allowed at a place (for "did you
mean"), and which extension fields (not Istio's) a loaded resource uses."""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from loom.api import paths
from loom.api.resources.base import extension_note


def allowed_fields(model: type[BaseModel], loc: Iterable[object]) -> list[str] | None:
    """The YAML names of the fields of the model found at ``loc`` (None if ``loc`` is no model)."""
    found = type_at(model, loc)
    if isinstance(found, type) and issubclass(found, BaseModel):
        return [info.alias or name for name, info in found.model_fields.items()]
    return None


def type_at(model: type[BaseModel], loc: Iterable[object]) -> Any:
    """The annotated type at ``loc`` below ``model``, Optional and Annotated unwrapped."""
    current: Any = model
    for item in loc:
        if item == "[key]":
            continue
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = _field(current, item)
            if info is None:
                return None
            current = info.annotation
            continue
        origin = get_origin(current)
        args = get_args(current)
        if origin in (tuple, list) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    return _unwrap(current)


def _field(model: type[BaseModel], key: object) -> Any:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return info
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def extensions_used(model: BaseModel, prefix: str) -> dict[str, str]:
    """Path → note of every extension field set in ``model`` and below it, in document order."""
    found: dict[str, str] = {}
    _walk(model, prefix, found)
    return found


def _walk(value: Any, path: str, found: dict[str, str]) -> None:
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        for name in fields:
            if name not in value.model_fields_set:
                continue
            info = fields[name]
            child = paths.join(path, info.alias or name)
            note = extension_note(info)
            if note is not None:
                found[child] = note
            _walk(getattr(value, name), child, found)
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            _walk(item, paths.join(path, index), found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, paths.join(path, key), found)
