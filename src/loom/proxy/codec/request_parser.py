"""Sans-IO HTTP/1.1 request parsing on top of llhttp (httptools), with Loom's limits.

llhttp already refuses the classic smuggling vectors (Content-Length with Transfer-Encoding,
duplicate Content-Length, bad chunk sizes and extensions, obsolete line folding, whitespace
before the colon, a final Transfer-Encoding that is not chunked). This layer adds the size
limits (414, 431, 413), HTTP/1.0 with Transfer-Encoding, and turns everything into a
``ProtocolError`` carrying the status to answer with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httptools

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead
from loom.proxy.codec.target import parse_host_header, parse_target


@dataclass(frozen=True, slots=True)
class ParserLimits:
    max_header_bytes: int = 60 * 1024
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    max_body_bytes: int | None = None


HEAD_SLACK_BYTES = 256
"""Room for the request line and separators when an incomplete head is measured in raw bytes."""


class RequestSink(Protocol):
    """What the parser calls as a request goes by."""

    def on_request(self, head: RequestHead) -> None: ...
    def on_body(self, chunk: bytes) -> None: ...
    def on_request_complete(self) -> None: ...


class UpgradeRequested(Exception):
    """The request switched protocols (``Upgrade``); ``rest`` is what followed the head."""

    def __init__(self, rest: bytes) -> None:
        super().__init__("upgrade")
        self.rest = rest


class RequestParser:
    """Feed bytes with :meth:`feed`; the sink hears each request's head, body and end."""

    __slots__ = (
        "_body_bytes",
        "_head",
        "_head_bytes",
        "_heads",
        "_in_head",
        "_limits",
        "_parser",
        "_sink",
        "_url_bytes",
        "_url_parts",
    )

    def __init__(self, sink: RequestSink, limits: ParserLimits) -> None:
        self._sink = sink
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._head: RequestHead | None = None
        self._url_parts: list[bytes] = []
        self._head_bytes = 0
        self._url_bytes = 0
        self._heads = 0
        self._body_bytes = 0
        self._in_head = False

    @property
    def in_head(self) -> bool:
        """True while a request's head has started but not finished (for the 408 timer)."""
        return self._in_head

    def feed(self, data: bytes) -> None:
        """Parse ``data``. Raises ProtocolError (answer its status and close) or UpgradeRequested."""
        continuing = self._in_head
        heads = self._heads
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise UpgradeRequested(data[exc.args[0] :]) from None
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, ProtocolError):
                raise exc.__context__ from None
            raise ProtocolError(400, "bad request") from exc
        except httptools.HttpParserInvalidMethodError:
            raise ProtocolError(400, "invalid method") from None
        except httptools.HttpParserError as exc:
            raise ProtocolError(400, str(exc) or "bad request") from None
        if self._in_head and continuing and heads == self._heads:
            # An incomplete head is held in memory: bound it before it completes. Only data that
            # arrived wholly inside one head is counted; the data a head starts in may also end
            # the previous request (its body, or a whole pipelined request).
            self._head_bytes += len(data)
            limits = self._limits
            if self._head_bytes > limits.max_header_bytes + limits.max_url_bytes + HEAD_SLACK_BYTES:
                raise ProtocolError(431, "request header fields too large")

    # llhttp callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head = RequestHead()
        self._url_parts = []
        self._head_bytes = 0
        self._url_bytes = 0
        self._heads += 1
        self._body_bytes = 0
        self._in_head = True

    def on_url(self, fragment: bytes) -> None:
        self._url_parts.append(fragment)
        self._url_bytes += len(fragment)
        if self._url_bytes > self._limits.max_url_bytes:
            raise ProtocolError(414, "URI too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        assert head is not None
        head.headers.append((name, value))
        if len(head.headers) > self._limits.max_headers:
            raise ProtocolError(431, "too many request header fields")
        lower = name.lower()
        previous = head.hmap.get(lower)
        head.hmap[lower] = value if previous is None else previous + b"," + value

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        self._in_head = False
        limits = self._limits
        header_bytes = sum(len(n) + len(v) + 4 for n, v in head.headers)
        if header_bytes > limits.max_header_bytes:
            raise ProtocolError(431, "request header fields too large")
        parser = self._parser
        head.method = parser.get_method()
        head.version = parser.get_http_version().encode()
        if head.version not in (b"1.1", b"1.0"):
            raise ProtocolError(400, "unsupported HTTP version")
        head.keep_alive = parser.should_keep_alive()
        target = self._url_parts[0] if len(self._url_parts) == 1 else b"".join(self._url_parts)
        head.target = target
        parse_target(head, target)
        hmap = head.hmap
        if not head.authority:
            host = hmap.get(b"host")
            if host is None:
                if head.version == b"1.1":
                    raise ProtocolError(400, "missing Host header")
            else:
                parse_host_header(head, host)
        if b"transfer-encoding" in hmap:
            if head.version != b"1.1":
                raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            codings = hmap[b"transfer-encoding"].lower().split(b",")
            if codings[-1].strip() != b"chunked":
                raise ProtocolError(400, "the final Transfer-Encoding must be chunked")
            if len(codings) > 1:
                # We would forward the body with only ``chunked``: refuse rather than drop a coding.
                raise ProtocolError(501, "Transfer-Encoding other than chunked is not implemented")
            head.chunked = True
        else:
            length = hmap.get(b"content-length")
            if length is not None:
                head.content_length = int(length)
                if limits.max_body_bytes is not None and head.content_length > limits.max_body_bytes:
                    raise ProtocolError(413, "request body too large")
        expect = hmap.get(b"expect")
        if expect is not None:
            if expect.lower() != b"100-continue":
                raise ProtocolError(417, "unsupported Expect")
            head.expect_continue = True
        head.upgrade = parser.should_upgrade()
        self._sink.on_request(head)

    def on_body(self, chunk: bytes) -> None:
        max_body = self._limits.max_body_bytes
        if max_body is not None:
            self._body_bytes += len(chunk)
            if self._body_bytes > max_body:
                raise ProtocolError(413, "request body too large")
        self._sink.on_body(chunk)

    def on_message_complete(self) -> None:
        self._head = None
        self._sink.on_request_complete()
