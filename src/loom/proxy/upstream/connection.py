"""One keep-alive connection to an upstream endpoint, driving the response parser."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from loom.proxy.codec.errors import UpstreamProtocolError
from loom.proxy.codec.head import ResponseHead
from loom.proxy.codec.response_parser import ResponseParser, SwitchedProtocols

if TYPE_CHECKING:
    from loom.proxy.upstream.pool import EndpointPool


class UpstreamSink(Protocol):
    """Who hears what comes back on a connection while it serves one request."""

    def on_upstream_head(self, head: ResponseHead) -> None: ...
    def on_upstream_body(self, chunk: bytes) -> None: ...
    def on_upstream_complete(self) -> None: ...
    def on_upstream_lost(self, reason: str) -> None: ...
    def on_upstream_switched(self, rest: bytes) -> None: ...
    def on_upstream_write_paused(self, paused: bool) -> None: ...
    def on_upstream_read_done(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "closed",
        "idle_since",
        "parser",
        "pool",
        "requests",
        "reusable",
        "sink",
        "transport",
        "tunnel",
        "tunnel_eofs",
    )

    def __init__(self, pool: EndpointPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = ResponseParser(self)
        self.sink: UpstreamSink | None = None
        self.tunnel: asyncio.Transport | None = None
        self.tunnel_eofs = 0
        """Directions of a tunnel that have ended (EOF seen); at two the tunnel closes."""
        self.closed = False
        self.reusable = True
        self.requests = 0
        self.idle_since = 0.0

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=64 * 1024)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        try:
            self.parser.feed(data)
        except SwitchedProtocols as switched:
            self.reusable = False
            if self.sink is not None:
                self.sink.on_upstream_switched(switched.rest)
        except UpstreamProtocolError:
            self.reusable = False
            self.transport.close()
        if self.sink is not None:
            # Everything this read carried is parsed: decide on the response in one go, so its
            # head and the body that came with it leave in a single write.
            self.sink.on_upstream_read_done()

    def eof_received(self) -> bool:
        self.reusable = False
        if self.tunnel is not None:
            if self.tunnel.can_write_eof():
                self.tunnel.write_eof()
            self.tunnel_eofs += 1
            return self.tunnel_eofs < 2  # False: both halves are closed, so close (and downstream too)
        self.parser.feed_eof()
        if self.sink is not None:
            self.sink.on_upstream_read_done()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:  # refused right after connecting (see pool.connect); already forgotten
            return
        self.closed = True
        self.reusable = False
        self.pool.connection_closed(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.on_upstream_lost("connection reset" if exc else "connection closed")

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.on_upstream_write_paused(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.on_upstream_write_paused(False)

    # response parser sink ------------------------------------------------------------------

    def on_response(self, head: ResponseHead) -> None:
        if not head.keep_alive:
            self.reusable = False
        if self.sink is not None:
            self.sink.on_upstream_head(head)

    def on_response_body(self, chunk: bytes) -> None:
        if self.sink is not None:
            self.sink.on_upstream_body(chunk)

    def on_response_complete(self) -> None:
        if self.sink is not None:
            self.sink.on_upstream_complete()

    # used by the exchange ------------------------------------------------------------------

    def close(self) -> None:
        self.reusable = False
        self.sink = None
        if not self.closed:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        self.sink = None
        if not self.closed:
            self.transport.abort()
