"""Helpers for the authorization tests: policies from plain dicts, requests and connections by hand."""

from __future__ import annotations

from typing import Any

import msgspec

from loom.proxy.authz.engine import Authorizer
from loom.proxy.authz.request import AuthzRequest
from loom.snapshot.security import AuthzPolicy
from tests.support.heads import build_head

PEER = "10.1.0.7"
WEB = "spiffe://cluster.local/ns/shop/sa/web"
"""A mesh peer's SPIFFE ID, as mutual TLS gives it."""


def policy(
    name: str = "shop/p", action: str = "ALLOW", rules: list[dict[str, Any]] | None = None
) -> AuthzPolicy:
    return msgspec.convert({"name": name, "action": action, "rules": rules or []}, AuthzPolicy)


def authorizer(*policies: AuthzPolicy) -> Authorizer:
    return Authorizer(list(policies))


def http(
    path: bytes = b"/",
    method: bytes = b"GET",
    *,
    authority: bytes = b"web.shop.svc.cluster.local",
    port: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    peer_ip: str = PEER,
    principal: str | None = None,
    dest_port: int = 8080,
    dest_ip: str = "10.1.0.1",
    request_principal: str | None = None,
    claims: dict[str, object] | None = None,
    sni: str | None = None,
) -> AuthzRequest:
    """One HTTP request as the authorize stage sees it (plaintext unless ``principal``)."""
    head = build_head(method=method, path=path, authority=authority, port=port, headers=headers)
    return AuthzRequest(
        peer_ip=peer_ip,
        peer_principal=principal,
        dest_port=dest_port,
        dest_ip=dest_ip,
        head=head,
        request_principal=request_principal,
        claims=claims,
        sni=sni,
    )


def tcp(
    *, peer_ip: str = PEER, principal: str | None = None, dest_port: int = 5432, dest_ip: str = "10.1.0.1"
) -> AuthzRequest:
    """One TCP connection: no head, no JWT."""
    return AuthzRequest(peer_ip=peer_ip, peer_principal=principal, dest_port=dest_port, dest_ip=dest_ip)


def allowed(auth: Authorizer, request: AuthzRequest) -> bool:
    return auth.check(request).allowed
