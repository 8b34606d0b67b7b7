"""Snapshot documents for tests, built as plain dicts (what a control plane would write)."""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]


def endpoint(port: int, version: str = "v1", app: str = "catalog", **extra: Any) -> Doc:
    return {
        "address": "127.0.0.1",
        "port": port,
        "workload": f"{app}-{version}",
        "namespace": "default",
        "service_account": app,
        "labels": {"app": app, "version": version},
        **extra,
    }


def cluster(name: str, ports: list[int], version: str = "v1", **extra: Any) -> Doc:
    return {
        "name": name,
        "service": "catalog.default.svc.cluster.local",
        "endpoints": [endpoint(p, version) for p in ports],
        **extra,
    }


def sidecar(
    routes: list[Doc],
    clusters: list[Doc],
    *,
    direction: str = "outbound",
    listener_limits: Doc | None = None,
    version: str = "1",
    extra_listeners: list[Doc] | None = None,
    telemetry: Doc | None = None,
) -> Doc:
    """One HTTP listener on an ephemeral port routing ``catalog`` (and ``*``) with ``routes``."""
    listener: Doc = {"name": direction, "direction": direction, "port": 0, "route_config": "routes"}
    if listener_limits:
        listener["limits"] = listener_limits
    doc: Doc = {
        "version": version,
        "node": {"workload": "client", "namespace": "default", "labels": {"app": "client"}},
        "admin": {"port": 0},
        "listeners": [listener, *(extra_listeners or [])],
        "route_configs": [
            {
                "name": "routes",
                "virtual_hosts": [
                    {
                        "name": "catalog",
                        "domains": ["catalog.default.svc.cluster.local", "*"],
                        "routes": routes,
                    }
                ],
            }
        ],
        "clusters": clusters,
    }
    if telemetry is not None:
        doc["telemetry"] = telemetry
    return doc


def route_to(*weighted: tuple[str, int], **action: Any) -> Doc:
    return {"route": {"destinations": [{"cluster": c, "weight": w} for c, w in weighted], **action}}
