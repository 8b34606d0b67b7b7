"""``telemetry.istio.io`` (v1alpha1, v1) Telemetry: Loom reads ``tracing``.

Istio's reference: ``telemetry/v1/telemetry.proto``. A Telemetry with ``selector`` applies to the
workloads of its namespace it selects; without one, to its namespace, or to the whole mesh in the
root namespace. ``metrics`` and ``accessLogging`` are accepted and not interpreted.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.istio_security import PolicyTargetReference, WorkloadSelector
from loom.api.resources.values import Bool, Float, Str, invalid


class ProviderRef(ApiModel):
    name: Str


class TracingSelector(ApiModel):
    mode: Annotated[Str, Field(pattern="^(CLIENT_AND_SERVER|CLIENT|SERVER)$")] | None = None


class TracingSpec(ApiModel):
    match: TracingSelector | None = None
    providers: tuple[ProviderRef, ...] = ()
    random_sampling_percentage: Annotated[Float, Field(ge=0.0, le=100.0)] | None = None
    disable_span_reporting: Bool | None = None
    custom_tags: Any = None
    use_request_id_for_trace_sampling: Any = None
    enable_istio_tags: Any = None


class TelemetrySpec(ApiModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    tracing: tuple[TracingSpec, ...] = ()
    metrics: Any = None
    access_logging: Any = None

    @model_validator(mode="after")
    def _one_target(self) -> TelemetrySpec:
        if self.selector is not None and (self.target_ref is not None or self.target_refs):
            raise invalid(
                "`selector` and `targetRef` cannot be used together",
                "select workloads by labels (selector) or attach to a resource (targetRef), not both",
            )
        return self
