"""HTTP/1.1 over a real TCP socket, for what real clients hide or refuse to send.

A client library would not send most of what the hardening tests send (or would fix it up), and
it hides 100-continue, pipelining and bodiless replies, so requests are written byte for byte and
responses parsed here, just enough to check them: status line, headers, and a body delimited by
Content-Length, chunked coding or EOF — or no body at all for 1xx, 204, 304 and replies to HEAD.
Framing is done here rather than trusted to the proxy, so a proxy that sends body bytes where none
belong leaves them in the stream and breaks the next response on the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import overload

READ_TIMEOUT = 10.0


@dataclass
class RawResponse:
    status: int
    reason: bytes
    headers: dict[bytes, bytes] = field(default_factory=dict)
    """Lower-cased name → value (repeated headers joined with b",")."""
    body: bytes = b""

    @overload
    def header(self, name: str) -> str | None: ...
    @overload
    def header(self, name: bytes) -> bytes | None: ...
    def header(self, name: str | bytes) -> str | bytes | None:
        """The value of header ``name`` (any case), as ``str`` or ``bytes`` like ``name``."""
        if isinstance(name, bytes):
            return self.headers.get(name.lower())
        value = self.headers.get(name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")


class RawConnection:
    """One client connection: write raw bytes, read responses, tell whether the peer closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reset = False
        """True once the peer answered with a TCP reset instead of a clean close."""

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write ``data``; a peer that has already closed (and reset) is noted, not raised."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True

    async def read_response(
        self, timeout: float = READ_TIMEOUT, *, head_request: bool = False
    ) -> RawResponse:
        """One complete response; fails if none arrives within ``timeout`` seconds.

        ``head_request`` says the response answers a HEAD request, so it has no body whatever its
        Content-Length or Transfer-Encoding say.
        """
        async with asyncio.timeout(timeout):
            return await self._read_response(head_request)

    async def at_eof(self, timeout: float = 2.0) -> bool:
        """True if the peer closed (nothing more arrives); False if bytes are still pending."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except TimeoutError:
            return False

    async def wait_closed_by_peer(self, timeout: float = READ_TIMEOUT) -> bytes:
        """Read until the peer closes (EOF or reset) and return what came; fail after ``timeout``."""
        received = bytearray()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.reader.read(65536)
                    if not data:
                        break
                    received += data
        except TimeoutError:
            raise AssertionError(
                f"the proxy did not close the connection within {timeout}s; got {bytes(received)[:200]!r}"
            ) from None
        except ConnectionResetError:
            self.reset = True
        return bytes(received)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
        except OSError:
            pass

    async def _read_response(self, head_request: bool) -> RawResponse:
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, status, *reason = lines[0].split(b" ", 2)
        if not version.startswith(b"HTTP/1."):
            raise AssertionError(f"not an HTTP/1.x status line: {lines[0]!r}")
        response = RawResponse(int(status), reason[0] if reason else b"")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            previous = response.headers.get(key)
            value = value.strip()
            response.headers[key] = value if previous is None else previous + b"," + value
        if head_request or response.status < 200 or response.status in (204, 304):
            return response
        if (response.header(b"transfer-encoding") or b"").lower().endswith(b"chunked"):
            response.body = await _read_chunked(reader)
        elif response.header(b"content-length") is not None:
            response.body = await reader.readexactly(int(response.headers[b"content-length"]))
        else:
            response.body = await reader.read()
        return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        end = await reader.readexactly(2)
        if end != b"\r\n":
            raise AssertionError(f"chunk data not followed by CRLF: {end!r}")


@dataclass
class Answer:
    """What one connection got for what it sent: the first response, and how it ended."""

    response: RawResponse | None
    closed: bool
    reset: bool
    rest: bytes


async def send_and_close(
    port: int, data: bytes, timeout: float = READ_TIMEOUT, *, expect_close: bool = True
) -> Answer:
    """Open a connection, send ``data``, read one response, then (by default) read until EOF.

    With ``expect_close`` the peer must close within ``timeout`` (else AssertionError).
    """
    conn = await RawConnection.open(port)
    try:
        await conn.send(data)
        response: RawResponse | None
        try:
            response = await conn.read_response(timeout)
        except asyncio.IncompleteReadError:
            response = None  # closed without (a complete) response
        except ConnectionResetError:
            response = None
            conn.reset = True
        rest = b""
        closed = False
        if expect_close:
            rest = await conn.wait_closed_by_peer(timeout)
            closed = True
        return Answer(response, closed, conn.reset, rest)
    finally:
        await conn.close()


def request(
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    host: str = "catalog",
) -> bytes:
    """An HTTP/1.1 request with a Host header; a body gets a Content-Length unless ``headers`` frame it."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    names = {name.lower() for name, _ in headers or []}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class SilentServer:
    """An upstream that accepts connections, reads whatever comes and never answers.

    ``accepted`` counts connections; ``open`` those the other side has not closed yet.
    """

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> SilentServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self._writers.add(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            self._writers.discard(writer)
            writer.close()
