"""Snapshot documents for the schema tests, as plain dicts (what a control plane would write)."""

from __future__ import annotations

import copy
from typing import Any

Doc = dict[str, Any]

ROUTE = "route_configs[0].virtual_hosts[0].routes[0]"


def minimal() -> Doc:
    return {"node": {"workload": "web"}}


def http_sidecar() -> Doc:
    """A valid snapshot: one outbound HTTP listener, one route config, two clusters, one TCP listener."""
    return copy.deepcopy(
        {
            "version": "7",
            "node": {"workload": "web", "labels": {"app": "web"}},
            "listeners": [
                {"name": "outbound", "direction": "outbound", "port": 15001, "route_config": "outbound"},
                {
                    "name": "db",
                    "direction": "outbound",
                    "protocol": "tcp",
                    "port": 15432,
                    "tcp": {"destinations": [{"cluster": "db"}]},
                },
            ],
            "route_configs": [
                {
                    "name": "outbound",
                    "virtual_hosts": [
                        {
                            "name": "catalog",
                            "domains": ["catalog.default.svc.cluster.local"],
                            "routes": [
                                {
                                    "name": "main",
                                    "route": {
                                        "destinations": [
                                            {"cluster": "catalog-v1", "weight": 90},
                                            {"cluster": "catalog-v2", "weight": 10},
                                        ]
                                    },
                                }
                            ],
                        }
                    ],
                }
            ],
            "clusters": [
                {"name": "catalog-v1", "endpoints": [{"address": "127.0.0.1", "port": 9081}]},
                {"name": "catalog-v2", "endpoints": [{"address": "127.0.0.1", "port": 9082}]},
                {"name": "db", "protocol": "tcp", "endpoints": [{"address": "127.0.0.1", "port": 5432}]},
            ],
        }
    )


def with_route(route: Doc) -> Doc:
    """``http_sidecar()`` whose only route is ``route``."""
    doc = http_sidecar()
    doc["route_configs"][0]["virtual_hosts"][0]["routes"] = [route]
    return doc


def with_cluster(**fields: Any) -> Doc:
    """``http_sidecar()`` whose first cluster also has ``fields``."""
    doc = http_sidecar()
    doc["clusters"][0].update(fields)
    return doc
