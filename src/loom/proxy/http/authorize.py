"""The ``authorize`` stage (inbound only): the workload's authorization policies decide the request.

It runs after the request's JWT (if any) has been verified and before routing, as Envoy's RBAC
filter does. A denied request is answered ``403 RBAC: access denied`` and never reaches the app;
Envoy sets no response flag for it, and neither does Loom: the access log's response code details
say ``rbac_access_denied_matched_policy[<namespace>/<name>]`` (``[none]`` when no ALLOW policy
matched). The decision stays on the exchange (``ex.authz``), so an AUDIT policy that matched is
logged whatever the decision. Without policies the stage returns at once.
"""

from __future__ import annotations

import logging

from loom.proxy.authz.connection import destination
from loom.proxy.http.exchange import Exchange

log = logging.getLogger("loom.proxy.authz")

DENIED_STATUS = 403
DENIED_BODY = b"RBAC: access denied"


def authorize(ex: Exchange) -> bool:
    authorizer = ex.config.authorizer
    if not authorizer.enabled:
        return False
    from loom.proxy.authz.request import AuthzRequest  # loaded with the policies: already imported

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
    decision = ex.authz = authorizer.check(request)
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
