"""The request path, top to bottom, for each direction: read this file to know what a request meets.

Stages run in order until one answers; the router stage (``forward``) is last. Telemetry is
recorded when the exchange completes (see Exchange.complete → ProxyConfig.record).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from loom.proxy.authn.stage import authenticate_jwt
from loom.proxy.http import stages
from loom.proxy.http.authorize import authorize
from loom.proxy.http.exchange import Exchange
from loom.proxy.http.forward import forward
from loom.proxy.tracing.tracer import start_trace

Stage = Callable[[Exchange], bool]
Handler = Callable[[Exchange], None]

log = logging.getLogger("loom.proxy")

OUTBOUND: tuple[Stage, ...] = (
    stages.select_route,
    stages.assign_request_id,
    start_trace,
    stages.set_forwarded_headers,
    stages.inject_fault,
    stages.answer_locally,
    stages.rewrite_request,
    stages.mirror,
)

INBOUND: tuple[Stage, ...] = (
    stages.assign_request_id,
    start_trace,
    authenticate_jwt,
    authorize,
    stages.select_route,
    stages.set_forwarded_headers,
    stages.inject_fault,
    stages.answer_locally,
    stages.rewrite_request,
)


def build_handler(chain: tuple[Stage, ...]) -> Handler:
    def handle(ex: Exchange) -> None:
        try:
            for stage in chain:
                if stage(ex):
                    return
            if ex.delay:
                ex.timers.append(ex.conn.loop.call_later(abs(ex.delay), _after_delay, ex))
                return
            forward(ex)
        except Exception:
            _internal_error(ex)

    return handle


def _after_delay(ex: Exchange) -> None:
    """The fault stage's delay is over: abort now if it also asked for that, else go on."""
    if ex.completed:
        return
    try:
        if ex.delay < 0:
            ex.reply(ex.status, b"fault filter abort\n", "FI")
        else:
            forward(ex)
    except Exception:
        _internal_error(ex)


def _internal_error(ex: Exchange) -> None:
    log.exception("request failed inside the proxy")
    if not ex.completed:
        ex.reply(500, b"internal proxy error\n", "")


handle_outbound = build_handler(OUTBOUND)
handle_inbound = build_handler(INBOUND)
