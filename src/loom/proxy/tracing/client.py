"""The HTTP client spans are POSTed with: the agent's small client, with the body's own content type."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from loom.proxy.agent.http import ControlPlaneClient
from loom.proxy.codec.serialize import request_head


class CollectorClient(ControlPlaneClient):
    """Keeps its connections alive between batches, like the agent's."""

    def __init__(self, url: str, content_type: bytes) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.content_type = content_type

    def _request(self, method: str, path: str, body: bytes, extra: Sequence[tuple[bytes, bytes]]) -> bytes:
        headers = [
            (b"host", f"{self.host}:{self.port}".encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", self.content_type),
            *extra,
        ]
        return request_head(method.encode(), path.encode(), headers) + body
