"""A minimal HTTPS/1.1 client for the control-plane benchmark: one kept-alive connection per
``Channel`` (as the sidecar's agent keeps one), on a bare asyncio Protocol, with TLS from the
context it is given (a workload's client certificate, or only the trust bundle).

A thousand watchers share one process, so the client keeps as little as it can: the status,
the size of the body, its first bytes (where the version is), its ``Content-Encoding`` and when
its first and last bytes arrived. Small bodies (errors) are kept whole. Every answer of the
control plane has a ``Content-Length`` (or none at all: 304), so responses are delimited without a
full parser.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from dataclasses import dataclass

KEEP = 256
"""Bytes of each body kept: enough for ``{"version": "N", ...`` and for error messages."""
KEEP_GZIP = 2048
"""... of a gzip-encoded body: its front inflates to the version (``Answer.front``)."""


class HttpFailure(Exception):
    """The exchange failed (connection refused or reset, timeout, malformed answer)."""


@dataclass(slots=True)
class Answer:
    status: int
    size: int
    """Body bytes received."""
    head: bytes
    """The first ``KEEP`` bytes of the body (``KEEP_GZIP`` of a gzip-encoded one)."""
    first_byte: float
    """``time.perf_counter()`` when the first byte of the response arrived."""
    done: float
    """``time.perf_counter()`` when the last byte arrived."""
    encoding: bytes = b""
    """``Content-Encoding``, lower-cased."""

    def front(self) -> bytes:
        """The first bytes of the decoded body (the rest of a gzip body is not inflated: a sidecar
        does that on its own core, and a thousand in this process would make it the bottleneck)."""
        if self.encoding != b"gzip":
            return self.head
        try:
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(self.head)
        except zlib.error:
            return b""


class _Connection(asyncio.Protocol):
    """One connection; one exchange at a time (``begin``), answered through a future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.done: asyncio.Future[Answer] | None = None
        self._reset()

    def _reset(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.buffer = bytearray()
        self.headers_done = False
        self.status = 0
        self.length: int | None = None
        self.keep_alive = True
        self.size = 0
        self.head = bytearray()
        self.first_byte = 0.0
        self.encoding = b""

    def begin(self, request: bytes, done: asyncio.Future[Answer], keep: int = KEEP) -> None:
        assert self.transport is not None
        self._reset(keep)
        self.done = done
        self.transport.write(request)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.done is None or self.done.done():
            return  # nothing asked: a server closing an idle connection says nothing we need
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if not self.headers_done:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self._parse_head(bytes(self.buffer[:end])):
                return
            data = bytes(self.buffer[end + 4 :])
            self.buffer = bytearray()
            self.headers_done = True
        self.size += len(data)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        if self.length is not None and self.size >= self.length:
            self._finish()

    def _parse_head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        try:
            self.status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(HttpFailure(f"malformed status line {lines[0][:80]!r}"))
            return False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                self.keep_alive = False
            elif name == b"content-encoding":
                self.encoding = value.strip().lower()
                if self.encoding == b"gzip":
                    self.keep = max(self.keep, KEEP_GZIP)
            elif name == b"transfer-encoding":
                self._fail(HttpFailure("a chunked answer: this client reads Content-Length only"))
                return False
        if self.status in (204, 304) or self.status < 200:
            self.length = 0
        if self.length is None:
            self.keep_alive = False  # delimited by the end of the connection
        return True

    def eof_received(self) -> bool | None:
        if self.headers_done and self.length is None:
            self._finish()
        elif self.done is not None and not self.done.done():
            self._fail(HttpFailure("connection closed mid-response"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is not None and not self.done.done():
            self._fail(HttpFailure(f"connection lost: {exc or 'closed'}"))

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(
                Answer(
                    self.status,
                    self.size,
                    bytes(self.head),
                    self.first_byte,
                    time.perf_counter(),
                    self.encoding,
                )
            )
        if not self.keep_alive:
            self.close()

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def request_bytes(
    method: str, path: str, port: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Channel:
    """Requests to the control plane on 127.0.0.1:``port`` over one kept-alive connection, made
    again when it closes; ``handshakes`` counts the connections made."""

    def __init__(self, port: int, context: ssl.SSLContext | None) -> None:
        self.port = port
        self.context = context
        self.handshakes = 0
        self._connection: _Connection | None = None
        self._busy = asyncio.Lock()

    async def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        timeout: float = 30.0,
        headers: tuple[tuple[str, str], ...] = (),
        keep: int = KEEP,
    ) -> Answer:
        """One exchange; the answer's ``head`` holds the first ``keep`` bytes of its body."""
        request = request_bytes(method, path, self.port, body, headers)
        loop = asyncio.get_running_loop()
        async with self._busy:
            for attempt in range(2):
                reused = self._connection is not None and not self._connection.closed
                try:
                    async with asyncio.timeout(timeout):
                        connection = await self._connect()
                        done: asyncio.Future[Answer] = loop.create_future()
                        connection.begin(request, done, keep)
                        return await done
                except TimeoutError:
                    self.close()
                    raise HttpFailure(f"{method} {path}: no answer within {timeout:g} s") from None
                except (OSError, ssl.SSLError) as exc:
                    self.close()
                    raise HttpFailure(f"{method} {path}: {exc}") from None
                except HttpFailure:
                    self.close()
                    if reused and attempt == 0:
                        continue  # the server closed the idle connection as we sent: once more
                    raise
            raise HttpFailure(f"{method} {path}: the connection closed twice")

    async def _connect(self) -> _Connection:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection,
            "127.0.0.1",
            self.port,
            ssl=self.context,
            server_hostname="127.0.0.1" if self.context is not None else None,
        )
        self.handshakes += 1
        self._connection = connection
        return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
