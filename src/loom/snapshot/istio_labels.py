"""Istio's standard metric labels, in one order shared by the sidecar and the control plane:
the sidecar records its istio_* series keyed by their values in this order, and pushes them to
the control plane (``POST /v1/telemetry``) as tuples in the same order."""

from __future__ import annotations

HEAD_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
)
"""The labels every istio_requests_* and istio_tcp_* series has, ahead of its own."""
