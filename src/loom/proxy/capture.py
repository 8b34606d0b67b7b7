"""Transparent capture: the outbound listener (``original_dst``) that iptables sends every
outbound TCP connection of the app to.

The listener accepts sockets itself and sorts each by its original destination (SO_ORIGINAL_DST):

- none (the app dialled the listener, e.g. as its HTTP_PROXY): HTTP;
- a (VIP, port) the route table names: HTTP, routed by Host, else by that destination;
- an address and port this proxy listens on: closed, never dialled (it would loop);
- anything else: passthrough, plain TCP to the original destination.

Each connection is sorted with the route table current when it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from loom.proxy.accept_loop import AcceptLoop, listening_socket
from loom.proxy.original_dst import original_destination
from loom.proxy.passthrough import PassthroughDownstream

if TYPE_CHECKING:
    from loom.proxy.http.listener import HttpListener

log = logging.getLogger("loom.proxy.capture")

WILDCARDS = frozenset({"0.0.0.0", "::"})


class CaptureServer(AcceptLoop):
    """The part of ``asyncio.Server`` the listeners use, over an accept loop that sorts connections."""

    def __init__(self, sock: socket.socket, listener: HttpListener) -> None:
        self._listener = listener
        self._http = listener.protocol_factory()
        self.loops_refused = 0
        super().__init__(sock)

    @classmethod
    async def bind(cls, listener: HttpListener) -> CaptureServer:
        return cls(listening_socket(listener.config.address, listener.config.port), listener)

    def accepted(self, conn: socket.socket) -> None:
        factory = self._sort(conn)
        if factory is None:
            conn.close()
            return
        self.spawn(self._connect(conn, factory))

    def _sort(self, conn: socket.socket) -> Callable[[], asyncio.Protocol] | None:
        """The protocol that takes the connection, or None to close it."""
        destination = original_destination(conn)
        if destination is None or self._in_mesh(destination):
            return self._http
        if dials_itself(destination, self._listening(), is_local_address):
            self.loops_refused += 1
            log.warning("captured connection to %s:%d refused: it would loop into this proxy", *destination)
            return None
        listener = self._listener
        return lambda: PassthroughDownstream(listener, destination)

    def _in_mesh(self, destination: tuple[str, int]) -> bool:
        table = self._listener.route_table(self._listener.server.config)
        return table is not None and table.find(destination[0].encode(), destination[1]) is not None

    def _listening(self) -> Iterator[tuple[str, int]]:
        """Every address and port this proxy accepts connections on."""
        yield self._sock.getsockname()[:2]
        server = self._listener.server
        servers = [lst.asyncio_server for lst in server.listeners.values()] + [server.admin.server]
        for each in servers:
            if each is not None:
                for sock in each.sockets:
                    yield sock.getsockname()[:2]

    async def _connect(self, conn: socket.socket, factory: Callable[[], asyncio.Protocol]) -> None:
        try:
            await self._loop.connect_accepted_socket(factory, conn)
        except asyncio.CancelledError:  # the listener closed first
            conn.close()
            raise
        except OSError as exc:
            log.info("captured connection lost before it was set up: %s", exc)
            conn.close()


def dials_itself(
    destination: tuple[str, int], listening: Iterable[tuple[str, int]], is_local: Callable[[str], bool]
) -> bool:
    """Whether ``destination`` is one of the ``listening`` sockets (a wildcard one: on a local address)."""
    address, port = destination
    for bound_address, bound_port in listening:
        if bound_port != port:
            continue
        if bound_address == address or (bound_address in WILDCARDS and is_local(address)):
            return True
    return False


def is_local_address(address: str) -> bool:
    """Whether this host has ``address`` (binding to it works only then)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True
