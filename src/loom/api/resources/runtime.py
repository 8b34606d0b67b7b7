"""``runtime.loom.dev/v1alpha1`` Workload: how ``loom up`` runs one workload on this machine.

Not a Kubernetes or Istio kind: it stands in for a Deployment (labels, service account, replicas,
the app's command) plus the app's port (a Service's ``targetPort``). The control plane's compiler
ignores it; ``loom up`` reads it (docs/runtime.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from loom.api.resources.base import ApiModel
from loom.api.resources.values import Int, Labels, NonEmpty, Str, invalid


class Readiness(ApiModel):
    """``path``: an HTTP GET on the app answers 2xx when it is ready."""

    path: Str

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise invalid(f"readiness path {value!r} does not start with `/`", "write e.g. `path: /healthz`")
        return value


class WorkloadSpec(ApiModel):
    labels: Labels = {}
    service_account: Str = "default"
    replicas: Annotated[Int, Field(ge=0, le=64)] = 1
    port: Annotated[Int, Field(ge=0, le=65535)] = 0
    command: Annotated[tuple[Str, ...], NonEmpty]
    working_dir: Str = "."
    env: dict[str, Str] = {}
    readiness: Readiness | None = None

    @field_validator("env")
    @classmethod
    def _names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not name or "=" in name or "\0" in name:
                raise invalid(f"environment variable name {name!r} is not valid", "use e.g. `LOG_LEVEL`")
        return env
