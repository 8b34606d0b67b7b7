"""``metadata``: the Kubernetes object metadata Loom reads (name, namespace, labels, annotations).

Fields the API server fills in (``uid``, ``resourceVersion``, ``managedFields``, ...) are accepted
and ignored, so the output of ``kubectl get -o yaml`` loads as it is.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import Labels, Str, invalid

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_name(value: str) -> str:
    """An object name: a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'; ≤ 253)."""
    if len(value) > 253 or not _SUBDOMAIN.match(value):
        raise invalid(
            f"{value!r} is not a valid name",
            "use at most 253 lowercase letters, digits, '-' and '.', starting and ending with a letter "
            f"or digit, e.g. {_suggest(value)!r}",
        )
    return value


def check_namespace(value: str) -> str:
    """A namespace: a DNS-1123 label (lowercase letters, digits and '-'; ≤ 63)."""
    if len(value) > 63 or not _LABEL.match(value):
        raise invalid(
            f"{value!r} is not a valid namespace",
            "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, "
            f"e.g. {_suggest(value).replace('.', '-')!r}",
        )
    return value


def _suggest(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")
    return cleaned[:63] or "my-name"


class ObjectMeta(ApiModel):
    """Object metadata; a missing namespace means ``default`` (see ``Resource.namespace_given``)."""

    name: Str
    namespace: Str | None = None
    labels: Labels = {}
    annotations: Labels = {}
    # Written by the API server; accepted so exported objects load, never read.
    uid: Any = None
    resource_version: Any = None
    generation: Any = None
    creation_timestamp: Any = None
    deletion_timestamp: Any = None
    deletion_grace_period_seconds: Any = None
    generate_name: Any = None
    self_link: Any = None
    finalizers: Any = None
    owner_references: Any = None
    managed_fields: Any = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else check_namespace(value)


class OptionalNameMeta(ObjectMeta):
    """Metadata whose name may be left out (an ``IstioOperator`` read by ``istioctl install``)."""

    name: Str | None = None  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)
