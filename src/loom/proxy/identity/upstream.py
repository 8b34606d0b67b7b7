"""Mutual TLS towards an endpoint: which context to dial with, and whether the server proved an
identity the snapshot allows for the destination."""

from __future__ import annotations

import asyncio
import ssl

from loom.proxy.identity.store import IdentityStore, spiffe_id_of
from loom.snapshot.security import UpstreamTls


class PeerIdentityError(Exception):
    """The server's certificate is valid but names an identity that may not serve this destination."""


class UpstreamIdentity:
    """One cluster's view: the proxy's identity store and the SPIFFE IDs allowed to serve."""

    __slots__ = ("allowed", "store")

    def __init__(self, store: IdentityStore, tls: UpstreamTls) -> None:
        self.store = store
        self.allowed = frozenset(tls.server_identities)

    def context(self) -> ssl.SSLContext:
        contexts = self.store.contexts
        if contexts is None:
            raise PeerIdentityError("this proxy has no workload certificate yet")
        return contexts.client

    def verify(self, transport: asyncio.BaseTransport) -> str:
        """The server's SPIFFE ID, if it is one of the allowed; else PeerIdentityError."""
        spiffe_id = spiffe_id_of(transport.get_extra_info("peercert"))
        if spiffe_id not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            raise PeerIdentityError(f"server identity {spiffe_id or 'none'} is not one of {allowed}")
        return spiffe_id
