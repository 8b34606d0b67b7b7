"""A minimal HTTP/1.1 client for the control-plane benchmark: one request per connection
(``Connection: close``, as the sidecar's agent does it), on a bare asyncio Protocol.

A thousand watchers share one process, so the client keeps as little as it can: the status,
the size of the body, its first bytes (where the version is) and when its first and last bytes
arrived. Small bodies (errors) are kept whole.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

KEEP = 256
"""Bytes of each body kept: enough for ``{"version": "N", ...`` and for error messages."""


class HttpFailure(Exception):
    """The exchange failed (connection refused or reset, timeout, malformed answer)."""


@dataclass(slots=True)
class Answer:
    status: int
    size: int
    """Body bytes received."""
    head: bytes
    """The first ``KEEP`` bytes of the body (with chunk-size lines, if it was chunked)."""
    first_byte: float
    """``time.perf_counter()`` when the first byte of the response arrived."""
    done: float
    """``time.perf_counter()`` when the last byte arrived."""


class _Exchange(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future[Answer]) -> None:
        self.request = request
        self.done = done
        self.buffer = bytearray()
        self.headers_done = False
        self.status = 0
        self.length: int | None = None
        self.size = 0
        self.head = bytearray()
        self.first_byte = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if not self.headers_done:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(self.buffer[:end]))
            data = bytes(self.buffer[end + 4 :])
            self.buffer = bytearray()
            self.headers_done = True
        self.size += len(data)
        if len(self.head) < KEEP:
            self.head += data[: KEEP - len(self.head)]
        if self.length is not None and self.size >= self.length:
            self._finish()

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            self.status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(HttpFailure(f"malformed status line {lines[0][:80]!r}"))
            return
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                self.length = int(value.strip())

    def eof_received(self) -> bool | None:
        if self.headers_done and self.length is None:
            self._finish()  # delimited by the end of the connection (or chunked: we close anyway)
        elif not self.done.done():
            self._fail(HttpFailure("connection closed mid-response"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(HttpFailure(f"connection lost: {exc or 'closed'}"))

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(
                Answer(self.status, self.size, bytes(self.head), self.first_byte, time.perf_counter())
            )
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


def request_bytes(method: str, path: str, port: int, body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    if body:
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def call(port: int, method: str, path: str, body: bytes = b"", timeout: float = 30.0) -> Answer:
    """One request to the control plane on 127.0.0.1:``port``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Answer] = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: _Exchange(request_bytes(method, path, port, body), done), "127.0.0.1", port
            )
            return await done
    except TimeoutError:
        raise HttpFailure(f"{method} {path}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise HttpFailure(f"{method} {path}: {exc}") from None
    finally:
        if transport is not None:
            transport.close()
