"""The mesh the control-plane benchmark runs: Services, DestinationRules and VirtualServices as
YAML, and the workloads that register (the watching proxies and the idle endpoints).

Service *i* is ``svc-III`` in namespace ``ns-(i mod namespaces)``, port 80 (``http``) →
targetPort 8080, selecting ``app: svc-III``. Its DestinationRule has subsets ``v1`` and ``v2``
(by the ``version`` label) and its VirtualService splits 90/10 between them. Workloads are
dealt round-robin over the services (so every service has about ``endpoints / services`` of
them); every tenth workload of a service is ``version: v2``. The first ``proxies`` workloads in
that order are the watchers (with a sidecar); the rest are registered and then left alone.
Every workload has its own loopback address (``127.x.y.z``); nothing ever dials it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

APP_PORT = 8080
SERVICE_PORT = 80
OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
ADMIN_PORT = 15000
SPLIT = (90, 10)
CHANGED_SPLIT = (80, 20)
"""The weights the measured change writes into the first service's VirtualService."""


@dataclass(frozen=True)
class MeshShape:
    services: int
    endpoints: int
    """Registered workloads, watchers included."""
    proxies: int
    """Workloads with a sidecar that watch their snapshot (the first ``proxies`` of them)."""
    namespaces: int = 4
    idle_sidecars: bool = False
    """Register the idle workloads with a sidecar too (their snapshots are compiled, never fetched)."""


def service_name(i: int) -> str:
    return f"svc-{i:03d}"


def namespace_of(service: int, shape: MeshShape) -> str:
    return f"ns-{service % shape.namespaces}"


def _service_docs(i: int, shape: MeshShape, split: tuple[int, int]) -> list[dict[str, Any]]:
    name, namespace = service_name(i), namespace_of(i, shape)
    meta = {"name": name, "namespace": namespace}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": {"app": name},
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": APP_PORT}],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": meta,
            "spec": {
                "host": name,
                "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}},
                    {"name": "v2", "labels": {"version": "v2"}},
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "VirtualService",
            "metadata": meta,
            "spec": {
                "hosts": [name],
                "http": [
                    {
                        "route": [
                            {"destination": {"host": name, "subset": "v1"}, "weight": split[0]},
                            {"destination": {"host": name, "subset": "v2"}, "weight": split[1]},
                        ]
                    }
                ],
            },
        },
    ]


def service_yaml(i: int, shape: MeshShape, split: tuple[int, int] = SPLIT) -> str:
    return yaml.safe_dump_all(_service_docs(i, shape, split), sort_keys=False)


def write_config(directory: Path, shape: MeshShape) -> Path:
    """One file per service (as operators keep them); returns the file the change edits."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(shape.services):
        (directory / f"{service_name(i)}.yaml").write_text(service_yaml(i, shape))
    return directory / f"{service_name(0)}.yaml"


def change_text(shape: MeshShape) -> str:
    """The first service's file with its split moved from 90/10 to 80/20: every proxy routes to it."""
    return service_yaml(0, shape, CHANGED_SPLIT)


def address(n: int) -> str:
    """The n-th workload's address: 127.0.1.0 onwards (127.0.0.x is left to the rest of the host)."""
    n += 256
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass(frozen=True)
class WorkloadSpec:
    namespace: str
    name: str
    body: bytes
    """The registration, as ``POST /v1/workloads`` takes it (JSON)."""
    watches: bool
    service_account: str = "default"
    """Its identity's service account: the control plane takes its calls only with a client
    certificate of that account."""

    @property
    def account(self) -> tuple[str, str]:
        return (self.namespace, self.service_account)


def workloads(shape: MeshShape) -> list[WorkloadSpec]:
    found = []
    for n in range(shape.endpoints):
        service = n % shape.services
        ordinal = n // shape.services
        app, namespace = service_name(service), namespace_of(service, shape)
        name = f"{app}-{ordinal}"
        watches = n < shape.proxies
        data: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "service_account": app,
            "labels": {"app": app, "version": "v2" if ordinal % 10 == 9 else "v1"},
            "address": address(n),
            "app_ports": [APP_PORT],
        }
        if watches or shape.idle_sidecars:
            data["sidecar"] = {
                "outbound": OUTBOUND_PORT,
                "inbound": {str(APP_PORT): INBOUND_PORT},
                "admin": ADMIN_PORT,
            }
        found.append(WorkloadSpec(namespace, name, json.dumps(data).encode(), watches, app))
    return found
