"""Inbound accept with mutual TLS: STRICT refuses plaintext, PERMISSIVE takes both on one port.

The listener accepts sockets itself so it can look at the first byte before anything reads it
(``MSG_PEEK``): a TLS record starts with 0x16 (handshake). A TLS connection is handed to the
event loop with the workload certificate's server context, which requires and verifies the
client's certificate; a plaintext one is handed over as is (PERMISSIVE) or closed before any
byte of it is read (STRICT). DISABLE skips the look and takes plaintext.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from loom.proxy.accept_loop import AcceptLoop, listening_socket
from loom.proxy.identity.store import IdentityStore
from loom.snapshot.security import MtlsMode

log = logging.getLogger("loom.proxy.identity")

TLS_HANDSHAKE_RECORD = 0x16
PERMISSIVE_PEEK_TIMEOUT = 5.0
"""PERMISSIVE: a client silent this long is taken as plaintext (a server-first protocol)."""
HANDSHAKE_TIMEOUT = 10.0


class RefusedCounts:
    __slots__ = ("handshake_failures", "plaintext_refused")

    def __init__(self) -> None:
        self.plaintext_refused = 0
        self.handshake_failures = 0


class PeekingServer(AcceptLoop):
    """The part of ``asyncio.Server`` the listeners use, over an accept loop of our own."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        mode: Callable[[], MtlsMode],
        identity: IdentityStore,
        first_byte_timeout: Callable[[], float],
    ) -> None:
        self._factory = protocol_factory
        self._mode = mode
        self._identity = identity
        self._first_byte_timeout = first_byte_timeout
        self.refused = RefusedCounts()
        super().__init__(sock)

    @classmethod
    async def bind(
        cls,
        address: str,
        port: int,
        protocol_factory: Callable[[], asyncio.Protocol],
        mode: Callable[[], MtlsMode],
        identity: IdentityStore,
        first_byte_timeout: Callable[[], float],
    ) -> PeekingServer:
        sock = listening_socket(address, port)
        return cls(sock, protocol_factory, mode, identity, first_byte_timeout)

    def accepted(self, conn: socket.socket) -> None:
        mode = self._mode()
        if mode is MtlsMode.DISABLE:
            self._hand_over(conn, None)
            return
        self.spawn(self._classify(conn, mode))

    async def _classify(self, conn: socket.socket, mode: MtlsMode) -> None:
        timeout = PERMISSIVE_PEEK_TIMEOUT if mode is MtlsMode.PERMISSIVE else self._first_byte_timeout()
        try:
            first = await self._peek(conn, timeout)
        except (TimeoutError, OSError):
            first = None
        except asyncio.CancelledError:
            conn.close()
            raise
        if first == b"":  # the client left without a word
            conn.close()
            return
        if first is not None and first[0] == TLS_HANDSHAKE_RECORD:
            contexts = self._identity.contexts
            if contexts is None:
                log.warning("TLS connection refused: this proxy has no workload certificate yet")
                conn.close()
                return
            self._hand_over(conn, contexts.server)
            return
        if mode is MtlsMode.STRICT:
            self.refused.plaintext_refused += 1
            log.debug("plaintext connection refused under STRICT mTLS")
            conn.close()
            return
        self._hand_over(conn, None)

    async def _peek(self, conn: socket.socket, timeout: float) -> bytes:
        loop = self._loop
        fd = conn.fileno()
        readable = loop.create_future()
        loop.add_reader(fd, _set_once, readable)
        try:
            async with asyncio.timeout(timeout):
                await readable
        finally:
            loop.remove_reader(fd)
        return conn.recv(1, socket.MSG_PEEK)

    def _hand_over(self, conn: socket.socket, context: object) -> None:
        self.spawn(self._connect(conn, context))

    async def _connect(self, conn: socket.socket, context: object) -> None:
        try:
            if context is None:
                await self._loop.connect_accepted_socket(self._factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    self._factory,
                    conn,
                    ssl=context,  # type: ignore[arg-type]
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
        except (OSError, TimeoutError) as exc:
            # A failed handshake: no certificate, one our roots did not sign, an expired one.
            self.refused.handshake_failures += 1
            log.info("inbound TLS handshake failed: %s", exc)
            conn.close()


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
