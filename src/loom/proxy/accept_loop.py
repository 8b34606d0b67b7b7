"""A listening socket whose connections are accepted by our own loop rather than asyncio's, so
each can be looked at (its first byte, its original destination) before a protocol takes it.

Subclasses decide per connection in :meth:`AcceptLoop.accepted`; this gives them the part of
``asyncio.Server`` the listeners use (``sockets``, ``close``) and a place to keep their tasks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Coroutine

log = logging.getLogger("loom.proxy")


def listening_socket(address: str, port: int) -> socket.socket:
    """A non-blocking TCP socket bound to ``address:port`` and listening."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class AcceptLoop:
    def __init__(self, sock: socket.socket) -> None:
        self.sockets = [sock]
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()
        self._accepting = self._loop.create_task(self._accept_loop())

    def accepted(self, conn: socket.socket) -> None:
        """Take a new connection (TCP_NODELAY already set)."""
        raise NotImplementedError

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Run ``work`` as a task that ``close`` cancels."""
        task = self._loop.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

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
            self.accepted(conn)
