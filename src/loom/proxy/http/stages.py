"""The request stages before the router, each one small concern.

A stage takes the exchange and returns True when it has answered the request itself (the
chain stops there), False to let the request go on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from loom.proxy.http.exchange import Exchange
from loom.proxy.http.mirror import mirror_request
from loom.proxy.router import DIRECT, REDIRECT


def select_route(ex: Exchange) -> bool:
    """Find the virtual host by authority and port, then the first route that matches."""
    head = ex.head
    table = ex.conn.listener.route_table(ex.config)
    vhost = table.find(head.authority, head.port) if table is not None else None
    original = ex.conn.original_dst
    if vhost is None and original is not None and table is not None:
        # Transparent interception: the address the app dialled (a service VIP) names the service.
        vhost = table.find(original[0].encode(), original[1])
    port = head.port if head.port is not None else (vhost.port if vhost is not None else None)
    route = vhost.match(head, port) if vhost is not None else None
    if route is None:
        return ex.reply(404, b"no route\n", "NR")
    ex.route = route
    return False


def new_request_id(getrandbits: Callable[[int], int] = random.getrandbits) -> bytes:
    """A random (version 4) UUID, as Envoy generates for x-request-id: unique, not secret."""
    r = getrandbits
    return b"%08x-%04x-4%03x-%04x-%012x" % (r(32), r(16), r(12), 0x8000 | r(14), r(48))


def assign_request_id(ex: Exchange) -> bool:
    request_id = ex.head.hmap.get(b"x-request-id")
    if request_id is None:
        request_id = new_request_id()
        ex.head.headers.append((b"x-request-id", request_id))
    ex.request_id = request_id
    return False


def set_forwarded_headers(ex: Exchange) -> bool:
    head = ex.head
    peer = ex.conn.peer_ip.encode()
    forwarded_for = head.hmap.get(b"x-forwarded-for")
    headers = head.headers
    if forwarded_for is None:
        forwarded_for = peer
    else:
        headers[:] = [(n, v) for n, v in headers if n.lower() != b"x-forwarded-for"]
        forwarded_for += b", " + peer
    headers.append((b"x-forwarded-for", forwarded_for))
    head.hmap[b"x-forwarded-for"] = forwarded_for
    if b"x-forwarded-proto" not in head.hmap:
        headers.append((b"x-forwarded-proto", head.scheme or b"http"))
    return False


def inject_fault(ex: Exchange) -> bool:
    fault = ex.route.fault  # type: ignore[union-attr]
    if fault is None:
        return False
    delay, abort_status = fault.decide()
    if delay:
        ex.delay = delay
        ex.add_flag("DI")
    if abort_status is not None and not delay:
        return ex.reply(abort_status, b"fault filter abort\n", "FI")
    if abort_status is not None:
        ex.delay = -delay  # negative: abort once the delay is over
        ex.status = abort_status
    return False


def answer_locally(ex: Exchange) -> bool:
    route = ex.route
    assert route is not None
    if route.kind == REDIRECT:
        status, location = route.redirect_location(ex.head)
        return ex.reply(status, b"", extra=[(b"location", location)])
    if route.kind == DIRECT:
        status, body = route.direct_response
        return ex.reply(status, body)
    return False


def rewrite_request(ex: Exchange) -> bool:
    route = ex.route
    assert route is not None
    route.apply_rewrite(ex.head)
    if route.request_headers is not None:
        route.request_headers.apply(ex.head.headers, ex.head.hmap)
    return False


def mirror(ex: Exchange) -> bool:
    route = ex.route
    if route is not None and route.mirror_cluster is not None and route.should_mirror():
        mirror_request(ex, route.mirror_cluster)
    return False
