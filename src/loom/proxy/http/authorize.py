"""The ``authorize`` stage (inbound only): the workload's authorization policies decide the request.

It runs after the request's JWT (if any) has been verified and before routing, as Envoy's RBAC
filter does. A denied request is answered ``403 RBAC: access denied`` and never reaches the app;
Envoy sets no response flag for it. An AUDIT policy that matched marks the exchange
(``ex.audited``) whatever the decision.
"""

from __future__ import annotations

import logging

from loom.proxy.authz import AuthzRequest
from loom.proxy.authz.connection import destination
from loom.proxy.http.exchange import Exchange

log = logging.getLogger("loom.proxy.authz")

DENIED_STATUS = 403
DENIED_BODY = b"RBAC: access denied"


def authorize(ex: Exchange) -> bool:
    authorizer = ex.config.authorizer
    if not authorizer.enabled:
        return False
    conn = ex.conn
    dest_ip, dest_port = destination(
        conn.listener.config, conn.original_dst, conn.transport, authorizer.needs_dest_ip
    )
    request = AuthzRequest(
        peer_ip=conn.peer_ip,
        peer_principal=conn.peer_principal,
        dest_port=dest_port,
        dest_ip=dest_ip,
        head=ex.head,
        request_principal=ex.request_principal,
        claims=ex.jwt_claims,
        sni=getattr(conn, "sni", None) if authorizer.needs_sni else None,
    )
    decision = authorizer.check(request)
    if decision.audited:
        ex.audited = True
    if decision.allowed:
        return False
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "request %s from %s denied (%s)",
            ex.head,
            conn.peer_ip,
            decision.policy or "no ALLOW policy matched",
        )
    return ex.reply(DENIED_STATUS, DENIED_BODY, "")
