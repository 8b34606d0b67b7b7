"""Who is on each end of a request, in the terms of Istio's metric labels."""

from __future__ import annotations

from dataclasses import dataclass

from loom.snapshot.model import Endpoint, Node
from loom.snapshot.security import principal_namespace, spiffe_id

UNKNOWN = "unknown"
MUTUAL_TLS = "mutual_tls"
"""connection_security_policy of a connection whose peer proved its identity with a certificate."""
LATEST = "latest"
"""Istio's canonical revision when a workload declares none."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One side of a request. Empty strings count as unknown."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    principal: str = UNKNOWN
    """The SPIFFE ID; known only when the connection is mutual TLS."""
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = LATEST
    cluster: str = UNKNOWN

    @classmethod
    def from_labels(
        cls,
        workload: str,
        namespace: str,
        labels: dict[str, str],
        *,
        principal: str = UNKNOWN,
        cluster: str = UNKNOWN,
    ) -> PeerInfo:
        """Derive app, version and the canonical service from workload labels as Istio does."""
        app = labels.get("app") or labels.get("app.kubernetes.io/name") or UNKNOWN
        version = labels.get("version") or labels.get("app.kubernetes.io/version") or UNKNOWN
        canonical_service = (
            labels.get("service.istio.io/canonical-name")
            or labels.get("app.kubernetes.io/name")
            or labels.get("app")
            or workload
            or UNKNOWN
        )
        canonical_revision = (
            labels.get("service.istio.io/canonical-revision")
            or labels.get("app.kubernetes.io/version")
            or labels.get("version")
            or LATEST
        )
        return cls(
            workload=workload or UNKNOWN,
            namespace=namespace or UNKNOWN,
            principal=principal or UNKNOWN,
            app=app,
            version=version,
            canonical_service=canonical_service,
            canonical_revision=canonical_revision,
            cluster=cluster or UNKNOWN,
        )

    @classmethod
    def from_principal(cls, principal: str) -> PeerInfo:
        """A peer known only by the SPIFFE ID its certificate proved: principal and namespace."""
        return cls(namespace=principal_namespace(principal) or UNKNOWN, principal=principal)

    @classmethod
    def from_node(cls, node: Node, *, mtls: bool = False, cluster: str = UNKNOWN) -> PeerInfo:
        """This proxy's own workload; ``mtls`` fills the principal from its SPIFFE identity."""
        principal = spiffe_id(node.trust_domain, node.namespace, node.service_account) if mtls else UNKNOWN
        return cls.from_labels(
            node.workload, node.namespace, node.labels, principal=principal, cluster=cluster
        )

    @classmethod
    def from_endpoint(
        cls, endpoint: Endpoint, *, trust_domain: str, mtls: bool = False, cluster: str = UNKNOWN
    ) -> PeerInfo:
        """The workload behind an upstream endpoint, as the control plane described it."""
        known_identity = endpoint.namespace != UNKNOWN and endpoint.service_account != UNKNOWN
        principal = (
            spiffe_id(trust_domain, endpoint.namespace, endpoint.service_account)
            if mtls and known_identity
            else UNKNOWN
        )
        workload = "" if endpoint.workload == UNKNOWN else endpoint.workload
        return cls.from_labels(
            workload, endpoint.namespace, endpoint.labels, principal=principal, cluster=cluster
        )


def service_name_and_namespace(service: str, fallback_namespace: str = UNKNOWN) -> tuple[str, str]:
    """``catalog.default.svc.cluster.local`` → (``catalog``, ``default``).

    A host that is not a Kubernetes service name (``api.example.com``) is its own name, in the
    destination's namespace when known, as Istio reports ServiceEntry hosts.
    """
    if not service or service == UNKNOWN:
        return UNKNOWN, UNKNOWN
    parts = service.split(".")
    if len(parts) >= 3 and parts[2] == "svc" and parts[0] and parts[1]:
        return parts[0], parts[1]
    return service, fallback_namespace or UNKNOWN
