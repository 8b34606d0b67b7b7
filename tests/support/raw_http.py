"""HTTP/1.1 over a raw socket, for what real clients hide: 100-continue, pipelining, bodiless replies.

``read_response`` frames a response itself (Content-Length, chunked, or none for 1xx, 204, 304
and replies to HEAD), so a proxy that sends body bytes where none belong leaves them in the
stream and breaks the next response on the connection — which is what the tests look for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

TIMEOUT = 10.0


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_response(self, *, head_request: bool = False) -> RawResponse:
        async with asyncio.timeout(TIMEOUT):
            return await self._read_response(head_request)

    async def _read_response(self, head_request: bool) -> RawResponse:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        version, status, *_ = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), lines[0]
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        response = RawResponse(int(status), headers, b"")
        code = response.status
        if head_request or code < 200 or code in (204, 304):
            return response
        encoding = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if encoding.endswith("chunked"):
            response.body = await self._read_chunked()
        elif length is not None:
            response.body = await self.reader.readexactly(int(length))
        else:
            response.body = await self.reader.read()
        return response

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(body)
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n"

    async def at_eof(self, timeout: float = 2.0) -> bool:
        """True if the peer closed (nothing more arrives); False if bytes are still pending."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def request(
    method: str,
    target: str,
    host: str = "catalog",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """Serialise one request; a body gets a Content-Length unless ``headers`` frame it."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    names = {name.lower() for name, _ in headers or []}
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
