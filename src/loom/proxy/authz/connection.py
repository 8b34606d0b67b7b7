"""Where authorization meets a live connection: its local destination, and the TCP listener's check.

An inbound TCP connection is decided once, when it is accepted and before the proxy connects
upstream; one that is denied is closed without a byte reaching the app (Envoy's network RBAC
filter does the same). Outbound listeners do not enforce authorization: the policies protect
the workload this proxy stands in front of.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from loom.proxy.original_dst import original_destination
from loom.snapshot.model import Direction, Listener

if TYPE_CHECKING:
    from loom.proxy.authz.engine import Authorizer
    from loom.proxy.authz.lazy import NoPolicies

log = logging.getLogger("loom.proxy.authz")

UNSPECIFIED = frozenset({"0.0.0.0", "::", ""})


class Transport(Protocol):
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def destination(
    config: Listener, original: tuple[str, int] | None, transport: Transport, need_ip: bool
) -> tuple[str, int]:
    """The address and port the peer connected to: the original destination of an intercepted
    connection, else the listener's (the socket's when the listener binds a wildcard or port 0)."""
    if original is not None:
        return original
    ip, port = config.address, config.port
    if port == 0 or (need_ip and ip in UNSPECIFIED):
        local = transport.get_extra_info("sockname")
        if local:
            ip, port = local[0], local[1]
    return ip, port


class TcpConnection(Protocol):
    """What ``allow_tcp`` reads of a TCP listener's accepted connection."""

    transport: Any
    peer_principal: str | None


def allow_tcp(conn: TcpConnection, config: Listener, authorizer: Authorizer | NoPolicies) -> bool:
    """Whether an accepted TCP connection may go on (always, on an outbound listener)."""
    if config.direction is not Direction.INBOUND or not authorizer.enabled:
        return True
    from loom.proxy.authz.request import AuthzRequest  # loaded with the policies: already imported

    transport = conn.transport
    peer = transport.get_extra_info("peername")
    original = original_destination(transport.get_extra_info("socket")) if config.original_dst else None
    dest_ip, dest_port = destination(config, original, transport, authorizer.needs_dest_ip)
    request = AuthzRequest(
        peer_ip=peer[0] if peer else "",
        peer_principal=conn.peer_principal,
        dest_port=dest_port,
        dest_ip=dest_ip,
        sni=getattr(conn, "sni", None) if authorizer.needs_sni else None,
    )
    decision = authorizer.check(request)
    if not decision.allowed and log.isEnabledFor(logging.DEBUG):
        log.debug(
            "listener %s: connection from %s denied (%s)",
            config.name,
            request.peer_ip,
            decision.policy or "no ALLOW policy matched",
        )
    return decision.allowed
