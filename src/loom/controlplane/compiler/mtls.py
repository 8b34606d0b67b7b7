"""Mutual TLS on the calling side: which endpoints a sidecar talks mutual TLS to, and whom it trusts there.

**Auto mTLS** (``AutoMtls``, applied while services are built): without a DestinationRule ``tls``,
an endpoint gets ``mtls: true`` when

- it is a registered workload whose sidecar fronts the port (``sidecar.inbound[targetPort]``), or
- it has no sidecar Loom knows of (a WorkloadEntry, a ServiceEntry endpoint) but carries Istio's
  label ``security.istio.io/tlsMode: istio`` (a VM with its own sidecar),

and the server's PeerAuthentication does not DISABLE mutual TLS on that port (the workload's port:
the targetPort for a sidecar, the endpoint's own port otherwise) — Istio's auto mTLS looks at the
server's policy too. ``meshConfig.enableAutoMtls: false`` turns it off, and a ServiceEntry with
``location: MESH_EXTERNAL`` never gets it, as in Istio.

**DestinationRule** ``tls.mode`` (``upstream_tls``, per cluster, with the traffic policy's precedence:
top level, ``portLevelSettings``, subset):

| mode | endpoints |
| --- | --- |
| ``DISABLE`` (or a ``tls`` without ``mode``, Istio's default) | plaintext, all |
| ``ISTIO_MUTUAL`` | mutual TLS, all (even without a sidecar, whatever the server's policy) |
| ``SIMPLE``, ``MUTUAL`` | not supported yet (TLS to non-mesh servers): as auto mTLS has them; warned |

**Whom to trust**: ``Cluster.tls.server_identities`` are the SPIFFE IDs
``spiffe://<trust domain>/ns/<namespace>/sa/<service account>`` of the mutual-TLS endpoints, with the
ServiceEntry's ``subjectAltNames`` and, under ``ISTIO_MUTUAL``, the DestinationRule's
``tls.subjectAltNames`` added — sorted, each once. A cluster gets ``tls`` only when one of its
endpoints has ``mtls``. When no identity at all is known for them (no service account, no
``subjectAltNames``), the mutual-TLS endpoints are left out, with a warning: no certificate could pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from msgspec.structs import replace

from loom.api.resources.istio_networking import ClientTLSSettings
from loom.controlplane.compiler.destination_rules import Located
from loom.controlplane.compiler.diagnostics import Warnings
from loom.controlplane.compiler.model import Member, Service
from loom.controlplane.compiler.peer_authentication import PeerAuthentications, PeerModes
from loom.snapshot.model import Endpoint
from loom.snapshot.security import MtlsMode, UpstreamTls, spiffe_id

TLS_MODE_LABEL = "security.istio.io/tlsMode"
"""Istio's endpoint label for "this workload has a sidecar that speaks Istio's mutual TLS"."""
ISTIO_TLS_MODE = "istio"

UNKNOWN_SERVICE_ACCOUNT = "unknown"
"""``Endpoint.service_account`` of an endpoint with no service account (an external host)."""

_UNSUPPORTED_UNDER_ISTIO_MUTUAL = (
    ("sni", "sni"),
    ("insecure_skip_verify", "insecureSkipVerify"),
)


@dataclass
class AutoMtls:
    """Auto mTLS for the endpoints ``services`` builds; the server's modes are resolved once per workload."""

    peers: PeerAuthentications
    _modes: dict[tuple[str, str], PeerModes] = field(default_factory=dict)
    _entry_modes: dict[tuple[str, tuple[tuple[str, str], ...]], PeerModes] = field(default_factory=dict)

    def member(self, member: Member, target_port: int, port: int) -> bool:
        """``member`` reached on ``port`` (its endpoint port) for the service's ``target_port``."""
        workload = member.workload
        if workload.sidecar is not None:
            if target_port not in workload.sidecar.inbound:
                return False  # the app is reached directly, not through its sidecar
            server_port = target_port
        elif workload.labels.get(TLS_MODE_LABEL) == ISTIO_TLS_MODE:
            server_port = port
        else:
            return False
        modes = self._modes.get(workload.key)
        if modes is None:
            modes = self._modes[workload.key] = self.peers.resolve(workload.namespace, workload.labels)
        return modes.for_port(server_port) is not MtlsMode.DISABLE

    def entry(self, namespace: str, labels: Mapping[str, str], port: int) -> bool:
        """A ServiceEntry endpoint of ``namespace`` with ``labels``, on ``port``."""
        if labels.get(TLS_MODE_LABEL) != ISTIO_TLS_MODE:
            return False
        key = (namespace, tuple(sorted(labels.items())))
        modes = self._entry_modes.get(key)
        if modes is None:
            modes = self._entry_modes[key] = self.peers.resolve(namespace, labels)
        return modes.for_port(port) is not MtlsMode.DISABLE


def upstream_tls(
    found: Located | None,
    endpoints: list[Endpoint],
    service: Service,
    trust_domain: str,
    warnings: Warnings,
) -> tuple[list[Endpoint], UpstreamTls | None]:
    """A cluster's endpoints with the DestinationRule ``tls`` (``found``, if any) applied, and its ``tls``."""
    names: Sequence[str] = ()
    if found is not None:
        settings: ClientTLSSettings = found.value
        mode = settings.mode or "DISABLE"
        if mode == "DISABLE":
            endpoints = [replace(e, mtls=False) if e.mtls else e for e in endpoints]
        elif mode == "ISTIO_MUTUAL":
            endpoints = [e if e.mtls else replace(e, mtls=True) for e in endpoints]
            names = settings.subject_alt_names
            for attribute, name in _UNSUPPORTED_UNDER_ISTIO_MUTUAL:
                if getattr(settings, attribute):
                    warnings.add(
                        f"`{name}` is not supported; ignored", found.resource, f"{found.path}.{name}"
                    )
        else:
            warnings.add(
                f"tls mode {mode} (TLS to a server outside the mesh, with your certificates) is not "
                "supported yet; the endpoints get mutual TLS where auto mTLS gives it (a sidecar), "
                "else plaintext",
                found.resource,
                f"{found.path}.mode",
            )
    if not any(e.mtls for e in endpoints):
        return endpoints, None
    identities = {
        spiffe_id(trust_domain, e.namespace, e.service_account)
        for e in endpoints
        if e.mtls and e.service_account not in ("", UNKNOWN_SERVICE_ACCOUNT)
    }
    identities.update(service.subject_alt_names)
    identities.update(names)
    if identities:
        return endpoints, UpstreamTls(server_identities=sorted(identities))
    left_out = ", ".join(f"{e.address}:{e.port}" for e in endpoints if e.mtls)
    resource, path = (found.resource, found.path) if found is not None else (service.resource, "")
    warnings.add(
        f"mutual TLS to {service.fqdn} ({left_out}) cannot check the server: no service account is known "
        "for it; those endpoints are left out (give `tls.subjectAltNames`, or the endpoints' serviceAccount)",
        resource,
        path,
    )
    return [e for e in endpoints if not e.mtls], None
