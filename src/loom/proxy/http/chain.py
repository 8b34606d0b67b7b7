"""The request path, top to bottom, for each direction: read this file to know what a request meets.

Stages run in order until one answers; the router stage (``forward``) is last. Telemetry is
recorded when the exchange completes (see Exchange.complete → ProxyConfig.record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from loom.proxy.http import stages
from loom.proxy.http.exchange import Exchange
from loom.proxy.http.forward import forward

Stage = Callable[[Exchange], bool]
Handler = Callable[[Exchange], Awaitable[None]]

log = logging.getLogger("loom.proxy")

OUTBOUND: tuple[Stage, ...] = (
    stages.select_route,
    stages.assign_request_id,
    stages.set_forwarded_headers,
    stages.inject_fault,
    stages.answer_locally,
    stages.rewrite_request,
    stages.mirror,
)

INBOUND: tuple[Stage, ...] = (
    stages.select_route,
    stages.assign_request_id,
    stages.set_forwarded_headers,
    stages.inject_fault,
    stages.answer_locally,
    stages.rewrite_request,
)


def build_handler(chain: tuple[Stage, ...]) -> Handler:
    async def handle(ex: Exchange) -> None:
        try:
            for stage in chain:
                if stage(ex):
                    return
            if ex.delay and await stages.delay(ex):
                return
            await forward(ex)
        except asyncio.CancelledError:
            if not ex.completed:  # the client went away (DC) before the router stage
                ex.abort("")
        except Exception:
            log.exception("request failed inside the proxy")
            if not ex.completed:
                ex.reply(500, b"internal proxy error\n", "")

    return handle


handle_outbound = build_handler(OUTBOUND)
handle_inbound = build_handler(INBOUND)
