"""Who is calling the API: a workload (its verified client certificate's SPIFFE ID) or the
operator (the bearer token in the state directory). Reads need neither; see docs/controlplane.md."""

from __future__ import annotations

import hmac
import json
import ssl
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from loom.controlplane.security.spiffe import SpiffeId

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def peer_identity(request: web.Request) -> SpiffeId | None:
    """The SPIFFE ID of the client certificate this connection presented (verified against the
    trust bundle in the handshake), if it has one that has not expired since."""
    transport = request.transport
    peercert = transport.get_extra_info("peercert") if transport is not None else None
    if not peercert:
        return None
    not_after = peercert.get("notAfter")
    if not_after and ssl.cert_time_to_seconds(not_after) <= time.time():
        return None  # a keep-alive connection outliving its certificate
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "URI" and isinstance(value, str):
            try:
                return SpiffeId.parse(value)
            except ValueError:
                continue
    return None


def is_operator(request: web.Request, operator_token: str) -> bool:
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), operator_token.encode())


def operator_only(operator_token: str, handler: Handler) -> Handler:
    """``handler``, answered only for a request with the operator's bearer token (else 401)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not is_operator(request, operator_token):
            return unauthorized("this needs the operator's bearer token")
        return await handler(request)

    return guarded


def unauthorized(message: str) -> web.Response:
    return web.Response(
        status=401,
        text=json.dumps({"error": message}),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="loom"'},
    )


def forbidden(message: str) -> web.Response:
    return web.Response(status=403, text=json.dumps({"error": message}), content_type="application/json")
