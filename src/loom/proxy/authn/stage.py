"""The inbound stage ``authenticate_jwt``: RequestAuthentication at the request path's head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loom.proxy.authn.errors import JwtError

if TYPE_CHECKING:
    from loom.proxy.codec.head import RequestHead
    from loom.proxy.http.exchange import Exchange

MAX_REALM_PATH = 256
"""Envoy cuts the request path in the challenge's realm to this many bytes."""


def authenticate_jwt(ex: Exchange) -> bool:
    """Verify the request's tokens; refuse a bad one (401, or 403 for its audience) with Envoy's
    text and a ``WWW-Authenticate`` challenge. Without JWT rules: nothing to do."""
    authenticator = ex.config.jwt_authn
    if authenticator is None:
        return False
    try:
        verified = authenticator.authenticate(ex.head)
    except JwtError as exc:
        return ex.reply(exc.status, exc.body, extra=[(b"www-authenticate", challenge(ex.head))])
    if verified is not None:
        ex.request_principal = verified.principal
        ex.jwt_claims = verified.payload
    return False


def challenge(head: RequestHead) -> bytes:
    """``Bearer realm="<original URI>", error="invalid_token"``, as Envoy answers a refused token."""
    scheme = head.hmap.get(b"x-forwarded-proto") or head.scheme or b"http"
    host = head.hmap.get(b"host", head.authority)
    path = head.target if not head.scheme else (head.path + b"?" + head.query if head.query else head.path)
    uri = scheme + b"://" + host + path[:MAX_REALM_PATH]
    return b'Bearer realm="' + uri.replace(b'"', b"%22") + b'", error="invalid_token"'
