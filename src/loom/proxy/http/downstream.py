"""A connection from a client (the local app, or a peer sidecar) speaking HTTP/1.1."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead
from loom.proxy.codec.request_parser import RequestParser, UpgradeRequested
from loom.proxy.codec.serialize import simple_response
from loom.proxy.http.exchange import Exchange
from loom.proxy.identity.store import spiffe_id_of
from loom.proxy.original_dst import original_destination

DRAIN_IDLE_GRACE = 0.5
"""Seconds an idle connection stays open once draining starts, for requests already sent."""

if TYPE_CHECKING:
    from loom.proxy.http.listener import HttpListener
    from loom.proxy.upstream.connection import UpstreamConnection


class DownstreamConnection(asyncio.Protocol):
    PAUSE_PIPELINE = 1
    PAUSE_BODY = 2
    PAUSE_UPSTREAM = 4
    PAUSE_UPGRADE = 8

    __slots__ = (
        "closing",
        "current",
        "draining",
        "head_started",
        "last_activity",
        "listener",
        "loop",
        "original_dst",
        "parser",
        "parsing",
        "paused",
        "peer_ip",
        "peer_port",
        "peer_principal",
        "queue",
        "starting",
        "transport",
        "tunnel",
        "upgrade_rest",
    )

    def __init__(self, listener: HttpListener) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.starting: Exchange | None = None
        """A request whose head completed during this read: it starts once the read is parsed."""
        self.parser = RequestParser(self, listener.parser_limits)
        self.current: Exchange | None = None
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.paused = 0
        self.closing = False
        self.draining = False
        self.tunnel: UpstreamConnection | None = None
        self.upgrade_rest = b""
        self.peer_ip = ""
        self.peer_port = 0
        self.original_dst: tuple[str, int] | None = None
        self.peer_principal: str | None = None
        """The peer's SPIFFE ID (``spiffe://td/ns/N/sa/S``) when it proved one with mutual TLS."""
        now = time.monotonic()
        self.last_activity = now
        self.head_started = now
        """When the request head now awaited started (0: not waiting for one) — for 408."""

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        listener = self.listener
        listener.connections.add(self)
        if len(listener.connections) > listener.limits.max_connections or listener.draining:
            listener.rejected.inc()
            self.closing = True
            self.transport.write(simple_response(503, b"overloaded: too many connections\n", close=True))
            self.transport.close()
            return
        self.transport.set_write_buffer_limits(high=64 * 1024)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_ip, self.peer_port = peer[0], peer[1]
        if listener.config.original_dst:
            self.original_dst = original_destination(transport.get_extra_info("socket"))
        if listener.secure:
            self.peer_principal = spiffe_id_of(transport.get_extra_info("peercert"))

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.transport.write(data)
            return
        if self.closing:
            return
        self.last_activity = now = time.monotonic()
        if not self.head_started and self.current is None:
            self.head_started = now
        try:
            self.parser.feed(data)
        except ProtocolError as error:
            self.protocol_error(error)
        except UpgradeRequested as upgrade:
            self.upgrade_rest = upgrade.rest
            self.pause(self.PAUSE_UPGRADE)
        starting = self.starting
        if starting is not None:
            # The read is parsed: the head and whatever body came with it go upstream together.
            self.starting = None
            self.run(starting)

    def eof_received(self) -> bool:
        tunnel = self.tunnel
        if tunnel is not None:
            if tunnel.transport.can_write_eof():
                tunnel.transport.write_eof()
            tunnel.tunnel_eofs += 1
            return tunnel.tunnel_eofs < 2  # False: both halves are closed, so close (and upstream too)
        self.closing = True
        return self.current is not None  # keep the write side open to finish the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.listener.connections.discard(self)
        tunnel, self.tunnel = self.tunnel, None
        if tunnel is not None:
            tunnel.close()
        current = self.current
        if current is not None and not current.completed:
            current.abort("DC")
        self.queue.clear()

    def pause_writing(self) -> None:
        current = self.current
        if current is not None and current.upstream is not None:
            current.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        current = self.current
        if current is not None and current.upstream is not None:
            current.upstream.transport.resume_reading()

    # request parser sink -------------------------------------------------------------------

    def on_request(self, head: RequestHead) -> None:
        self.head_started = 0.0
        exchange = Exchange(self, head, self.listener.server.config)
        self.parsing = exchange
        if self.current is None:
            self.current = self.starting = exchange
        else:
            self.queue.append(exchange)
            self.pause(self.PAUSE_PIPELINE)

    def on_body(self, chunk: bytes) -> None:
        if self.parsing is not None:
            self.parsing.body.feed(chunk)

    def on_request_complete(self) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.body.finish()
            self.parsing = None

    # serving -------------------------------------------------------------------------------

    def run(self, exchange: Exchange) -> None:
        if exchange is self.current and not exchange.completed:
            self.listener.handle(exchange)

    def exchange_finished(self, exchange: Exchange) -> None:
        if exchange is not self.current:
            return
        self.current = None
        self.last_activity = time.monotonic()
        if self.tunnel is not None:
            return
        if self.closing or not exchange.keep_alive():
            self.closing = True
            self.transport.close()
            return
        if self.queue:
            # A pipelined request: start it from the loop, not from inside this one's ending.
            self.current = following = self.queue.popleft()
            self.loop.call_soon(self.run, following)
            if not self.queue:
                self.resume(self.PAUSE_PIPELINE)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def pause(self, reason: int) -> None:
        if not self.paused and not self.closing:
            self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closing:
                self.transport.resume_reading()

    def start_tunnel(self, upstream: UpstreamConnection, upstream_rest: bytes) -> None:
        """After a 101: bytes flow both ways untouched until either side closes."""
        self.tunnel = upstream
        upstream.sink = None
        upstream.tunnel = self.transport
        if upstream_rest:
            self.transport.write(upstream_rest)
        if self.upgrade_rest:
            upstream.transport.write(self.upgrade_rest)
            self.upgrade_rest = b""
        self.paused = 0
        self.transport.resume_reading()

    def protocol_error(self, error: ProtocolError) -> None:
        """Bad bytes from the client: answer the status once, then close the connection.

        Bad bytes after a complete request still being answered (pipelining) do not cut that
        request short: it gets its response (with ``Connection: close``), then the connection closes.
        """
        self.closing = True
        self.pause(self.PAUSE_PIPELINE)
        current = self.current
        if current is not None and not current.completed:
            if current is not self.parsing:
                self.listener.record_protocol_error(self, error)
            elif not current.committed:
                current.stop_connecting()
                current.abandon_try()
                current.add_flag("DPE")
                current.reply(error.status, f"{error.reason}\n".encode())
            else:
                current.abort("DPE")
            return
        self.listener.record_protocol_error(self, error)
        self.transport.write(simple_response(error.status, f"{error.reason}\n".encode(), close=True))
        self.transport.close()

    def expire(self, now: float) -> None:
        """Housekeeping: 408 for a head that takes too long, close when idle too long."""
        if self.closing or self.tunnel is not None:
            return
        limits = self.listener.limits
        if self.head_started and now - self.head_started > limits.request_header_timeout:
            self.head_started = 0.0
            self.protocol_error(ProtocolError(408, "request timeout"))
        elif self.current is None:
            idle_limit = DRAIN_IDLE_GRACE if self.draining else limits.idle_timeout
            if now - self.last_activity > idle_limit:
                self.closing = True
                self.transport.close()

    def drain(self) -> None:
        """Shutting down: responses now say ``Connection: close``; idle connections close soon.

        A request already on its way over an idle keep-alive connection is still served
        (for DRAIN_IDLE_GRACE), so shutting down never drops a request a client has sent.
        """
        self.draining = True
        self.last_activity = min(self.last_activity, time.monotonic())

    def abort(self) -> None:
        self.closing = True
        self.transport.abort()
