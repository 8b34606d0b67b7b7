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


class PeekingServer:
    """The part of ``asyncio.Server`` the listeners use, over an accept loop of our own."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        mode: Callable[[], MtlsMode],
        identity: IdentityStore,
        first_byte_timeout: Callable[[], float],
    ) -> None:
        self.sockets = [sock]
        self._sock = sock
        self._factory = protocol_factory
        self._mode = mode
        self._identity = identity
        self._first_byte_timeout = first_byte_timeout
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()
        self.refused = RefusedCounts()
        self._accepting = self._loop.create_task(self._accept_loop())

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
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return cls(sock, protocol_factory, mode, identity, first_byte_timeout)

    def close(self) -> None:
        self._accepting.cancel()
        for task in self._pending:
            task.cancel()
        self._sock.close()

    async def _accept_loop(self) -> None:
        loop = self._loop
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # EMFILE and the like: back off briefly, keep listening
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            mode = self._mode()
            if mode is MtlsMode.DISABLE:
                self._hand_over(conn, None)
                continue
            task = loop.create_task(self._classify(conn, mode))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

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
        task = self._loop.create_task(self._connect(conn, context))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

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
