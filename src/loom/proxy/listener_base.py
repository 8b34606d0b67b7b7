"""What every listener does with its socket: bind, report its port, drain, take new settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from loom.proxy.connections import ConnectionSet
from loom.proxy.identity.accept import PeekingServer
from loom.snapshot.model import Direction, Listener
from loom.snapshot.security import MtlsMode

if TYPE_CHECKING:
    from loom.proxy.capture import CaptureServer
    from loom.proxy.server import ProxyServer


class Drainable(Protocol):
    def drain(self) -> None: ...
    def abort(self) -> None: ...


C = TypeVar("C", bound=Drainable)


class ListenerBase(Generic[C]):
    def __init__(self, server: ProxyServer, config: Listener) -> None:
        self.server = server
        self.connections: ConnectionSet[C] = ConnectionSet()
        self.asyncio_server: asyncio.Server | PeekingServer | CaptureServer | None = None
        self.loop = asyncio.get_running_loop()
        self.draining = False
        self.update(config)

    def update(self, config: Listener) -> None:
        """Take new settings from a new snapshot (address and port stay)."""
        self.config = config
        self.name = config.name
        self.limits = config.limits
        self.secure = config.mtls is not MtlsMode.DISABLE
        """Connections may be mutual TLS: read the peer's identity from its certificate."""

    def protocol_factory(self) -> Callable[[], asyncio.Protocol]:
        raise NotImplementedError

    async def start(self) -> None:
        if self.config.direction is Direction.INBOUND:
            # Inbound listeners look at each connection's first byte for mutual TLS.
            self.asyncio_server = await PeekingServer.bind(
                self.config.address,
                self.config.port,
                self.protocol_factory(),
                lambda: self.config.mtls,
                self.server.identity,
                lambda: self.limits.request_header_timeout,
            )
            return
        self.asyncio_server = await self.loop.create_server(
            self.protocol_factory(),
            self.config.address,
            self.config.port,
            backlog=1024,
            reuse_address=True,
        )

    @property
    def bound_port(self) -> int:
        assert self.asyncio_server is not None
        return self.asyncio_server.sockets[0].getsockname()[1]

    async def drain(self, timeout: float) -> None:
        """Stop accepting; connections get ``timeout`` seconds to finish, then are cut."""
        self.draining = True
        if self.asyncio_server is not None:
            self.asyncio_server.close()
        for conn in self.connections:
            conn.drain()
        if timeout > 0:
            await self.connections.wait_empty(timeout)
        for conn in self.connections:
            conn.abort()
