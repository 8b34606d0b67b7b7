"""This sidecar's workload certificate, as TLS contexts for both directions.

A new certificate (rotation) or trust bundle (root rotation) builds new contexts and swaps them
in one assignment: connections already open keep the context they were made with, new ones get
the new one, so nothing is dropped.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from loom.snapshot.security import SPIFFE_SCHEME

log = logging.getLogger("loom.proxy.identity")


class IdentityError(Exception):
    """The certificate, key or trust bundle could not be loaded."""


@dataclass(frozen=True, slots=True)
class Contexts:
    server: ssl.SSLContext
    """Inbound: presents our certificate, requires and verifies the peer's."""
    client: ssl.SSLContext
    """Outbound: presents our certificate, verifies the server's chain (its SPIFFE ID is checked
    after the handshake against the cluster's allowed identities)."""
    spiffe_id: str
    expires_at: float


class IdentityStore:
    def __init__(self) -> None:
        self.contexts: Contexts | None = None
        self.rotations = 0

    @property
    def ready(self) -> bool:
        return self.contexts is not None

    @property
    def expires_at(self) -> float | None:
        return self.contexts.expires_at if self.contexts is not None else None

    @property
    def spiffe_id(self) -> str | None:
        return self.contexts.spiffe_id if self.contexts is not None else None

    def update(self, cert_file: str, key_file: str, bundle_file: str) -> None:
        """Load a certificate chain, its key and the trust bundle; raise IdentityError if any is bad
        (the contexts in use stay)."""
        try:
            server = _context(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, bundle_file)
            client = _context(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, bundle_file)
            decoded = ssl._ssl._test_decode_cert(cert_file)  # type: ignore[attr-defined]
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise IdentityError(f"cannot load the workload certificate {cert_file}: {exc}") from exc
        spiffe_id = spiffe_id_of(decoded)
        if spiffe_id is None:
            raise IdentityError(f"{cert_file} carries no spiffe:// URI SAN")
        expires_at = ssl.cert_time_to_seconds(decoded["notAfter"])
        self.contexts = Contexts(server, client, spiffe_id, float(expires_at))
        self.rotations += 1
        log.info("workload identity %s loaded (expires at %s)", spiffe_id, decoded["notAfter"])


def _context(protocol: int, cert_file: str, key_file: str, bundle_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cafile=bundle_file)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = False  # identities are SPIFFE URIs, checked after the handshake
    context.set_alpn_protocols(["loom-mtls/1", "http/1.1"])
    return context


def spiffe_id_of(peercert: dict[str, object] | None) -> str | None:
    """The spiffe:// URI SAN of a certificate as ``ssl`` decodes it (``getpeercert()``)."""
    if not peercert:
        return None
    for kind, value in peercert.get("subjectAltName", ()):  # type: ignore[attr-defined]
        if kind == "URI" and isinstance(value, str) and value.startswith(SPIFFE_SCHEME):
            return value
    return None
