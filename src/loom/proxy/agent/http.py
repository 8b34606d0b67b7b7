"""A small HTTP/1.1 client on Loom's own codec, so the sidecar needs no HTTP library for the
few JSON calls it makes to the control plane (one request per connection)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from loom.proxy.codec.errors import UpstreamProtocolError
from loom.proxy.codec.head import ResponseHead
from loom.proxy.codec.response_parser import ResponseParser, SwitchedProtocols
from loom.proxy.codec.serialize import request_head


class HttpError(Exception):
    """The control plane could not be reached, or answered with something that is not HTTP."""


class _Collect:
    def __init__(self) -> None:
        self.status = 0
        self.body: list[bytes] = []
        self.done = False

    def on_response(self, head: ResponseHead) -> None:
        self.status = head.status

    def on_response_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_response_complete(self) -> None:
        self.done = True


async def call(
    base_url: str, method: str, path: str, body: bytes = b"", timeout: float = 10.0
) -> tuple[int, bytes]:
    """``(status, body)`` of one request to ``base_url`` (``http://host:port``)."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    headers = [
        (b"host", f"{host}:{port}".encode()),
        (b"connection", b"close"),
        (b"content-length", str(len(body)).encode()),
    ]
    if body:
        headers.append((b"content-type", b"application/json"))
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request_head(method.encode(), path.encode(), headers) + body)
                collect = _Collect()
                parser = ResponseParser(collect)
                while not collect.done:
                    data = await reader.read(65536)
                    if not data:
                        if not parser.feed_eof():
                            raise HttpError("the control plane closed the connection mid-response")
                        break
                    parser.feed(data)
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise HttpError(f"{base_url}: {exc or 'timed out'}") from None
    except (UpstreamProtocolError, SwitchedProtocols) as exc:
        raise HttpError(f"{base_url}: bad response: {exc}") from None
    return collect.status, b"".join(collect.body)
