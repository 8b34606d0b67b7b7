"""A small HTTP/1.1 client on Loom's own codec, so the sidecar needs no HTTP library for the few
JSON calls it makes to the control plane.

Connections are kept alive and reused: with TLS, a handshake per request would cost the control
plane a thousand handshakes every time a push makes every sidecar watch again. The agent's calls
are sequential (the watch, then its ACK, then the next watch), so one connection carries them all;
a call made while another is in flight (deregistering at shutdown) opens a second one. A new TLS
context (a renewed certificate) retires the idle connections: the next call handshakes with it.

Every request says ``Accept-Encoding: gzip``: the control plane compresses snapshots (a push to a
thousand sidecars then moves and encrypts a twentieth of the bytes), and a gzip-encoded answer is
decoded here (``decoding.py``, with a cap on the decoded size) before the caller sees it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from loom.proxy.agent.decoding import DecodingError, gunzip
from loom.proxy.codec.errors import UpstreamProtocolError
from loom.proxy.codec.head import ResponseHead
from loom.proxy.codec.response_parser import ResponseParser, SwitchedProtocols
from loom.proxy.codec.serialize import request_head

MAX_IDLE = 2
READ_SIZE = 65536


class HttpError(Exception):
    """The control plane could not be reached, or answered with something that is not HTTP."""


class _Stale(Exception):
    """A reused connection was closed by the server before it answered: try a fresh one."""


class _Response:
    __slots__ = ("body", "done", "encoding", "keep_alive", "status")

    def __init__(self) -> None:
        self.status = 0
        self.body: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.encoding = b""
        """``Content-Encoding``, lower-cased (empty: none)."""

    def decoded_body(self) -> bytes:
        body = b"".join(self.body)
        if self.encoding in (b"", b"identity"):
            return body
        if self.encoding in (b"gzip", b"x-gzip"):
            return gunzip(body)
        raise DecodingError(f"unsupported Content-Encoding {self.encoding.decode(errors='replace')!r}")


class _Connection:
    """One connection to the control plane; one exchange at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int) -> None:
        self.reader = reader
        self.writer = writer
        self.generation = generation
        self.parser = ResponseParser(self)
        self.response = _Response()

    # the parser's sink
    def on_response(self, head: ResponseHead) -> None:
        self.response.status = head.status
        self.response.keep_alive = head.keep_alive
        self.response.encoding = head.hmap.get(b"content-encoding", b"").strip().lower()

    def on_response_body(self, chunk: bytes) -> None:
        self.response.body.append(chunk)

    def on_response_complete(self) -> None:
        self.response.done = True

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    async def exchange(self, request: bytes, reused: bool) -> _Response:
        response = self.response = _Response()
        self.writer.write(request)
        received = False
        while not response.done:
            data = await self.reader.read(READ_SIZE)
            if not data:
                if not received and reused:
                    raise _Stale
                if not self.parser.feed_eof():
                    raise HttpError("the control plane closed the connection mid-response")
                break
            received = True
            self.parser.feed(data)
        return response

    def close(self) -> None:
        self.writer.close()


class ControlPlaneClient:
    def __init__(self, base_url: str, context: ssl.SSLContext | None = None) -> None:
        url = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = url.hostname or "127.0.0.1"
        self.tls = url.scheme == "https"
        self.port = url.port or (443 if self.tls else 80)
        self.context = context
        self.connections_opened = 0
        self._generation = 0
        self._idle: list[_Connection] = []

    def use(self, context: ssl.SSLContext) -> None:
        """Make new connections with ``context`` (e.g. a renewed client certificate); idle ones
        are closed, and those in flight are closed once their exchange is over."""
        self.context = context
        self._generation += 1
        self.close_idle()

    def close_idle(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        timeout: float = 10.0,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> tuple[int, bytes]:
        """``(status, body)`` of one request."""
        request = self._request(method, path, body, headers)
        try:
            async with asyncio.timeout(timeout):
                for _ in range(2):
                    connection, reused = await self._connection()
                    try:
                        response = await connection.exchange(request, reused)
                    except _Stale:
                        connection.close()
                        continue
                    except BaseException:
                        connection.close()
                        raise
                    self._release(connection, response.keep_alive)
                    return response.status, response.decoded_body()
                raise HttpError(f"{self.base_url}: the connection was closed before an answer")
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise HttpError(f"{self.base_url}: {exc or 'timed out'}") from None
        except (UpstreamProtocolError, SwitchedProtocols, DecodingError) as exc:
            raise HttpError(f"{self.base_url}: bad response: {exc}") from None

    async def _connection(self) -> tuple[_Connection, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection, True
            connection.close()
        if self.tls:
            context = self.context if self.context is not None else ssl.create_default_context()
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=context, server_hostname=self.host
            )
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        self.connections_opened += 1
        return _Connection(reader, writer, self._generation), False

    def _release(self, connection: _Connection, keep_alive: bool) -> None:
        if keep_alive and connection.generation == self._generation and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.close()

    def _request(self, method: str, path: str, body: bytes, extra: Sequence[tuple[bytes, bytes]]) -> bytes:
        headers = [
            (b"host", f"{self.host}:{self.port}".encode()),
            (b"content-length", str(len(body)).encode()),
            (b"accept-encoding", b"gzip"),
        ]
        if body:
            headers.append((b"content-type", b"application/json"))
        headers.extend(extra)
        return request_head(method.encode(), path.encode(), headers) + body
