"""``AuthzRequest``: what an authorization decision looks at, read from the connection and the head.

One is built per HTTP request (or per TCP connection) from values the proxy already has; the
attributes only some policies need (the namespace in the peer's principal, an address as an
``ipaddress`` object, the normalized path, the Host with its port) are worked out when a matcher
first asks, and addresses and principals are parsed once per distinct value (small memo tables),
not once per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.proxy.authz.paths import normalize
from loom.proxy.authz.values import IpAddress, parse_ip
from loom.snapshot.security import principal_namespace

if TYPE_CHECKING:
    from loom.proxy.codec.head import RequestHead

SPIFFE = "spiffe://"
MEMO_LIMIT = 4096
"""Entries kept per memo table; a full table is emptied (addresses of a busy proxy come and go)."""

_ips: dict[str, IpAddress | None] = {}
_namespaces: dict[str, str | None] = {}


def ip_of(text: str) -> IpAddress | None:
    try:
        return _ips[text]
    except KeyError:
        pass
    if len(_ips) >= MEMO_LIMIT:
        _ips.clear()
    found = _ips[text] = parse_ip(text)
    return found


def namespace_of(principal: str) -> str | None:
    """``cluster.local/ns/shop/sa/web`` → ``shop``; None when the principal names no namespace."""
    try:
        return _namespaces[principal]
    except KeyError:
        pass
    if len(_namespaces) >= MEMO_LIMIT:
        _namespaces.clear()
    _namespaces[principal] = result = principal_namespace(principal)
    return result


class AuthzRequest:
    """The attributes of one request (``head`` set) or one TCP connection (``head`` None)."""

    __slots__ = (
        "_path",
        "claims",
        "dest_ip",
        "dest_port",
        "head",
        "peer_ip",
        "principal",
        "request_principal",
        "sni",
    )

    def __init__(
        self,
        *,
        peer_ip: str,
        peer_principal: str | None,
        dest_port: int,
        dest_ip: str = "",
        head: RequestHead | None = None,
        request_principal: str | None = None,
        claims: dict[str, object] | None = None,
        sni: str | None = None,
    ) -> None:
        self.peer_ip = peer_ip
        """The address of the connection's peer, as the socket gives it."""
        if peer_principal is not None and peer_principal.startswith(SPIFFE):
            peer_principal = peer_principal[len(SPIFFE) :]
        self.principal = peer_principal or None
        """The peer's identity proven with mutual TLS, without ``spiffe://``; None for plaintext."""
        self.dest_port = dest_port
        """The port the connection arrived on (its original destination when intercepted)."""
        self.dest_ip = dest_ip
        self.head = head
        self.request_principal = request_principal
        """``iss/sub`` of the request's verified JWT, if it carried one."""
        self.claims = claims
        self.sni = sni
        self._path: bytes | None = None

    # connection ---------------------------------------------------------------------------

    def namespace(self) -> str | None:
        principal = self.principal
        return namespace_of(principal) if principal is not None else None

    def peer_address(self) -> IpAddress | None:
        return ip_of(self.peer_ip)

    def remote_address(self) -> IpAddress | None:
        """The original client: the first ``X-Forwarded-For`` entry (HTTP), else the peer."""
        head = self.head
        forwarded = head.hmap.get(b"x-forwarded-for") if head is not None else None
        if forwarded:
            first = ip_of(forwarded.split(b",", 1)[0].strip().decode("latin-1"))
            if first is not None:
                return first
        return ip_of(self.peer_ip)

    def dest_address(self) -> IpAddress | None:
        return ip_of(self.dest_ip) if self.dest_ip else None

    # request --------------------------------------------------------------------------------

    def method(self) -> bytes | None:
        return self.head.method if self.head is not None else None

    def path(self) -> bytes | None:
        path = self._path
        if path is None and self.head is not None:
            path = self._path = normalize(self.head.path)
        return path

    def host(self) -> bytes | None:
        """The Host (authority) as the client sent it: lower-cased, with its port if it gave one."""
        head = self.head
        if head is None:
            return None
        return head.authority if head.port is None else b"%s:%d" % (head.authority, head.port)

    def header(self, lower_name: bytes) -> bytes | None:
        return self.head.hmap.get(lower_name) if self.head is not None else None

    def issuer_subject(self) -> tuple[str, str] | None:
        """The verified JWT's ``iss`` and ``sub`` (from its claims, else split from ``iss/sub``)."""
        claims = self.claims
        if claims is not None:
            iss, sub = claims.get("iss"), claims.get("sub")
            if isinstance(iss, str) and isinstance(sub, str):
                return iss, sub
        principal = self.request_principal
        if not principal:
            return None
        iss, _, sub = principal.rpartition("/")
        return iss, sub

    def claim(self, path: tuple[str, ...]) -> object:
        """The claim at ``path`` (nested objects), or None."""
        node: object = self.claims
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node
