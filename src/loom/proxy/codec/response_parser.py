"""Sans-IO HTTP/1.1 response parsing (upstream side) on top of llhttp (httptools)."""

from __future__ import annotations

from typing import Protocol

import httptools

from loom.proxy.codec.errors import UpstreamProtocolError
from loom.proxy.codec.head import ResponseHead


class ResponseSink(Protocol):
    def on_response(self, head: ResponseHead) -> None: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_complete(self) -> None: ...


class _HeadOnly(Exception):
    """Raised from the head callback to stop llhttp after the head of a HEAD response."""


class SwitchedProtocols(Exception):
    """The upstream answered 101; ``rest`` is what followed the response head."""

    def __init__(self, rest: bytes) -> None:
        super().__init__("switched protocols")
        self.rest = rest


class ResponseParser:
    """Parse one connection's responses. Call :meth:`expect_head_only` before a HEAD request."""

    __slots__ = ("_head", "_head_only", "_parser", "_sink", "_switched")

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        self._parser = httptools.HttpResponseParser(self)
        self._head: ResponseHead | None = None
        self._head_only = False
        self._switched = False

    def expect_head_only(self, head_only: bool) -> None:
        """The next response answers a HEAD request: it has no body, whatever its headers say."""
        self._head_only = head_only

    def feed(self, data: bytes) -> None:
        """Parse ``data``. Raises UpstreamProtocolError, or SwitchedProtocols after a 101 (and
        again, with all of ``data``, for anything fed after it: those bytes are no longer HTTP)."""
        if self._switched:
            raise SwitchedProtocols(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._switched = True
            raise SwitchedProtocols(data[exc.args[0] :]) from None
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadOnly):
                # llhttp cannot be told to skip a HEAD response's body: start afresh instead.
                self._parser = httptools.HttpResponseParser(self)
                self._head_only = False
                self._sink.on_response_complete()
                return
            raise UpstreamProtocolError(str(exc.__context__ or exc)) from None
        except httptools.HttpParserError as exc:
            raise UpstreamProtocolError(str(exc)) from None

    def feed_eof(self) -> bool:
        """The upstream closed. True if that ended a response delimited by connection close."""
        head = self._head
        if head is None or head.chunked or head.content_length is not None:
            return False
        self._head = None
        self._sink.on_response_complete()
        return True

    # llhttp callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head = ResponseHead()

    def on_status(self, reason: bytes) -> None:
        assert self._head is not None
        self._head.reason += reason  # may arrive in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        assert head is not None
        head.headers.append((name, value))
        lower = name.lower()
        previous = head.hmap.get(lower)
        head.hmap[lower] = value if previous is None else previous + b"," + value

    def on_headers_complete(self) -> None:
        head = self._head
        assert head is not None
        parser = self._parser
        head.status = parser.get_status_code()
        head.version = parser.get_http_version().encode()
        head.keep_alive = parser.should_keep_alive()
        hmap = head.hmap
        status = head.status
        if self._head_only or status < 200 or status in (204, 304):
            head.content_length = 0
        elif b"transfer-encoding" in hmap:
            head.chunked = hmap[b"transfer-encoding"].lower().endswith(b"chunked")
        else:
            length = hmap.get(b"content-length")
            if length is not None:
                head.content_length = int(length)
        self._sink.on_response(head)
        if self._head_only and status >= 200:
            self._head = None
            raise _HeadOnly

    def on_body(self, chunk: bytes) -> None:
        self._sink.on_response_body(chunk)

    def on_message_complete(self) -> None:
        self._head = None
        self._sink.on_response_complete()
