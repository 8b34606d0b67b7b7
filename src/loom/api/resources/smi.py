"""``split.smi-spec.io`` (v1alpha1-v1alpha4): TrafficSplit, as Linkerd's SMI extension reads it.

SMI's v1alpha1 typed a backend's weight as a Kubernetes quantity and later versions as an integer;
operators write both with every version (Linkerd's own docs print ``weight: 90m`` under v1alpha4), so
all versions accept either and keep the exact value as a ``Decimal``. Weights are relative: ``90m``
and ``10m`` split 9:1. ``matches`` (v1alpha3+) refer to ``HTTPRouteGroup`` resources.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import field_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import NonEmpty, Quantity, Str, invalid


class TrafficSplitBackend(ApiModel):
    service: Str
    weight: Quantity

    @field_validator("weight")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise invalid(f"weight {value} is negative", "weights are relative shares: use 0 or more")
        return value


class TrafficSplitMatch(ApiModel):
    kind: Str
    name: Str
    api_group: Str | None = None


class TrafficSplitSpec(ApiModel):
    service: Str
    backends: Annotated[tuple[TrafficSplitBackend, ...], NonEmpty]
    matches: tuple[TrafficSplitMatch, ...] = ()
